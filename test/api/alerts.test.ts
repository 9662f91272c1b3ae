import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { MemoryBus } from '../../core/bus-memory.js';
import { partitionFor, type OutMessage } from '../../core/bus.js';
import { encodeBatch } from '../../core/codec.js';
import { registry } from '../../core/metrics.js';
import { TOPICS } from '../../core/types.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { buildApi } from '../../api/server.js';
import { storageQueries } from '../../api/queries.js';
import type { AlertView } from '../../api/alert-routes.js';
import { CommandSender, SilenceBook } from '../../processors/commands.js';
import { compileRules } from '../../processors/rules.js';
import { processorConfig, startProcessor, type Processor } from '../../processors/runner.js';
import { startRollupSink, type RollupSink } from '../../processors/rollup-sink.js';
import { readTopic, waitCaughtUp } from '../processors/harness.js';
import { tempDir, waitFor } from '../peers/util.js';

/**
 * The NOC's alert operations over HTTP: a processor on the in-process bus, the API in front of it,
 * ClickHouse (embedded) holding alert_history for a second API instance that has no processor.
 */

const TOKEN = 'test-token-alerts-0123456789';
const cfg = loadConfig({ env: {}, overrides: { api: { token: TOKEN, port: 0 } } });
const pcfg = processorConfig({ delay: { default: '5s' }, anomaly: { enabled: false } });
const RULES = compileRules(parse(`
groups:
  - name: cpu
    rules:
      - { alert: CpuHigh, expr: 'hrProcessorLoad > 80', severity: major }
route: { receiver: noc, group_by: [alertname, device], group_wait: 10s, group_interval: 30s, repeat_interval: 2m }
`));
const PARTS = 3;
const MIN = 60_000;
// Event time near the wall clock: the API stamps silences with the time they are issued.
const T0 = Math.floor((Date.now() - 3 * MIN) / 10_000) * 10_000;
const log = createLogger('silent');
const dir = tempDir('api-alerts');
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

function pickDevices(): [string, string, string, string] {
  const byPart = new Map<number, string>();
  for (let i = 0; byPart.size < PARTS; i++) if (!byPart.has(partitionFor(`sw-${i}`, PARTS))) byPart.set(partitionFor(`sw-${i}`, PARTS), `sw-${i}`);
  const abc = [0, 1, 2].map((p) => byPart.get(p)!);
  let j = 100;
  while (abc.includes(`sw-${j}`)) j++;
  return [abc[0]!, abc[1]!, abc[2]!, `sw-${j}`];
}
const [A, B, C, D] = pickDevices();
const ALL = [A, B, C, D];

function cpu(fromMs: number, toMs: number): OutMessage[] {
  const out: OutMessage[] = [];
  for (let t = fromMs; t < toMs; t += 10_000) {
    for (const device of ALL) out.push({ key: device, value: encodeBatch({ device, source: 'test', ts: t, samples: [{ metric: 'hrProcessorLoad', labels: { device }, ts: t, value: 95 }] }), timestamp: t });
  }
  return out;
}

let bus: MemoryBus;
let ch: ClickHouse;
let p: Processor;
let sink: RollupSink;
let app: FastifyInstance;
let historyApp: FastifyInstance;
let base: string;
let historyBase: string;
let commands: CommandSender;
let book: SilenceBook;
let otherBook: SilenceBook;

async function listen(a: FastifyInstance): Promise<string> {
  await a.listen({ host: '127.0.0.1', port: 0 });
  const addr = a.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

async function produce(msgs: OutMessage[]): Promise<void> {
  const pr = await bus.producer();
  await pr.send(TOPICS.samples, msgs);
  await pr.close();
}

before(async () => {
  ch = await openClickHouse(cfg.clickhouse, dir.path);
  await migrate(ch, cfg.clickhouse);
  bus = new MemoryBus();
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }, { topic: TOPICS.rollups, partitions: PARTS }, { topic: TOPICS.alerts, partitions: PARTS }]);
  p = await startProcessor({ bus, config: pcfg, rules: RULES, partitions: PARTS });
  sink = await startRollupSink({ bus, ch, log });
  commands = new CommandSender(bus, pcfg.input);
  // Each API instance has its own book; the second one learns of silences from the topic only.
  book = new SilenceBook(bus);
  otherBook = new SilenceBook(bus);
  await book.start();
  await otherBook.start();
  const common = { cfg, token: TOKEN, log, queries: storageQueries(ch, cfg), ready: async () => ({ clickhouse: 'ok' }) };
  app = await buildApi({ ...common, alerts: { commands, local: () => p, ch, silences: book } });
  historyApp = await buildApi({ ...common, alerts: { commands, local: () => null, ch, silences: otherBook } });
  base = await listen(app);
  historyBase = await listen(historyApp);
  await produce(cpu(T0, T0 + 3 * MIN));
  await waitCaughtUp(bus, pcfg.groupId);
});

