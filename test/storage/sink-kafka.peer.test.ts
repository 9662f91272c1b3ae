import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, waitFor } from '../peers/util.js';
import { startKafka } from '../peers/kafka.js';
import { KafkaBus } from '../../core/bus-kafka.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { Sink, type FlushRange } from '../../storage/sink.js';
import { sampleMessages, produce, waitCommitted, storedPerSeries, compare, SAMPLES, EVENTS, type Expected } from './fixtures.js';

/** A broker, an embedded ClickHouse migrated, and the sink's topics with `partitions` each. */
async function peers(name: string, partitions: number) {
  const kafka = await startKafka();
  const dir = tempDir(name);
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 }, dir.path);
  const bus = new KafkaBus({ brokers: kafka.brokers, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 });
  await migrate(ch, { rawTtlDays: 14 });
  await bus.ensureTopics([
    { topic: SAMPLES, partitions },
    { topic: EVENTS, partitions },
  ]);
  return { kafka, dir, ch, bus };
}

async function stopPeers(p: Awaited<ReturnType<typeof peers>>): Promise<void> {
  await p.bus.close();
  await p.ch.close();
  p.dir.remove();
  await p.kafka.stop();
}

// Smoke test of the sink on a real broker (the integrator's suite adds SIGKILLed sink processes):
// a sink dies between insert and commit, a second one in the same group takes over, exactly once.
test('Kafka: a sink killed between insert and commit is replaced without loss or duplicates', { timeout: 240_000 }, async () => {
  const { kafka, dir, ch, bus } = await peers('sink-kafka', 3);
  try {
    const expected: Expected = new Map();
    const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3_600_000;
    await produce(bus, SAMPLES, sampleMessages({ devices: 30, seriesPerDevice: 100, polls: 20, t0, metricsPerSet: 20 }, expected), 200);
    let flushes = 0;
    let killed: FlushRange | null = null;
    const cfg = { groupId: 'kafka-sink', maxRows: 5_000, maxDelayMs: 300, retryMinMs: 100, retryMaxMs: 1_000 };
    const a: Sink = new Sink({
      bus,
      ch,
      cfg,
      beforeCommit: (r) => {
        if (++flushes === 4) {
          killed = r;
          void a.kill();
        }
      },
    });
    await a.start();
    await waitFor('the first sink to die mid-flush', () => killed !== null, 90_000);
    await produce(bus, SAMPLES, sampleMessages({ devices: 30, seriesPerDevice: 100, polls: 5, t0: t0 + 20_000, metricsPerSet: 20 }, expected), 200);
    const b = new Sink({ bus, ch, cfg: { ...cfg, maxRows: 3_000 } });
    await b.start();
    await waitCommitted(bus, 'kafka-sink', SAMPLES, 120_000);
    await b.stop();
    assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  } finally {
    await stopPeers({ kafka, dir, ch, bus });
  }
});

test('Kafka: a second sink joining and the first leaving move partitions mid-stream without loss or duplicates', { timeout: 240_000 }, async () => {
  const { kafka, dir, ch, bus } = await peers('sink-kafka2', 4);
  try {
    const expected: Expected = new Map();
    const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 7_200_000;
    let poll = 0;
    const feed = async (polls: number) => {
      for (let i = 0; i < polls; i++, poll++) {
        await produce(bus, SAMPLES, sampleMessages({ devices: 20, seriesPerDevice: 40, polls: 1, t0: t0 + poll * 1000, metricsPerSet: 20 }, expected), 200);
      }
    };
    const cfg = { groupId: 'kafka-pair', maxRows: 2_000, maxDelayMs: 200, retryMinMs: 100, retryMaxMs: 1_000 };
    const a = new Sink({ bus, ch, cfg });
    await a.start();
    await feed(10);
    const b = new Sink({ bus, ch, cfg });
    await b.start();
    await feed(10);
    await waitFor('both sinks to own partitions', () => a['consumer']!.assignment().length > 0 && b['consumer']!.assignment().length > 0, 60_000);
    await feed(10);
    await a.stop();
    await feed(10);
    await waitCommitted(bus, 'kafka-pair', SAMPLES, 120_000);
    await b.stop();
    assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  } finally {
    await stopPeers({ kafka, dir, ch, bus });
  }
});
