import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKafka } from '../peers/kafka.js';
import { startProcess, tempDir, waitFor, sleep, type Proc } from '../peers/util.js';
import { createBus } from '../../core/bus-factory.js';
import { loadConfig } from '../../core/config.js';
import { encodeBatch } from '../../core/codec.js';
import { TOPICS, type Sample } from '../../core/types.js';
import { topicSpecs } from '../../cli/runtime.js';
import { openClickHouse } from '../../storage/clickhouse.js';

const root = join(import.meta.dirname, '../../..');
const cli = join(root, 'dist/cli/noctua.js');

const BATCHES = 1000;
const PER_BATCH = 1000;
const DEVICES = 50;
const METRICS = 10;

/**
 * 1,000,000 samples through a real broker into ClickHouse by `noctua sink` processes: the sink is
 * SIGKILLed twice mid-stream and restarted, and the broker restarted once. Counts and sums per
 * series must match what was produced: nothing lost, nothing twice.
 */
test('1M samples through Kafka land exactly once while the sink is SIGKILLed twice and the broker restarts', { timeout: 600_000 }, async () => {
  const kafka = await startKafka();
  const data = tempDir('sink-kafka');
  const env = { ...process.env, KAFKA_BROKERS: kafka.brokers.join(','), NOCTUA_DATA_DIR: data.path, NOCTUA_LOG_LEVEL: 'warn', NOCTUA_SINK__MAX_ROWS: '50000', NOCTUA_SINK__MAX_DELAY_MS: '500' };
  const cfg = loadConfig({ env });
  const bus = createBus(cfg.bus);
  let sink: Proc | null = null;
  const startSink = async () => {
    sink = startProcess(process.execPath, [cli, 'sink'], { env, cwd: root });
    await waitFor('the sink to start', () => /Noctua is running/.test(sink!.output()) || sink!.child.exitCode !== null, 60_000, 100);
    assert.equal(sink.child.exitCode, null, sink.output());
  };
  try {
    await bus.ensureTopics(topicSpecs(cfg));
    await startSink();
    const producer = await bus.producer({ idempotent: true });
    const expected = new Map<string, { n: number; sum: number }>();
    // Recent event times: the raw table's TTL would drop samples older than clickhouse.rawTtlDays.
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
    for (let b = 0; b < BATCHES; b++) {
      const device = `dev-${b % DEVICES}`;
      const samples: Sample[] = [];
      const round = Math.floor(b / DEVICES);
      for (let j = 0; j < PER_BATCH; j++) {
        const metric = `m${j % METRICS}`;
        const labels = { device, ifIndex: String(Math.floor(j / METRICS)) };
        const value = (b * 7 + j * 13) % 1009;
        samples.push({ metric, labels, ts: t0 + round * 10_000, value });
        const k = `${metric}|${device}`;
        const e = expected.get(k) ?? { n: 0, sum: 0 };
        e.n++;
        e.sum += value;
        expected.set(k, e);
      }
      await producer.send(TOPICS.samples, [{ key: device, value: encodeBatch({ device, source: 'test', ts: t0 + round * 10_000, samples }) }]);
      if (b % 20 === 0) await sleep(15);
      if (b === 300 || b === 700) {
        await sink!.kill('SIGKILL');
        await startSink();
      }
      if (b === 500) await kafka.restart();
    }
    await producer.close();

    // Caught up: the sink group's committed offsets reach the end of every partition.
    const ends = await bus.endOffsets(TOPICS.samples);
    await waitFor('the sink to commit every offset', async () => {
      const done = await bus.committed(cfg.sink.groupId, TOPICS.samples);
      return ends.every((e) => done.find((c) => c.partition === e.partition)?.offset === e.offset);
    }, 180_000, 500);
    await sink!.stop();
    assert.equal(await sink!.exited, 0, sink!.output().slice(-3000));

    const ch = await openClickHouse(cfg.clickhouse, data.path);
    const rows = (await (await ch.client.query({ query: 'SELECT metric, device, count() AS n, sum(value) AS s FROM noctua.samples GROUP BY metric, device', format: 'JSONEachRow' })).json()) as { metric: string; device: string; n: string; s: number }[];
    await ch.close();
    let total = 0;
    for (const r of rows) {
      const e = expected.get(`${r.metric}|${r.device}`);
      assert.ok(e, `unexpected series ${r.metric} ${r.device}`);
      assert.equal(Number(r.n), e.n, `count of ${r.metric} ${r.device}`);
      assert.equal(Number(r.s), e.sum, `sum of ${r.metric} ${r.device}`);
      total += Number(r.n);
    }
    assert.equal(rows.length, expected.size);
    assert.equal(total, BATCHES * PER_BATCH);
  } finally {
    await (sink as Proc | null)?.kill();
    await bus.close().catch(() => {});
    await kafka.stop();
    data.remove();
  }
});