after(async () => {
  await app?.close();
  await historyApp?.close();
  await commands?.close();
  await book?.stop();
  await otherBook?.stop();
  await sink?.stop();
  await p?.stop();
  await bus?.close();
  await ch?.close();
  dir.remove();
});

const get = async <T>(url: string) => {
  const r = await fetch(url, { headers: auth });
  return { status: r.status, body: (await r.json()) as T };
};
const alertsOf = async (url: string) => (await get<{ source: string; alerts: AlertView[] }>(url)).body;
const fpOf = async (device: string) => (await alertsOf(`${base}/api/v1/alerts?device=${device}`)).alerts[0]!.fingerprint;

async function rejections(reason: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'noctua_api_alert_rejections_total');
  return (m?.values ?? []).filter((v) => v.labels.reason === reason).reduce((s, v) => s + Number(v.value), 0);
}

test('alert routes need the token', async () => {
  for (const [method, path] of [['GET', '/api/v1/alerts'], ['GET', '/api/v1/silences'], ['POST', '/api/v1/alerts/0123456789abcdef/ack'], ['POST', '/api/v1/silences'], ['DELETE', '/api/v1/silences/x']] as const) {
    assert.equal((await fetch(base + path, { method })).status, 401, `${method} ${path}`);
  }
});

test('GET /api/v1/alerts: current alerts from the processor in this process, filtered; bad filters are clear, counted 400s', async () => {
  const all = await alertsOf(`${base}/api/v1/alerts`);
  assert.equal(all.source, 'processor');
  assert.deepEqual(all.alerts.map((a) => a.labels.device).sort(), [...ALL].sort());
  assert.ok(all.alerts.every((a) => a.state === 'firing' && a.rule === 'CpuHigh' && a.severity === 'major' && a.ack === null));
  assert.equal((await alertsOf(`${base}/api/v1/alerts?device=${B}`)).alerts.length, 1);
  assert.equal((await alertsOf(`${base}/api/v1/alerts?severity=critical,minor`)).alerts.length, 0);
  assert.equal((await alertsOf(`${base}/api/v1/alerts?state=firing&severity=major`)).alerts.length, 4);
  const before = await rejections('bad_state');
  const bad = await get<{ message: string }>(`${base}/api/v1/alerts?state=burning`);
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /unknown state "burning": use pending, firing, resolved/);
  assert.equal(await rejections('bad_state'), before + 1);
  assert.equal((await get(`${base}/api/v1/alerts?limit=0`)).status, 400);
});

