import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { MemoryBus } from '../../core/bus-memory.js';
import { TOPICS } from '../../core/types.js';
import { seriesId, seriesKey } from '../../core/series.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { buildApi, parseTime } from '../../api/server.js';
import { storageQueries } from '../../api/queries.js';
import { LiveHub } from '../../api/live.js';
import { encodeRollups } from '../../processors/rollup-codec.js';
import type { RollupRecord } from '../../processors/runner.js';
import { recentWeekdayAt, tempDir, waitFor } from '../peers/util.js';

const TOKEN = 'test-token-0123456789abcdef';
const cfg = loadConfig({ env: {}, overrides: { api: { token: TOKEN, port: 0, maxWsPayloadBytes: 4096, sql: { maxResultRows: 1000, maxExecutionTimeS: 2 } } } });
const dir = tempDir('api');
let ch: ClickHouse;
let app: FastifyInstance;
let bus: MemoryBus;
let hub: LiveHub;
let base: string;
const T0 = recentWeekdayAt(12);

before(async () => {
  ch = await openClickHouse(cfg.clickhouse, dir.path);
  await migrate(ch, cfg.clickhouse);
  const labels = { device: 'rtr-1', ifIndex: '1', ifName: 'ge-0/0/0' };
  const key = seriesKey('if_in_bps', labels);
  const id = seriesId(key);
  await ch.client.insert({ table: 'noctua.series', values: [{ series: id, metric: 'if_in_bps', device: 'rtr-1', labels, key, last_seen: T0 }], format: 'JSONEachRow' });
  await ch.client.insert({
    table: 'noctua.samples',
    values: Array.from({ length: 60 }, (_, i) => ({ metric: 'if_in_bps', series: id, device: 'rtr-1', ts: T0 + i * 10_000, value: i * 100 })),
    format: 'JSONEachRow',
  });
  bus = new MemoryBus();
  await bus.ensureTopics([{ topic: TOPICS.rollups, partitions: 2 }, { topic: TOPICS.alerts, partitions: 2 }]);
  const log = createLogger('silent');
  hub = new LiveHub(bus, log, cfg.api.maxWsPayloadBytes);
  app = await buildApi({ cfg, token: TOKEN, log, queries: storageQueries(ch, cfg), ready: async () => ({ clickhouse: 'ok' }), plugins: [(a) => hub.register(a)] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await hub.start();
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await hub.stop();
  await app.close();
  await bus.close();
  await ch.close();
  dir.remove();
});

const auth = { authorization: `Bearer ${TOKEN}` };

test('health and ready need no token; everything else does', async () => {
  assert.equal((await fetch(`${base}/health`)).status, 200);
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  for (const p of ['/metrics', '/api/v1/devices', '/api/v1/series?metric=x', '/api/v1/sql?q=SELECT%201']) {
    assert.equal((await fetch(base + p)).status, 401, p);
    assert.equal((await fetch(base + p, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status, 401, p);
  }
  const m = await fetch(`${base}/metrics`, { headers: auth });
  assert.equal(m.status, 200);
  const text = await m.text();
  assert.match(text, /noctua_api_requests_total/);
  // the runtime's figures under the standard names every Prometheus client gives them (stock dashboards read those)
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
});

test('a series read over a time range returns the points in order, with labels', async () => {
  const r = await fetch(`${base}/api/v1/series?metric=if_in_bps&device=rtr-1&from=${T0}&to=${T0 + 300_000}`, { headers: auth });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { series: { labels: Record<string, string>; points: [number, number][] }[] };
  assert.equal(body.series.length, 1);
  assert.equal(body.series[0]!.labels.ifName, 'ge-0/0/0');
  assert.equal(body.series[0]!.points.length, 30);
  assert.deepEqual(body.series[0]!.points[1], [T0 + 10_000, 100]);
  const stepped = (await (await fetch(`${base}/api/v1/series?metric=if_in_bps&from=${T0}&to=${T0 + 600_000}&step=60000&l.ifName=ge-0/0/0`, { headers: auth })).json()) as typeof body;
  assert.equal(stepped.series[0]!.points.length, 10);
  assert.deepEqual(stepped.series[0]!.points[0], [T0, 250]);
  // agg=max: the highest sample of the minute (values i*100 every 10 s: 0..500), not its mean
  const hi = (await (await fetch(`${base}/api/v1/series?metric=if_in_bps&from=${T0}&to=${T0 + 600_000}&step=60000&agg=max&l.ifName=ge-0/0/0`, { headers: auth })).json()) as typeof body;
  assert.deepEqual(hi.series[0]!.points[0], [T0, 500]);
  const badAgg = await fetch(`${base}/api/v1/series?metric=if_in_bps&step=60000&agg=median`, { headers: auth });
  assert.equal(badAgg.status, 400);
  const bad = await fetch(`${base}/api/v1/series?metric=if_in_bps&from=yesterday-ish`, { headers: auth });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { message: string }).message, /cannot read time/);
});

test('SQL: JSON and CSV, read-only, bounded rows, hostile statements refused with a clear error', async () => {
  const j = await fetch(`${base}/api/v1/sql`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT count() AS n, sum(value) AS s FROM noctua.samples' }) });
  assert.equal(j.status, 200);
  const jb = (await j.json()) as { data: { n: string | number; s: number }[] };
  assert.equal(Number(jb.data[0]!.n), 60);
  assert.equal(jb.data[0]!.s, 177_000);
  const c = await fetch(`${base}/api/v1/sql?format=csv&q=${encodeURIComponent('SELECT device, count() AS n FROM noctua.samples GROUP BY device')}`, { headers: auth });
  assert.equal(c.status, 200);
  assert.match(c.headers.get('content-type') ?? '', /text\/csv/);
  assert.equal((await c.text()).trim(), '"device","n"\n"rtr-1",60');
  for (const q of ['DROP TABLE noctua.samples', "INSERT INTO noctua.samples (metric) VALUES ('x')", 'SELECT 1; DROP TABLE noctua.samples', 'SELECT 1 SETTINGS readonly=0', 'ALTER TABLE noctua.samples DELETE WHERE 1', 'SELECT number FROM system.numbers']) {
    const r = await fetch(`${base}/api/v1/sql?q=${encodeURIComponent(q)}`, { headers: auth });
    assert.equal(r.status, 400, q);
    assert.ok(((await r.json()) as { message: string }).message.length > 0);
  }
  const still = (await (await fetch(`${base}/api/v1/sql?format=csv&q=${encodeURIComponent('SELECT count() FROM noctua.samples')}`, { headers: auth })).text()).trim().split('\n').pop();
  assert.equal(still, '60', 'the table survived');
  const garbage = await fetch(`${base}/api/v1/sql?q=${encodeURIComponent('SELEKT * FROM nowhere')}`, { headers: auth });
  assert.equal(garbage.status, 400);
});

test('WebSocket: needs the token, pushes matching rollups, survives an oversized frame and garbage', async () => {
  const url = base.replace('http', 'ws') + '/api/v1/live';
  await assert.rejects(new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', resolve);
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
  }), /401/);

  const ws = new WebSocket(`${url}?token=${TOKEN}`);
  const got: Record<string, unknown>[] = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString()) as Record<string, unknown>));
  await new Promise((r) => ws.on('open', r));
  ws.send('not json');
  ws.send(JSON.stringify({ op: 'subscribe', id: 'a', metric: 'if_in_bps', device: 'rtr-1', window: '10s' }));
  await waitFor('the subscription ack', () => got.some((m) => m.type === 'ack'), 5000, 20);
  assert.ok(got.some((m) => m.type === 'error'), 'garbage gets an error message, not a crash');
  const producer = await bus.producer();
  const rollup = (device: string, end: number): RollupRecord => {
    const labels = { device, ifIndex: '1' };
    return {
      window: '10s', kind: 'final', revision: 0, key: seriesKey('if_in_bps', labels), metric: 'if_in_bps', labels, start: end - 10_000, end,
      count: 2, sum: 10, min: 1, max: 9, avg: 5, first: 1, firstTs: end - 9_000, last: 7, lastTs: end - 1, rate: null, p50: 5, p95: 9, p99: 9, sketch: { a: 0.01, pi: [0, 220], pc: [1, 1] },
    };
  };
  await producer.send(TOPICS.rollups, [
    { key: 'rtr-2', value: encodeRollups([rollup('rtr-2', T0)]) },
    { key: 'rtr-1', value: Buffer.from('{broken') },
    { key: 'rtr-1', value: encodeRollups([rollup('rtr-1', T0 + 10_000)]).subarray(0, 20) },
    { key: 'rtr-1', value: encodeRollups([rollup('rtr-1', T0 + 10_000)]) },
  ]);
  const point = await waitFor('a pushed point', () => got.find((m) => m.type === 'point'), 5000, 20);
  assert.equal(point.ts, T0 + 10_000);
  assert.equal((point.labels as Record<string, string>).device, 'rtr-1');
  assert.equal(got.filter((m) => m.type === 'point').length, 1, 'only the subscribed device');

  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  ws.send('x'.repeat(10_000));
  assert.equal(await closed, 1009);
  // The server is still there for everyone else.
  assert.equal((await fetch(`${base}/health`)).status, 200);
  await producer.close();
});

test('times: epoch ms, ISO, now and relative', () => {
  const now = 1_000_000_000;
  assert.equal(parseTime('-15m', 0, now), now - 900_000);
  assert.equal(parseTime('now-2h', 0, now), now - 7_200_000);
  assert.equal(parseTime('now', 0, now), now);
  assert.equal(parseTime('1700000000000', 0, now), 1_700_000_000_000);
  assert.equal(parseTime('2026-11-27T00:00:00Z', 0, now), Date.UTC(2026, 10, 27));
  assert.equal(parseTime(undefined, 42, now), 42);
});
