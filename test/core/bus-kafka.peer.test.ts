import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus, recordTimestamp } from '../../core/bus-kafka.js';
import { registry } from '../../core/metrics.js';
import { startKafka, type KafkaPeer } from '../peers/kafka.js';
import { busConformance } from './bus-conformance.js';
import { waitFor } from '../peers/util.js';

let kafka: KafkaPeer;
before(async () => {
  kafka = await startKafka();
});
after(async () => {
  await kafka?.stop();
});

busConformance('kafka', async () => new KafkaBus({ brokers: kafka.brokers, clientId: 'noctua-conformance', batchRetryMinMs: 50, batchRetryMaxMs: 200 }), { settleMs: 15_000, quietMs: 1_500 });

test('kafka: broker killed and restarted mid-stream: producers and consumers only wait, nothing is lost', async (t) => {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'noctua-restart' });
  t.after(() => bus.close());
  const topic = `restart.${Date.now()}`;
  await bus.ensureTopics([{ topic, partitions: 3 }]);
  const group = 'restart-group';
  const seen = new Set<number>();
  const consumer = bus.consumer({ groupId: group });
  await consumer.subscribe([topic]);
  await consumer.run({
    eachBatch: async (batch) => {
      for (const m of batch.messages) seen.add(Number(m.value!.toString()));
      await consumer.commit([{ topic, partition: batch.partition, offset: String(BigInt(batch.messages.at(-1)!.offset) + 1n) }]);
    },
  });
  const producer = await bus.producer();
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i += 500) {
      const n = Math.min(500, to - i);
      await producer.send(topic, Array.from({ length: n }, (_, j) => ({ key: `device-${(i + j) % 97}`, value: Buffer.from(String(i + j)) })));
    }
  };
  await send(0, 10_000);
  await waitFor('some of the first 10k consumed', () => seen.size > 0, 30_000);

  await kafka.kill();
  const restarted = kafka.restart();
  // Sent while the broker is down: the producer retries until it is back.
  const during = send(10_000, 12_000);
  await restarted;
  await during;
  await send(12_000, 15_000);

  await waitFor('all 15000 values consumed', () => seen.size === 15_000, 90_000, 250);
  const ends = await bus.endOffsets(topic);
  assert.equal(ends.reduce((s, e) => s + Number(e.offset), 0), 15_000, 'the idempotent producer wrote every message exactly once');
  await waitFor('commits reach the end', async () => {
    const c = await bus.committed(group, topic);
    return c.every((x, i) => x.offset === ends[i]!.offset);
  }, 30_000);
  await consumer.stop();
  await producer.close();
});

async function restampedCount(topic: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'noctua_bus_restamped_total');
  return (m?.values ?? []).filter((v) => v.labels.topic === topic).reduce((a, v) => a + v.value, 0);
}

test('kafka: a record dated 9 days back is not left to retention and one 2 h ahead is not refused: both go out at the send time, payload untouched, counted', async (t) => {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'noctua-timestamps' });
  t.after(() => bus.close());
  const topic = `timestamps.${Date.now()}`;
  await bus.ensureTopics([{ topic, partitions: 1 }]);
  const p = await bus.producer();
  const now = Date.now();
  const dated = { old: now - 9 * 86_400_000, ahead: now + 2 * 3_600_000, recent: now - 3_600_000 };
  // one send: without the restamp the broker refuses the whole batch for the record ahead
  await p.send(topic, Object.entries(dated).map(([key, ts]) => ({ key, value: Buffer.from(String(ts)), timestamp: ts })));
  const sentBy = Date.now();
  await p.close();
  const got = new Map<string, { ts: number; value: string }>();
  const c = bus.consumer({ groupId: `ts-${Date.now()}` });
  await c.subscribe([topic]);
  await c.run({ eachBatch: async (b) => void b.messages.forEach((m) => got.set(m.key!, { ts: m.timestamp, value: m.value!.toString() })) });
  await waitFor('the three records', () => got.size === 3, 30_000);
  await c.stop();
  for (const [key, ts] of Object.entries(dated)) assert.equal(got.get(key)!.value, String(ts), `${key}: the payload keeps the event time`);
  assert.equal(got.get('recent')!.ts, dated.recent, 'an event time inside the window stays the record timestamp');
  for (const key of ['old', 'ahead']) assert.ok(got.get(key)!.ts >= now && got.get(key)!.ts <= sentBy, `${key}: sent at the send time (${got.get(key)!.ts})`);
  assert.equal(await restampedCount(topic), 2);
  assert.deepEqual(recordTimestamp(now - 5 * 86_400_000, now), { ts: now, why: 'old' });
  assert.deepEqual(recordTimestamp(now + 11 * 60_000, now), { ts: now, why: 'ahead' });
  assert.deepEqual(recordTimestamp(now - 86_400_000, now), { ts: now - 86_400_000, why: null });
});
