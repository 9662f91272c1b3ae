import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus } from '../../core/bus-kafka.js';
import { TOPICS } from '../../core/types.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { startRollupSink } from '../../processors/rollup-sink.js';
import { startKafka, type KafkaPeer } from '../peers/kafka.js';
import { tempDir, waitFor, sleep, type Proc } from '../peers/util.js';
import { demoMessages, readTopic, canonical, rollupRows, waitCaughtUp, processorChild, processorReady } from './harness.js';

/**
 * Exactly once on the real broker: 10 minutes of the demo network through two processor processes,
 * one of them SIGKILLed twice mid-stream (and restarted), must give the same rollups and alert
 * transitions, row by row in ClickHouse and record by record on the topics, as one uninterrupted
 * instance.
 */

const PARTS = 3;
let kafka: KafkaPeer;
let bus: KafkaBus;
const dir = tempDir('exactly-once');
let ch: ClickHouse;

before(async () => {
  kafka = await startKafka();
  bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'eo-test', sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 200 });
  ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'full', rawTtlDays: 14 }, dir.path);
});
after(async () => {
  // A child whose graceful stop waits on a broker that is gone would otherwise outlive a failed run.
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await bus?.close();
  await ch?.close();
  await kafka?.stop();
  dir.remove();
});

const children: Proc[] = [];
function child(prefix: string, group: string): Proc {
  const c = processorChild(kafka.brokers, prefix, group, PARTS);
  children.push(c);
  return c;
}

const ready = processorReady;

async function committedTotal(group: string): Promise<bigint> {
  const c = await bus.committed(group, TOPICS.samples);
  return c.reduce((s, x) => s + (BigInt(x.offset) > 0n ? BigInt(x.offset) : 0n), 0n);
}

async function sinkRows(db: string, prefix: string): Promise<{ rollups: string[]; alerts: string[] }> {
  const h = { ...ch, database: db } as ClickHouse;
  await migrate(h, { rawTtlDays: 14 });
  const sink = await startRollupSink({ bus, ch: h, groupId: `sink-${db}`, rollupsTopic: `${prefix}rollups`, alertsTopic: `${prefix}alerts` });
  const expectRollups = (await readTopic(bus, `${prefix}rollups`)).length;
  try {
    await waitFor(`rollups in ${db}`, async () => {
      const rs = await ch.client.query({ query: `SELECT (SELECT count() FROM ${db}.rollups_1m) + (SELECT count() FROM ${db}.rollups_5m) AS n`, format: 'JSONEachRow' });
      const [{ n }] = await rs.json<{ n: string }>();
      return Number(n) > 0 && Number(n) >= expectRollups * 0.1;
    }, 60_000, 250);
    await sleep(3000);
  } finally {
    await sink.stop();
  }
  const q = async (sql: string) => (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>()).map((r) => JSON.stringify(r));
  const rollups = [
    ...(await q(`SELECT '1m' AS w, metric, series, device, ts, count, sum, min, max, first, last, p50, p95, p99, sketch, revision FROM ${db}.rollups_1m ORDER BY metric, series, ts, revision`)),
    ...(await q(`SELECT '5m' AS w, metric, series, device, ts, count, sum, min, max, first, last, p50, p95, p99, sketch, revision FROM ${db}.rollups_5m ORDER BY metric, series, ts, revision`)),
  ];
  const alerts = await q(`SELECT ts, fingerprint, event, state, previous, rule, severity, device, labels, annotations, value, starts_at, ends_at, suppressed_by, flapping FROM ${db}.alert_history ORDER BY fingerprint, ts, event, state`);
  return { rollups, alerts };
}

test('two instances, one SIGKILLed twice mid-stream: rollups and alert transitions identical to an uninterrupted run', { timeout: 300_000 }, async () => {
  const msgs = demoMessages(10, 12, 8);
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
  const producer = await bus.producer();
  const chunk = Math.ceil(msgs.length / 30);

  // The interrupted run consumes while the input is still arriving, like a live feed.
  const a1 = await ready(child('eo.', 'eo'));
  const b = await ready(child('eo.', 'eo'));
  let killed = 0;
  let committedAtKill = 0n;
  let a: Proc = a1;
  for (let i = 0; i < 30; i++) {
    await producer.send(TOPICS.samples, msgs.slice(i * chunk, (i + 1) * chunk));
    await sleep(150);
    if (i === 9 || i === 19) {
      // Only kill once the group has committed work since the last kill, so state really has to move.
      // (Not "since now": the group may already have caught up with everything sent so far.)
      const since = committedAtKill;
      await waitFor('progress before the kill', async () => (committedAtKill = await committedTotal('eo')) > since, 60_000, 50).catch((err) => {
        throw new Error(`${(err as Error).message}\n--- a ---\n${a.output().slice(-3000)}\n--- b ---\n${b.output().slice(-3000)}`);
      });
      await a.kill('SIGKILL');
      killed++;
      a = await ready(child('eo.', 'eo'));
    }
  }
  await producer.close();
  await waitCaughtUp(bus, 'eo', 180_000);
  await a.stop();
  await b.stop();
  assert.equal(killed, 2);

  // Reference: one uninterrupted instance over the same input.
  const ref = await ready(child('ref.', 'ref'));
  await waitCaughtUp(bus, 'ref', 180_000);
  await ref.stop();

  // On the topics: every record exactly once (no duplicate from a killed transaction, none lost).
  const eoRollups = rollupRows(await readTopic(bus, 'eo.rollups'));
  const refRollups = rollupRows(await readTopic(bus, 'ref.rollups'));
  assert.ok(refRollups.length > 5000, `the demo produced rollups (${refRollups.length})`);
  assert.equal(eoRollups.length, refRollups.length, 'same number of rollup records');
  assert.deepEqual(eoRollups, refRollups);
  const eoAlerts = canonical(await readTopic(bus, 'eo.alerts'));
  const refAlerts = canonical(await readTopic(bus, 'ref.alerts'));
  assert.ok(refAlerts.length > 0, 'the demo rules produced alert transitions');
  assert.deepEqual(eoAlerts, refAlerts);

  // In ClickHouse, row by row.
  const eo = await sinkRows('eo', 'eo.');
  const rf = await sinkRows('ref', 'ref.');
  assert.ok(rf.rollups.length > 1000);
  assert.equal(eo.rollups.length, rf.rollups.length);
  assert.deepEqual(eo.rollups, rf.rollups);
  assert.deepEqual(eo.alerts, rf.alerts);
});
