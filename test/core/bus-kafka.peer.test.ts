import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus } from '../../core/bus-kafka.js';
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
