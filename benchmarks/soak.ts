/**
 * The scaled-out deployment under faults, then what ClickHouse holds: the shape docker-compose.yml runs,
 * as plain processes on 127.0.0.1.
 *
 *   npm run soak [-- --step 60]
 *
 * A Kafka broker and a ClickHouse server (the test peers' launchers); `noctua serve`, two `noctua sink`,
 * two `noctua process` and one `noctua poll` (the demo network, 12 devices polled every 5 s). Faults,
 * `--step` seconds apart (default 60, about 25 minutes in all):
 *   SIGKILL a processor, restart it; SIGKILL the broker, restart it (down about a step and its start);
 *   stop ClickHouse for 1.5 steps; SIGKILL a sink, then the poller, each restarted half a step later;
 *   stop the poller and let the rest drain.
 * Then, from ClickHouse: raw samples polled twice or missing against each device's 5-s grid, and
 * 1-minute rollups of if_in_bps whose sample count is not the 12 polls of a minute (a window that lost
 * input or counted some twice), besides the first (partial) minute. RSS of each process every step.
 * Last line: {"bench":"soak",...}; exits 1 when anything was lost or doubled.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { startKafka } from '../test/peers/kafka.js';
import { startClickHouseServer } from '../test/peers/clickhouse-server.js';
import { freePort, sleep, startProcess, tempDir, type Proc } from '../test/peers/util.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const STEP = arg('step', 60) * 1000;
const cli = join(import.meta.dirname, '../cli/noctua.js');
const t0 = Date.now();
const say = (...a: unknown[]) => console.error(`[soak +${Math.round((Date.now() - t0) / 1000)}s]`, ...a);

const kafka = await startKafka({ startTimeoutMs: 120_000 });
const ch = await startClickHouseServer({ password: 'soak-password-0123' });
const token = 'soak-token-0123456789abcdef';
const dirs: { remove(): void }[] = [];
const procs = new Map<string, Proc>();
const spec = new Map<string, { port: number; dir: string; args: string[] }>();
const rssPeak = new Map<string, number>();

async function launch(name: string, args: string[]): Promise<void> {
  let s = spec.get(name);
  if (!s) {
    const d = tempDir(`soak-${name}`);
    dirs.push(d);
    s = { port: await freePort(), dir: d.path, args };
    spec.set(name, s);
  }
  const env = { ...process.env, KAFKA_BROKERS: kafka.brokers.join(','), CLICKHOUSE_URL: ch.url, CLICKHOUSE_USER: ch.user, CLICKHOUSE_PASSWORD: ch.password, NOCTUA_DATA_DIR: s.dir, NOCTUA_TOKEN: token, NOCTUA_LOG_LEVEL: 'warn', NOCTUA_API__PORT: String(s.port) };
  const p = startProcess(process.execPath, [cli, ...s.args], { env });
  procs.set(name, p);
  const started = Date.now();
  while (!/Noctua is running/.test(p.output()) && p.child.exitCode === null && Date.now() - started < 180_000) await sleep(200);
  if (p.child.exitCode !== null || !/Noctua is running/.test(p.output())) throw new Error(`${name} did not start: ${p.output().slice(-3000)}`);
  say(`${name} up (${Date.now() - started} ms)`);
}

function sampleRss(): void {
  for (const [name, p] of procs) {
    if (p.child.exitCode !== null || p.child.signalCode !== null || !p.child.pid) continue;
    try {
      const kb = Number(execFileSync('ps', ['-o', 'rss=', '-p', String(p.child.pid)]).toString());
      const role = name.replace(/\d$/, '');
      rssPeak.set(role, Math.max(rssPeak.get(role) ?? 0, kb * 1024));
    } catch {
      // exited between the check and ps
    }
  }
}

const kill = (name: string) => procs.get(name)!.child.kill('SIGKILL');
const plan: [number, string, () => Promise<unknown> | unknown][] = [
  [4, 'SIGKILL process1', () => kill('process1')],
  [5, 'restart process1', () => launch('process1', ['process'])],
  [7, 'SIGKILL the broker', () => kafka.kill()],
  [8, 'restart the broker', () => kafka.restart()],
  [10, 'stop ClickHouse', () => ch.stop()],
  [11.5, 'start ClickHouse', () => ch.start()],
  [13, 'SIGKILL sink1', () => kill('sink1')],
  [13.5, 'restart sink1', () => launch('sink1', ['sink'])],
  [15, 'SIGKILL poll', () => kill('poll')],
  [15.5, 'restart poll', () => launch('poll', ['poll'])],
  [19, 'stop poll', () => procs.get('poll')!.stop(30_000)],
];

let exitCode = 0;
try {
  await launch('serve', ['serve']);
  await launch('sink1', ['sink']);
  await launch('sink2', ['sink']);
  await launch('process1', ['process']);
  await launch('process2', ['process']);
  await launch('poll', ['poll']);
  const begin = Date.now();
  const rss = setInterval(sampleRss, 5_000);
  for (const [at, what, fault] of plan) {
    const wait = begin + at * STEP - Date.now();
    if (wait > 0) await sleep(wait);
    say(what);
    await fault();
  }
  say('draining');
  await sleep(3 * STEP);
  clearInterval(rss);

  const client = createClient({ url: ch.url, username: ch.user, password: ch.password });
  const rows = async <T>(query: string) => (await (await client.query({ query, format: 'JSONEachRow' })).json()) as T[];
  const [samples] = await rows<{ rows: string; distinct: string }>('SELECT count() AS rows, uniqExact(metric, series, ts, ms) AS distinct FROM noctua.samples');
  const polls = await rows<{ device: string; polls: string; first: string; last: string }>(
    "SELECT device, uniqExact(ts, ms) AS polls, min(toUInt64(ts) * 1000 + ms) AS first, max(toUInt64(ts) * 1000 + ms) AS last FROM noctua.samples WHERE metric = 'sysUpTime' GROUP BY device",
  );
  const missing = polls.reduce((n, d) => n + Math.round((Number(d.last) - Number(d.first)) / 5000) + 1 - Number(d.polls), 0);
  const windows = await rows<{ n: string; windows: string }>(
    "SELECT count AS n, count() AS windows FROM noctua.rollups_1m FINAL WHERE metric = 'if_in_bps' AND ts > (SELECT min(ts) FROM noctua.rollups_1m WHERE metric = 'if_in_bps') GROUP BY n",
  );
  await client.close();
  const full = windows.filter((w) => w.n === '12').reduce((a, w) => a + Number(w.windows), 0);
  const off = windows.filter((w) => w.n !== '12').reduce((a, w) => a + Number(w.windows), 0);
  const result = {
    bench: 'soak',
    stepS: STEP / 1000,
    faults: plan.map(([, what]) => what),
    samples: Number(samples!.rows),
    samplesTwice: Number(samples!.rows) - Number(samples!.distinct),
    devices: polls.length,
    pollsMissing: missing,
    rollupWindows: full + off,
    rollupWindowsNot12: off,
    rssPeakMiB: Object.fromEntries([...rssPeak].map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
  };
  say(`samples ${result.samples} (${result.samplesTwice} twice); ${result.devices} devices, ${missing} polls missing; ${result.rollupWindows} one-minute windows, ${off} not of 12 samples`);
  console.log(JSON.stringify(result));
  if (result.samplesTwice !== 0 || missing !== 0 || off !== 0 || result.devices !== 12) exitCode = 1;
} catch (err) {
  say('failed:', (err as Error).message);
  exitCode = 1;
} finally {
  for (const p of [...procs.values()].reverse()) await p.stop(20_000).catch(() => {});
  await kafka.stop().catch(() => {});
  await ch.close().catch(() => {});
  for (const d of dirs) d.remove();
}
process.exit(exitCode);
