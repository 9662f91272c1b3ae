import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { freePort, sleep, startProcess, tempDir, waitFor } from '../peers/util.js';

const root = join(import.meta.dirname, '../../..');

test('npm start runs the embedded pipeline: demo data is queryable within 30 s, and a clean stop loses no batch', { timeout: 240_000 }, async () => {
  const dir = tempDir('e2e-start');
  const port = await freePort();
  // Its own process group, so the test can press Ctrl-C the way a terminal does (npm forwards no signals).
  const proc = startProcess('npm', ['start', '--silent'], {
    cwd: root,
    detached: true,
    env: { ...process.env, NOCTUA_DATA_DIR: dir.path, NOCTUA_API__PORT: String(port), NOCTUA_DEMO__INTERVAL_MS: '1000', NOCTUA_DEMO__BACKFILL_MS: '60000', NOCTUA_LOG_LEVEL: 'warn', NOCTUA_TOKEN: '' },
  });
  try {
    // Build (prestart) plus start-up; then the banner tells where to look and the token.
    const banner = await waitFor('the start banner', () => /Token\s+(\S+)/.exec(proc.output()), 180_000, 200);
    const token = banner[1]!;
    const started = Date.now();
    assert.match(proc.output(), new RegExp(`http://127.0.0.1:${port}/health`));
    const base = `http://127.0.0.1:${port}`;
    const get = (path: string) => fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await fetch(base + '/health')).status, 200);
    assert.equal((await fetch(base + '/api/v1/devices')).status, 401, 'no token, no data');

    const series = await waitFor('demo series through the series endpoint', async () => {
      const r = await get('/api/v1/series?metric=ifHCInOctets&device=core-rtr-1&from=-5m');
      if (r.status !== 200) return null;
      const body = (await r.json()) as { series: { labels: Record<string, string>; points: [number, number][] }[] };
      return body.series.length > 0 && body.series.every((s) => s.points.length > 0) ? body : null;
    }, 30_000, 500);
    assert.ok(Date.now() - started <= 30_000);
    assert.equal(series.series[0]!.labels.device, 'core-rtr-1');

    const csv = await waitFor('rows through the SQL endpoint', async () => {
      const r = await get('/api/v1/sql?format=csv&q=' + encodeURIComponent("SELECT count() FROM noctua.samples WHERE device = 'core-rtr-1'"));
      const t = await r.text();
      const n = Number(t.trim().split("\n").pop());
      return r.status === 200 && n > 0 ? n : null;
    }, 30_000, 500);
    assert.ok(csv > 0);

    // the banner's anomaly query answers (the events table with each anomaly's reasons)
    const anomalies = /Anomalies curl .* --data-urlencode "q=(.+)" -G /.exec(proc.output());
    assert.ok(anomalies, 'the banner shows where the anomalies are');
    const ar = await get('/api/v1/sql?q=' + encodeURIComponent(anomalies[1]!));
    assert.equal(ar.status, 200, await ar.clone().text());
    assert.deepEqual(((await ar.json()) as { meta: { name: string }[] }).meta.map((m) => m.name), ['ts', 'device', 'reasons', 'message']);

    // The Monday report, made now over the last hour: a PDF from the running pipeline's own tables.
    const run = await fetch(base + '/api/v1/reports/network-weekly/run', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ from: new Date(Date.now() - 3_600_000).toISOString(), deliver: false }) });
    assert.equal(run.status, 201, await run.clone().text());
    const made = (await run.json()) as { links: string[]; sectionErrors: unknown[] };
    assert.deepEqual(made.sectionErrors, []);
    const pdf = await get(made.links.find((l) => l.endsWith('.pdf'))!);
    assert.equal(pdf.headers.get('content-type'), 'application/pdf');
    assert.equal(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString(), '%PDF-');
    assert.equal((await get('/api/v1/reports/network-weekly/latest/..%2F..%2Fapi-token')).status, 404, 'only the files a run made');
    // The banner's line as it is: a bare POST, no body.
    const bare = await fetch(base + '/api/v1/reports/network-weekly/run', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(bare.status, 201, await bare.clone().text());
    const odd = await fetch(base + '/api/v1/reports/network-weekly/run', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"from":"yesterday-ish","deliver":"maybe"}' });
    assert.equal(odd.status, 400, await odd.clone().text());

    const sqlErr = await get('/api/v1/sql?q=' + encodeURIComponent('DROP TABLE noctua.samples'));
    assert.equal(sqlErr.status, 400);

    process.kill(-proc.child.pid!, 'SIGINT');
    await proc.exited;
    assert.ok(proc.child.exitCode === 0 || proc.child.signalCode === 'SIGINT', proc.output().slice(-2000));
    const summary = /demo produced (\d+) samples/.exec(proc.output());
    assert.ok(summary, 'the shutdown summary names the samples produced:\n' + proc.output().slice(-2000));
    assert.match(proc.output(), /stopped cleanly/);

    // Every sample the demo had accepted on the bus is in ClickHouse after the clean stop.
    const ch = await openClickHouse(loadConfig({ env: {} }).clickhouse, dir.path);
    const rows = (await (await ch.client.query({ query: 'SELECT count() AS n FROM noctua.samples', format: 'JSONEachRow' })).json()) as { n: string }[];
    await ch.close();
    assert.equal(Number(rows[0]!.n), Number(summary[1]));
  } finally {
    try {
      process.kill(-proc.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await proc.kill();
    dir.remove();
  }
});

