import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, peerMissing, startProcess, tempDir, waitFor, type Proc } from './util.js';

const root = join(import.meta.dirname, '../../..');
const BIN = join(root, '.peers', 'gns3', 'bin', 'gns3server');

/** Why the GNS3 tests cannot run here (undefined when they can); throws in CI. */
export function gns3Missing(): string | undefined {
  return peerMissing(existsSync(BIN), 'gns3server', 'node scripts/provision.mjs (pip install gns3-server into .peers/gns3)');
}

export interface Gns3 {
  readonly url: string;
  readonly user: string;
  readonly password: string;
  /** The v3 REST API as the admin. */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/**
 * A real GNS3 server 3.0 (PyPI) on 127.0.0.1 with its own config, HOME and projects in a temp folder,
 * authentication on (the v3 default admin). No emulator is installed here (Debian has no dynamips or
 * ubridge, and its vpcs is older than GNS3 accepts): nodes can be made, linked, renamed and deleted, not
 * started.
 */
export async function startGns3(): Promise<Gns3> {
  const dir = tempDir('gns3');
  const port = await freePort();
  const conf = join(dir.path, 'gns3_server.conf');
  writeFileSync(conf, [
    '[Server]', 'host = 127.0.0.1', `port = ${port}`, `projects_path = ${join(dir.path, 'projects')}`, `images_path = ${join(dir.path, 'images')}`,
    `appliances_path = ${join(dir.path, 'appliances')}`, `symbols_path = ${join(dir.path, 'symbols')}`, `configs_path = ${join(dir.path, 'configs')}`, 'auth = True',
  ].join('\n') + '\n');
  const p: Proc = startProcess(BIN, ['--config', conf, '--local'], { env: { ...process.env, HOME: dir.path } });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('gns3server to answer', async () => (await fetch(`${url}/v3/version`).then((r) => r.ok, () => false)) && /Connected to compute 'local'/.test(p.output()), 60_000, 200);
  } catch (err) {
    await p.stop();
    dir.remove();
    throw new Error(`${(err as Error).message}\n${p.output().slice(-3000)}`);
  }
  let token: string | null = null;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    token ??= ((await (await fetch(`${url}/v3/access/users/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin' }) })).json()) as { access_token: string }).access_token;
    const r = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  };
  return {
    url,
    user: 'admin',
    password: 'admin',
    api,
    async stop() {
      await p.stop(10_000);
      dir.remove();
    },
  };
}
