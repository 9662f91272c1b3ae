import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync, chmodSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { peerMissing, freeUdpPort, startProcess, tempDir, waitFor, type Proc } from './util.js';
import { udpAnswers } from './snmpd.js';

/**
 * Debian's snmpsim serving recorded walks: each `NAME.snmprec` in the data directory answers as
 * community NAME on one UDP endpoint. Gzipped walks (Debian's examples) are unpacked into the temp dir.
 */

export const SNMPSIM_BIN = '/usr/bin/snmpsimd';
/** Recorded walks of real devices shipped with Debian's snmpsim. */
export const SNMPSIM_EXAMPLES = '/usr/share/doc/snmpsim/examples/data';

export interface Snmpsim {
  readonly port: number;
  /** Communities served (file base names). */
  readonly communities: readonly string[];
  readonly proc: Proc;
  stop(): Promise<void>;
}

export function snmpsimMissing(): string | undefined {
  return peerMissing(existsSync(SNMPSIM_BIN), SNMPSIM_BIN, 'apt-get install -y snmpsim');
}

/** Starts snmpsimd with the given .snmprec files (plain or .gz). `port` lets a benchmark pick its own. */
export async function startSnmpsim(files: readonly string[], opts: { port?: number } = {}): Promise<Snmpsim> {
  const dir = tempDir('snmpsim');
  const data = join(dir.path, 'data');
  const cache = join(dir.path, 'cache');
  mkdirSync(data);
  mkdirSync(cache);
  const communities: string[] = [];
  for (const f of files) {
    const name = basename(f).replace(/\.gz$/, '');
    if (f.endsWith('.gz')) writeFileSync(join(data, name), gunzipSync(readFileSync(f)));
    else copyFileSync(f, join(data, name));
    communities.push(name.replace(/\.snmprec$/, ''));
  }
  // snmpsimd drops privileges to nobody: it must be able to read the data and write its cache.
  for (const p of [dir.path, data, cache]) chmodSync(p, 0o777);
  for (const f of readdirSync(data)) chmodSync(join(data, f), 0o644);
  const port = opts.port ?? (await freeUdpPort());
  const proc = startProcess(SNMPSIM_BIN, [
    `--data-dir=${data}`, `--cache-dir=${cache}`, `--agent-udpv4-endpoint=127.0.0.1:${port}`,
    '--process-user=nobody', '--process-group=nogroup',
  ]);
  try {
    await waitFor(`snmpsimd on udp/${port}`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`snmpsimd exited: ${proc.output().slice(-2000)}`);
      return udpAnswers(port, communities[0]!);
    }, 60_000, 200);
  } catch (err) {
    await proc.stop(1000);
    dir.remove();
    throw err;
  }
  return {
    port,
    communities,
    proc,
    async stop() {
      await proc.stop(3000);
      dir.remove();
    },
  };
}
