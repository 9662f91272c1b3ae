import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { freePort, startProcess, tempDir, waitFor } from '../peers/util.js';

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