test('ack and silence through the API reach the processor: repeats stop for the acked alert, the silence holds on every partition', async () => {
  const fpA = await fpOf(A);
  // Refusals first: each is a clear 4xx and nothing is sent.
  const ends = async () => (await bus.endOffsets(TOPICS.samples)).map((e) => e.offset).join(',');
  const endsBefore = await ends();
  const post = (path: string, body: unknown, b = base) => fetch(b + path, { method: 'POST', headers: json, body: JSON.stringify(body) });
  const unknown = await post('/api/v1/alerts/ffffffffffffffff/ack', { by: 'alice' });
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as { message: string }).message, /no alert with fingerprint ffffffffffffffff/);
  assert.equal((await post(`/api/v1/alerts/${fpA}/ack`, { comment: 'who am I' })).status, 400, 'by is required');
  assert.equal((await post('/api/v1/alerts/not-a-fingerprint/ack', { by: 'alice' })).status, 400);
  assert.equal((await post('/api/v1/silences', { matchers: [], createdBy: 'bob', duration: '1h' })).status, 400, 'a silence needs matchers');
  const badRe = await post('/api/v1/silences', { matchers: [{ name: 'device', op: '=~', value: '(' }], createdBy: 'bob', duration: '1h' });
  assert.equal(badRe.status, 400);
  assert.match(((await badRe.json()) as { message: string }).message, /not a valid regular expression/);
  assert.equal((await post('/api/v1/silences', { matchers: [{ name: 'device', op: '=', value: B }], createdBy: 'bob' })).status, 400, 'a silence needs an end');
  assert.equal(await ends(), endsBefore, 'refused requests send nothing');

  const ack = await post(`/api/v1/alerts/${fpA}/ack`, { by: 'alice', comment: 'looking' });
  assert.equal(ack.status, 202);
  assert.deepEqual(((await ack.json()) as { partitions: number[] }).partitions, [-1], 'keyed by device');
  const sil = await post('/api/v1/silences', { id: 'bc', matchers: [{ name: 'device', op: '=~', value: `${B}|${C}` }], createdBy: 'bob', comment: 'work on B and C', duration: '1h' });
  assert.equal(sil.status, 201);
  const silBody = (await sil.json()) as { silence: { id: string; endsAt: number; startsAt: number }; partitions: number[] };
  assert.deepEqual(silBody.partitions, [0, 1, 2]);
  assert.equal(silBody.silence.endsAt - silBody.silence.startsAt, 3_600_000);
  const issuedAt = silBody.silence.startsAt;

  await produce(cpu(T0 + 3 * MIN, T0 + 12 * MIN));
  await waitCaughtUp(bus, pcfg.groupId);
  const acked = (await alertsOf(`${base}/api/v1/alerts?device=${A}`)).alerts[0]!;
  assert.equal(acked.ack?.by, 'alice');
  assert.equal(acked.ack?.comment, 'looking');
  assert.equal((await alertsOf(`${base}/api/v1/alerts?device=${C}`)).alerts[0]!.suppressedBy, 'silence:bc');
  const silences = await get<{ silences: { id: string; createdBy: string; status: string }[] }>(`${base}/api/v1/silences`);
  assert.deepEqual(silences.body.silences.map((s) => [s.id, s.createdBy, s.status]), [['bc', 'bob', 'active']]);

  const ns = (await readTopic(bus, pcfg.notificationsTopic)).map((m) => ({ ts: m.timestamp, ...(JSON.parse(m.value!.toString()) as { alerts: { status: string; labels: Record<string, string> }[] }) }));
  const firingAt = (d: string) => ns.filter((n) => n.alerts.some((a) => a.status === 'firing' && a.labels.device === d)).map((n) => n.ts);
  // The commands were issued at wall-clock `issuedAt` ~ event time T0 + 3 min; group flushes run every 30 s.
  const quietFrom = Math.max(T0 + 3 * MIN, issuedAt) + 30_000;
  for (const d of ALL) assert.ok(firingAt(d).length > 0, `${d} notified before the commands`);
  assert.deepEqual(firingAt(A).filter((t) => t > quietFrom), [], 'no repeat of the acknowledged alert');
  assert.deepEqual(firingAt(B).filter((t) => t > quietFrom), [], 'B silenced');
  assert.deepEqual(firingAt(C).filter((t) => t > quietFrom), [], 'C silenced, on another partition');
  assert.ok(firingAt(D).filter((t) => t > quietFrom).length >= 3, 'the control device keeps repeating');

  // Expire it: unknown ids and a missing `by` are refused.
  assert.equal((await fetch(`${base}/api/v1/silences/nope?by=bob`, { method: 'DELETE', headers: auth })).status, 404);
  assert.equal((await fetch(`${base}/api/v1/silences/bc`, { method: 'DELETE', headers: auth })).status, 400);
  const del = await fetch(`${base}/api/v1/silences/bc?by=bob`, { method: 'DELETE', headers: auth });
  assert.equal(del.status, 202);
  await waitFor('the expiry applied', async () => (await get<{ silences: { status: string }[] }>(`${base}/api/v1/silences`)).body.silences[0]?.status === 'expired', 10_000, 20);
});

