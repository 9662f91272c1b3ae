import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startKafka, type KafkaPeer } from '../peers/kafka.js';
import { startSnmpd, type Snmpd } from '../peers/snmpd.js';
import { waitFor } from '../peers/util.js';
import { KafkaBus } from '../../core/bus-kafka.js';
import { decodeBatch } from '../../core/codec.js';
import { createLogger } from '../../core/log.js';
import { registry } from '../../core/metrics.js';
import { TOPICS, type SampleBatch } from '../../core/types.js';
import { DEMO_STATE_TOPIC, DemoSource } from '../../ingest/demo/source.js';
import { startSnmpSource } from '../../ingest/snmp/source.js';

/**
 * A broker down for longer than the Kafka client's own retries: the pollers hold their polls and send
 * them when it is back. The client here gives up after about half a second (by default it rides out
 * about a minute, which a broker restart fits in but a longer outage does not), so an outage of a few
 * seconds is one the client alone would have lost polls to: before the outbox, the demo dropped the
 * poll whose transaction failed and the SNMP source every poll of the outage.
 */
const SHORT_RETRY = { retries: 1, initialRetryTime: 100, maxRetryTime: 300 };
const OUTAGE_MS = 6_000;

let kafka: KafkaPeer;
let agent: Snmpd;
before(async () => {
  [kafka, agent] = await Promise.all([startKafka(), startSnmpd()]);
});
after(async () => {
  await agent?.stop();
  await kafka?.stop();
});

async function metric(name: string, source: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels.source === source)?.value ?? 0;
}
const retries = (source: string) => metric('noctua_outbox_retries_total', source);

/** Kills the broker for OUTAGE_MS, brings it back and waits until the source sent what it held. */
async function brokerOutage(source: string): Promise<{ before: number; down: number; up: number }> {
  const before = await retries(source);
  const down = Date.now();
  await kafka.kill();
  await sleep(OUTAGE_MS);
  await kafka.restart();
  const up = Date.now();
  await waitFor(`${source} to send what it held`, async () => (await metric('noctua_outbox_held_items', source)) === 0, 120_000, 200);
  return { before, down, up };
}

/** Every committed sample batch on the samples topic, per device, in offset order. */
async function published(bus: KafkaBus): Promise<Map<string, SampleBatch[]>> {
  const ends = await bus.endOffsets(TOPICS.samples);
  const byDevice = new Map<string, SampleBatch[]>();
  const next = new Map<number, number>();
  const c = bus.consumer({ groupId: `read-${Date.now()}`, fromBeginning: true, readCommitted: true, ephemeral: true });
  await c.subscribe([TOPICS.samples]);
  await c.run({
    eachBatch: async (b) => {
      for (const m of b.messages) {
        const batch = decodeBatch(m.value!);
        byDevice.set(batch.device, [...(byDevice.get(batch.device) ?? []), batch]);
      }
      next.set(b.partition, Number(b.messages.at(-1)?.offset ?? -1) + 1);
    },
  });
  // read-committed: transaction markers take offsets too, so "read up to the end" is "past the last record below the end"
  await waitFor('the samples topic read to its end', () => ends.every((e) => e.offset === '0' || (next.get(e.partition) ?? 0) >= Number(e.offset) - 1), 60_000, 100);
  await c.stop();
  return byDevice;
}

test('demo on Kafka: a broker down longer than the client retries delays polls; every poll arrives once, on its grid, after the broker is back', { timeout: 240_000 }, async () => {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'outage-demo', retry: SHORT_RETRY, logger: createLogger('silent') });
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 3 }, { topic: TOPICS.events, partitions: 3 }]);
    const every = 250;
    const demo = new DemoSource(bus, { devices: 4, interfaces: 1, seed: 7, incidentEveryMs: 0, intervalMs: every, backfillMs: 2_000, stateTopic: DEMO_STATE_TOPIC, retryMaxMs: 500 }, createLogger('silent'));
    await demo.start();
    await sleep(1_000);
    const { before, down, up } = await brokerOutage('demo');
    await sleep(4 * every);
    await demo.stop();
    const byDevice = await published(bus);
    assert.equal(byDevice.size, 4);
    for (const [device, batches] of byDevice) {
      const ts = batches.map((b) => b.ts);
      for (let i = 1; i < ts.length; i++) assert.equal(ts[i]! - ts[i - 1]!, every, `${device}: poll ${i} of ${ts.length} at ${ts[i]} after ${ts[i - 1]} (outage ${down}..${up})`);
      const during = ts.filter((t) => t > down && t < up).length;
      assert.ok(during >= OUTAGE_MS / every - 2, `${device}: ${during} polls from the outage arrived`);
    }
    assert.ok((await retries('demo')) > before, 'the polls of the outage waited and were retried');
  } finally {
    await bus.close();
  }
});

test('SNMP on Kafka: polls of a live agent made while the broker is down arrive after it is back, none twice', { timeout: 240_000 }, async () => {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'outage-snmp', retry: SHORT_RETRY, logger: createLogger('silent') });
  const device = 'outage-agent';
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 3 }, { topic: TOPICS.events, partitions: 3 }]);
    const source = await startSnmpSource({
      bus,
      snmp: { targets: [{ name: device, address: '127.0.0.1', port: agent.port, community: agent.community, intervalMs: 1000, timeoutMs: 500 }] },
      mode: 'local',
      log: createLogger('silent'),
    });
    await sleep(2_500);
    const { before, down, up } = await brokerOutage('snmp');
    await sleep(2_000);
    await source.stop();
    const ts = ((await published(bus)).get(device) ?? []).map((b) => b.ts);
    assert.equal(new Set(ts).size, ts.length, `no poll twice: ${ts.join(',')}`);
    const during = ts.filter((t) => t > down && t < up).length;
    assert.ok(during >= OUTAGE_MS / 1000 - 1, `${during} polls made during the outage arrived (${ts.length} in all)`);
    for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! - ts[i - 1]! < 1_600, `a gap of ${ts[i]! - ts[i - 1]!} ms before the poll at ${ts[i]} (outage ${down}..${up})`);
    assert.ok((await retries('snmp')) > before, 'the polls of the outage waited and were retried');
  } finally {
    await bus.close();
  }
});
