import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True in CI: a missing peer must fail, not skip. */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * The one policy for a peer that is not installed: a reason to skip on a developer's machine, an
 * error in CI (where a skip would hide a missing install step).
 */
export function peerMissing(installed: boolean, what: string, install: string): string | undefined {
  if (installed) return undefined;
  const msg = `${what} not found: ${install} (scripts/provision.mjs does this)`;
  if (IN_CI) throw new Error(msg);
  return msg;
}

/** A free TCP port on 127.0.0.1 (tests never use fixed ports: suites and sessions run side by side). */
/**
 * hourUtc:00 UTC on the most recent weekday at least a day ago (so at most 4 days ago). Test data
 * dated there stays inside every retention whenever the suite runs (Kafka's 7 days, the raw samples'
 * 14-day TTL: ClickHouse drops expired rows as parts merge), on a weekday as the demo network's
 * traffic expects. A fixed date broke the suite nine days after it was written.
 */
export function recentWeekdayAt(hourUtc: number, now = Date.now()): number {
  const d = new Date(now - 86_400_000);
  let t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hourUtc);
  while (t > now - 86_400_000 || [0, 6].includes(new Date(t).getUTCDay())) t -= 86_400_000;
  return t;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on host:port (a peer that has finished starting). */
export function tcpAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** A free UDP port on 127.0.0.1. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `noctua-${prefix}-`));
  // Retries: an embedded engine may still be finishing background merges in the directory.
  return { path, remove: () => rmSync(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; the error names `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String((last as Error).message ?? last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface Proc {
  readonly child: ChildProcess;
  /** Combined stdout+stderr so far (last 64 KB), for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Spawns a peer process; it is killed when the test process exits, whatever happens. */
export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  live.add(child);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
    child.on('error', (err) => {
      out += `\nspawn error: ${err.message}`;
      live.delete(child);
      resolve(-1);
    });
  });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    child,
    output: () => out,
    exited,
    kill,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