test('GET /api/v1/alerts without a processor in the process: the latest alert_history row per fingerprint; an ack still routes', async () => {
  const fpA = await fpOf(A);
  await waitFor('alert history in ClickHouse has the ack', async () => {
    const h = await alertsOf(`${historyBase}/api/v1/alerts?device=${A}`);
    return h.alerts[0]?.ack?.by === 'alice';
  }, 30_000, 100);
  const h = await alertsOf(`${historyBase}/api/v1/alerts`);
  assert.equal(h.source, 'history');
  assert.deepEqual(h.alerts.map((a) => a.labels.device).sort(), [...ALL].sort());
  const a = h.alerts.find((x) => x.fingerprint === fpA)!;
  assert.equal(a.state, 'firing');
  assert.equal(a.rule, 'CpuHigh');
  assert.equal(a.labels.alertname, 'CpuHigh');
  assert.equal(a.endsAt, null);
  assert.equal((await alertsOf(`${historyBase}/api/v1/alerts?state=resolved`)).alerts.length, 0);
  assert.equal((await alertsOf(`${base}/api/v1/alerts?source=history&device=${D}`)).alerts[0]!.ack, null);
  // An ack through the processor-less API: checked against history, keyed by device, applied by the processor.
  const fpD = await fpOf(D);
  const r = await fetch(`${historyBase}/api/v1/alerts/${fpD}/ack`, { method: 'POST', headers: json, body: JSON.stringify({ by: 'dave' }) });
  assert.equal(r.status, 202);
  assert.equal((await fetch(`${historyBase}/api/v1/alerts/eeeeeeeeeeeeeeee/ack`, { method: 'POST', headers: json, body: JSON.stringify({ by: 'dave' }) })).status, 404);
  // Silences issued through the other API instance: listed from the silence topic, expired as it was.
  const listed = await waitFor('the silence in the other book', async () => {
    const r = await get<{ source: string; silences: { id: string; status: string; endsAt: number }[] }>(`${historyBase}/api/v1/silences`);
    return r.body.silences.find((s) => s.id === 'bc' && s.status === 'expired') ? r.body : null;
  }, 10_000, 50);
  assert.equal(listed.source, 'book');
  assert.equal((await fetch(`${historyBase}/api/v1/silences/nope?by=x`, { method: 'DELETE', headers: auth })).status, 404);
  await produce(cpu(T0 + 12 * MIN, T0 + 12 * MIN + 10_000));
  await waitCaughtUp(bus, pcfg.groupId);
  assert.equal((await alertsOf(`${base}/api/v1/alerts?device=${D}`)).alerts[0]!.ack?.by, 'dave');
});

test('?wait= on a write answers once the command is applied (read-your-writes), from the processor here or from alert_history', async () => {
  const fpA = await fpOf(A);
  const post = (path: string, body: unknown, b = base) => fetch(b + path, { method: 'POST', headers: json, body: JSON.stringify(body) });
  for (const bad of ['45s', 'soon']) {
    const r = await post(`/api/v1/alerts/${fpA}/ack?wait=${bad}`, { by: 'carol' });
    assert.equal(r.status, 400, bad);
    assert.equal(((await r.json()) as { error: string }).error, 'invalid_wait');
  }
  const un = await post(`/api/v1/alerts/${fpA}/unack?wait=10s`, { by: 'carol' });
  assert.equal(un.status, 200);
  const unBody = (await un.json()) as { status: string; alert: AlertView };
  assert.equal(unBody.status, 'applied');
  assert.equal(unBody.alert.ack, null);
  const ack = await post(`/api/v1/alerts/${fpA}/ack?wait=10s`, { by: 'carol', comment: 'mine now' });
  assert.equal(ack.status, 200);
  assert.equal(((await ack.json()) as { alert: AlertView }).alert.ack?.by, 'carol');
  // read back at once: the state already says so
  assert.equal((await alertsOf(`${base}/api/v1/alerts?device=${A}`)).alerts[0]!.ack?.by, 'carol');

  const sil = await post('/api/v1/silences?wait=10s', { id: 'waited', matchers: [{ name: 'device', op: '=', value: D }], createdBy: 'carol', duration: '10m' });
  assert.equal(sil.status, 201);
  assert.equal(((await sil.json()) as { status: string }).status, 'applied');
  assert.ok((await get<{ silences: { id: string }[] }>(`${base}/api/v1/silences`)).body.silences.some((s) => s.id === 'waited'));
  const del = await fetch(`${base}/api/v1/silences/waited?by=carol&wait=10s`, { method: 'DELETE', headers: auth });
  assert.equal(del.status, 200);
  assert.equal(((await del.json()) as { status: string }).status, 'applied');

  // No processor in that process: an ack is seen applied once its alert_history row is written.
  const fpD = await fpOf(D);
  const h = await post(`/api/v1/alerts/${fpD}/unack?wait=25s`, { by: 'erin' }, historyBase);
  assert.equal(h.status, 200);
  assert.equal(((await h.json()) as { alert: AlertView }).alert.ack, null);
  // without wait, as before: accepted once on the bus
  assert.equal((await post(`/api/v1/alerts/${fpD}/ack`, { by: 'erin' }, historyBase)).status, 202);
});
