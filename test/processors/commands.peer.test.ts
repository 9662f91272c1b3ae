import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus } from '../../core/bus-kafka.js';
import { partitionFor, type OutMessage } from '../../core/bus.js';
import { encodeBatch } from '../../core/codec.js';
import { TOPICS } from '../../core/types.js';
import type { AlertChange } from '../../processors/alerts.js';
import { restoreSnapshots, snapshotKey } from '../../processors/checkpoint.js';
import { CommandSender } from '../../processors/commands.js';
import type { PipelineState } from '../../processors/runner.js';
import { startKafka, type KafkaPeer } from '../peers/kafka.js';
import type { Proc } from '../peers/util.js';
import { readTopic, waitCaughtUp, processorChild, processorReady } from './harness.js';

/**
 * Operator commands on the real broker: two processor processes in one group over two partitions,
 * a CPU alert on each partition, both acknowledged through commands on the input topic (whichever
 * instance holds them); one instance SIGKILLed and restarted; the acks remain (restored from the
 * changelog) and keep the acknowledged alerts from repeating, while an unacknowledged one repeats.
 */

const PARTS = 2;
const GROUP = 'cmd';
const PREFIX = 'cmd.';
// Recent (an hour boundary 2-3 h ago): the notifications' record timestamps are their event times,
// which Kafka keeps only within the bus's record-age window (bus-kafka.ts: recordTimestamp).
const T0 = Math.floor((Date.now() - 2 * 3_600_000) / 3_600_000) * 3_600_000;
const MIN = 60_000;
let kafka: KafkaPeer;
let bus: KafkaBus;

before(async () => {
  kafka = await startKafka();
  bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'cmd-test', sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 200 });
});
after(async () => {
  await bus?.close();
  await kafka?.stop();
});

function child(): Proc {
  return processorChild(kafka.brokers, PREFIX, GROUP, PARTS);
}

const ready = processorReady;

/** X and Y on different partitions (one alert each), Z the unacknowledged control. */
function devices(): [string, string, string] {
  const on = (part: number, skip: string[] = []) => {
    for (let i = 0; ; i++) if (partitionFor(`rtr-${i}`, PARTS) === part && !skip.includes(`rtr-${i}`)) return `rtr-${i}`;
  };
  const x = on(0);
  const y = on(1);
  return [x, y, on(0, [x])];
}
const [X, Y, Z] = devices();

/** CPU at 90% every 10 s (DEMO_RULES' CpuHigh: > 40 for 20 s; repeat_interval 5 min). */
function cpu(fromMs: number, toMs: number): OutMessage[] {
  const out: OutMessage[] = [];
  for (let t = fromMs; t < toMs; t += 10_000) {
    for (const device of [X, Y, Z]) out.push({ key: device, value: encodeBatch({ device, source: 'test', ts: t, samples: [{ metric: 'hrProcessorLoad', labels: { device }, ts: t, value: 90 }] }), timestamp: t });
  }
  return out;
}

test('acks as commands on the broker: applied by whichever instance holds the alert, kept across a SIGKILL and restart', { timeout: 120_000 }, async () => {
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
  const producer = await bus.producer();
  const commands = new CommandSender(bus, TOPICS.samples);
  let a = await ready(child());
  const b = await ready(child());
  const dump = () => `\n--- a ---\n${a.output().slice(-2000)}\n--- b ---\n${b.output().slice(-2000)}`;
  try {
    await producer.send(TOPICS.samples, cpu(T0, T0 + 2 * MIN));
    await waitCaughtUp(bus, GROUP, 60_000).catch((err: Error) => assert.fail(err.message + dump()));
    const firing = (await readTopic(bus, `${PREFIX}alerts`)).map((m) => JSON.parse(m.value!.toString()) as AlertChange).filter((c) => c.state === 'firing' && c.event === 'state');
    const fp = (d: string) => firing.find((c) => c.labels.device === d)?.fingerprint;
    assert.ok(fp(X) && fp(Y) && fp(Z), `CPU alerts fire on both partitions (${firing.map((c) => c.labels.device).join(',')})`);

    for (const d of [X, Y]) await commands.send({ type: 'ack', fingerprint: fp(d)!, device: d, by: 'noc', comment: `ack ${d}`, at: Date.now() });
    await waitCaughtUp(bus, GROUP, 60_000);
    const acks = (await readTopic(bus, `${PREFIX}alerts`)).map((m) => JSON.parse(m.value!.toString()) as AlertChange).filter((c) => c.event === 'ack');
    assert.deepEqual(acks.map((c) => [c.labels.device, c.ack?.by, c.ack?.comment]).sort(), [[X, 'noc', `ack ${X}`], [Y, 'noc', `ack ${Y}`]].sort(), 'each ack applied once, by the partition holding the alert');

    // Crash one instance; its partition (and later part of the load again) moves through the changelog.
    await a.kill('SIGKILL');
    a = await ready(child());
    await producer.send(TOPICS.samples, cpu(T0 + 2 * MIN, T0 + 9 * MIN));
    await waitCaughtUp(bus, GROUP, 60_000).catch((err: Error) => assert.fail(err.message + dump()));

    // The checkpointed state of both partitions still carries the acks.
    const committed = await bus.committed(GROUP, TOPICS.samples);
    const wanted = new Map(committed.map((c) => [snapshotKey(GROUP, TOPICS.samples, c.partition), c.offset]));
    const snaps = await restoreSnapshots(bus, `${PREFIX}state`, wanted, 30_000);
    const acked = [...snaps.values()].flatMap((s) => (s.state as PipelineState).alerts.alerts).filter((x) => x.ack !== null).map((x) => [x.labels.device, x.ack!.by]);
    assert.deepEqual(acked.sort(), [[X, 'noc'], [Y, 'noc']].sort());

    // And they still act: after the ack, X and Y never repeat, while Z repeats after repeat_interval (5 min).
    const ns = (await readTopic(bus, `${PREFIX}notifications`)).map((m) => ({ ts: m.timestamp, ...(JSON.parse(m.value!.toString()) as { alerts: { status: string; labels: Record<string, string> }[] }) }));
    const firingAt = (d: string) => ns.filter((n) => n.alerts.some((x) => x.status === 'firing' && x.labels.device === d)).map((n) => n.ts);
    const afterAck = T0 + 2 * MIN;
    assert.ok(firingAt(Z).some((t) => t > afterAck), 'the control alert repeated after 5 min');
    assert.deepEqual(firingAt(X).filter((t) => t > afterAck), [], `no repeat for ${X}`);
    assert.deepEqual(firingAt(Y).filter((t) => t > afterAck), [], `no repeat for ${Y}`);
  } finally {
    await commands.close();
    await producer.close();
    await a.stop();
    await b.stop();
  }
});