test('the embedded pipeline killed (SIGKILL) and started again: every demo poll stored once, none skipped', { timeout: 240_000 }, async () => {
  const dir = tempDir('e2e-kill');
  const port = await freePort();
  const env = { ...process.env, NOCTUA_DATA_DIR: dir.path, NOCTUA_API__PORT: String(port), NOCTUA_DEMO__INTERVAL_MS: '1000', NOCTUA_DEMO__BACKFILL_MS: '30000', NOCTUA_LOG_LEVEL: 'warn', NOCTUA_TOKEN: 'kill-test-token-0123456789' };
  const cli = join(root, 'dist/cli/noctua.js');
  const stored = async (): Promise<number> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/sql?format=csv&q=` + encodeURIComponent("SELECT count() FROM noctua.samples WHERE metric = 'sysUpTime'"), { headers: { authorization: `Bearer ${env.NOCTUA_TOKEN}` } }).catch(() => null);
    return r?.status === 200 ? Number((await r.text()).trim().split('\n').pop()) : 0;
  };
  const procs: ReturnType<typeof startProcess>[] = [];
  try {
    const first = startProcess(process.execPath, [cli, 'start'], { env });
    procs.push(first);
    // killed mid-run: the history stored and live polls going on
    await waitFor('history and live polls stored', async () => (await stored()) >= 12 * 40, 120_000, 500);
    await first.kill('SIGKILL');
    await sleep(2500); // down for a while: the restart catches up on these polls
    const second = startProcess(process.execPath, [cli, 'start'], { env });
    procs.push(second);
    const before = await waitFor('the restart serving', async () => (await stored()) || null, 120_000, 500);
    await waitFor('live polls after the restart', async () => (await stored()) >= before + 12 * 5, 60_000, 500);
    second.child.kill('SIGINT');
    await second.exited;
    assert.match(second.output(), /stopped cleanly/, second.output().slice(-2000));

    const ch = await openClickHouse(loadConfig({ env: {} }).clickhouse, dir.path);
    try {
      const q = async (query: string) => (await (await ch.client.query({ query, format: 'JSONEachRow' })).json()) as Record<string, string>[];
      const [dup] = await q('SELECT count() AS rows, uniqExact(series, ts) AS distinct_rows FROM noctua.samples');
      assert.equal(dup!.rows, dup!.distinct_rows, 'no sample stored twice');
      // each device's uptime series: one poll a second from its first to its last, none missing across the kill
      const devices = await q("SELECT device, count() AS n, toUnixTimestamp64Milli(max(ts)) - toUnixTimestamp64Milli(min(ts)) AS span FROM noctua.samples WHERE metric = 'sysUpTime' GROUP BY device ORDER BY device");
      assert.equal(devices.length, 12);
      for (const d of devices) assert.equal(Number(d.n), Number(d.span) / 1000 + 1, `${d.device}: ${d.n} polls over ${Number(d.span) / 1000} s`);
    } finally {
      await ch.close();
    }
  } finally {
    for (const p of procs) await p.kill();
    dir.remove();
  }
});
