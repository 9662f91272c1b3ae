import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { MemoryBus } from '../../core/bus-memory.js';
import { partitionFor, type InMessage, type OutMessage } from '../../core/bus.js';
import { encodeBatch } from '../../core/codec.js';
import { registry } from '../../core/metrics.js';
import { TOPICS } from '../../core/types.js';
import { AlertManager, type AlertChange } from '../../processors/alerts.js';
import { commandMessages, decodeCommand, encodeCommand, isCommandMessage, CommandError, COMMAND_HEADER, type CommandBody } from '../../processors/commands.js';
import { compileRules } from '../../processors/rules.js';
import { processorConfig, startProcessor, type Processor } from '../../processors/runner.js';
import { canonical, readTopic, waitCaughtUp } from './harness.js';
import { decodeRollups } from '../../processors/rollup-codec.js';

/**
 * Operator commands on the processor's input topic (in-process bus): routing to the partition
 * holding the alert, silences on every partition, restart from the checkpoint, exact replay, and
 * malformed commands counted and skipped.
 */

const PARTS = 3;
const T0 = Date.UTC(2026, 10, 27, 9, 0, 0);
const MIN = 60_000;
const cfg = processorConfig({ delay: { default: '5s' }, restoreTimeout: '20s', anomaly: { enabled: false } });
const RULES = compileRules(
  parse(`
groups:
  - name: cpu
    rules:
      - { alert: CpuHigh, expr: 'hrProcessorLoad > 80', severity: major }
route: { receiver: noc, group_by: [alertname, device], group_wait: 10s, group_interval: 30s, repeat_interval: 2m }
`),
);

/** Four devices: three on distinct partitions (A, B, C) and a control D that nobody acks or silences. */
function pickDevices(): { A: string; B: string; C: string; D: string } {
  const byPart = new Map<number, string>();
  for (let i = 0; byPart.size < PARTS; i++) if (!byPart.has(partitionFor(`dev-${i}`, PARTS))) byPart.set(partitionFor(`dev-${i}`, PARTS), `dev-${i}`);
  const [A, B, C] = [0, 1, 2].map((p) => byPart.get(p)!) as [string, string, string];
  let j = 100;
  while ([A, B, C].includes(`dev-${j}`)) j++;
  return { A, B, C, D: `dev-${j}` };
}
const DEV = pickDevices();
const ALL = [DEV.A, DEV.B, DEV.C, DEV.D];

/** CPU at 95% every 10 s from `fromMs` to `toMs` (event time), one batch per device and poll. */
function cpu(devices: string[], fromMs: number, toMs: number): OutMessage[] {
  const out: OutMessage[] = [];
  for (let t = fromMs; t < toMs; t += 10_000) {
    for (const device of devices) {
      out.push({ key: device, value: encodeBatch({ device, source: 'test', ts: t, samples: [{ metric: 'hrProcessorLoad', labels: { device }, ts: t, value: 95 }] }), timestamp: t });
    }
  }
  return out;
}

async function produce(bus: MemoryBus, msgs: OutMessage[]): Promise<void> {
  const p = await bus.producer();
  await p.send(TOPICS.samples, msgs);
  await p.close();
}

interface Notified {
  ts: number;
  status: string;
  alerts: { status: string; labels: Record<string, string>; fingerprint: string }[];
}
const notifications = async (bus: MemoryBus, topic = cfg.notificationsTopic): Promise<(Notified & { ts: number })[]> =>
  (await readTopic(bus, topic)).map((m: InMessage) => ({ ...(JSON.parse(m.value!.toString()) as Notified), ts: m.timestamp }));
/** Event times at which `device` was notified as firing. */
const firingAt = (ns: Notified[], device: string) => ns.filter((n) => n.alerts.some((a) => a.status === 'firing' && a.labels.device === device)).map((n) => n.ts);
const changes = async (bus: MemoryBus, topic = cfg.alertsTopic) => (await readTopic(bus, topic)).map((m) => JSON.parse(m.value!.toString()) as AlertChange);

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
  return Number(v?.value ?? 0);
}

function fpOf(p: Processor, device: string): string {
  const a = p.activeAlerts().find((x) => x.labels.device === device && x.state === 'firing');
  assert.ok(a, `an alert is firing for ${device}`);
  return a.fingerprint;
}

/** Three minutes of CPU alerts, then an ack of A (by its device key) and a silence of B and C (every partition). */
async function alertAndCommand(bus: MemoryBus, p: Processor): Promise<{ fpA: string }> {
  await produce(bus, cpu(ALL, T0, T0 + 3 * MIN));
  await waitCaughtUp(bus, cfg.groupId);
  const fpA = fpOf(p, DEV.A);
  const ack = await p.send({ type: 'ack', fingerprint: fpA, device: DEV.A, by: 'alice', comment: 'on it', at: T0 + 3 * MIN });
  assert.deepEqual(ack.partitions, [-1], 'an ack with a device goes by its key');
  const sil = await p.send({
    type: 'silence', id: 'sil-bc', matchers: [{ name: 'device', op: '=~', value: `${DEV.B}|${DEV.C}` }],
    startsAt: T0 + 3 * MIN, endsAt: T0 + 60 * MIN, createdBy: 'bob', createdAt: T0 + 3 * MIN, comment: 'maintenance of B and C',
  });
  assert.deepEqual(sil.partitions, [0, 1, 2], 'a silence goes to every partition');
  return { fpA };
}

/** After the commands: A (acked), B and C (silenced) are never notified again; D keeps repeating. */
function assertQuietAfterCommands(ns: Notified[]): void {
  const after = T0 + 3 * MIN + 10_000;
  for (const d of ALL) assert.ok(firingAt(ns, d).some((t) => t < after), `${d} was notified before the commands`);
  assert.deepEqual(firingAt(ns, DEV.A).filter((t) => t >= after), [], 'no repeat of the acknowledged alert');
  assert.deepEqual(firingAt(ns, DEV.B).filter((t) => t >= after), [], 'B silenced');
  assert.deepEqual(firingAt(ns, DEV.C).filter((t) => t >= after), [], 'C silenced (another partition)');
  assert.ok(firingAt(ns, DEV.D).filter((t) => t >= after).length >= 3, 'the control device keeps repeating every 2 min');
}

test('command codec: round trip, routing, and clear errors for bad commands', () => {
  const ack = { type: 'ack', fingerprint: '0123456789abcdef', device: 'rtr-1', by: 'alice', comment: '', at: T0 } as const;
  assert.deepEqual(decodeCommand(encodeCommand(ack)), { noctua: 'command', v: 1, ...ack });
  const [m] = commandMessages(ack, 6);
  assert.equal(m!.key, 'rtr-1');
  assert.equal(m!.partition, undefined);
  assert.equal(m!.headers![COMMAND_HEADER], '1');
  assert.ok(isCommandMessage({ headers: m!.headers!, value: m!.value }));
  assert.ok(isCommandMessage({ headers: {}, value: m!.value }), 'a JSON value is a command even without the header');
  const batch = encodeBatch({ device: 'x', source: 't', ts: T0, samples: [] });
  assert.equal(isCommandMessage({ headers: {}, value: batch }), false, 'a sample batch is not a command');
  const { device: _d, ...noDevice } = ack;
  assert.deepEqual(commandMessages(noDevice, 4).map((x) => x.partition), [0, 1, 2, 3], 'an ack without a device goes everywhere');
  const sil: Extract<CommandBody, { type: 'silence' }> = { type: 'silence', id: 's1', matchers: [{ name: 'device', op: '=', value: 'a' }], startsAt: T0, endsAt: T0 + 1, createdBy: 'x', createdAt: T0, comment: '' };
  assert.deepEqual(commandMessages(sil, 3).map((x) => x.partition), [0, 1, 2]);
  assert.throws(() => encodeCommand({ ...sil, endsAt: T0 }), (e: Error) => e instanceof CommandError && /endsAt/.test(e.message));
  assert.throws(() => encodeCommand({ ...sil, matchers: [{ name: 'device', op: '=~', value: '(' }] }), /not a valid regular expression/);
  assert.throws(() => encodeCommand({ ...sil, matchers: [] }), /matchers/);
  assert.throws(() => encodeCommand({ ...ack, fingerprint: 'zz' }), /fingerprint/);
  assert.throws(() => decodeCommand(Buffer.from('{"noctua":"command","v":1,"type":"reboot"}')), /type must be ack, unack, silence or expire-silence/);
  assert.throws(() => decodeCommand(Buffer.from('{"hello":1}')), /marker/);
  assert.throws(() => decodeCommand(Buffer.from('{not json')), /not JSON/);
});

test('run-time silences are checkpointed with the alert state and pruned a flap window after they end', () => {
  const am = new AlertManager();
  am.addSilence({ id: 's', matchers: [{ name: 'device', op: '=', value: 'a' }], startsAt: T0, endsAt: T0 + MIN, createdBy: 'x', createdAt: T0, comment: '' });
  am.tick(T0 + 2 * MIN);
  assert.equal(AlertManager.fromJSON(am['cfg'], am.toJSON()).silences().length, 1, 'kept in the checkpoint while recent');
  am.tick(T0 + MIN + 3_600_000 + 1);
  assert.deepEqual(am.silences(), [], 'pruned after the flap window (1 h by default)');
  assert.deepEqual(am.toJSON().silences, []);
});

test('an ack reaches the partition holding the alert and stops its repeats; a silence suppresses on every partition', async () => {
  const bus = new MemoryBus();
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
    const applied = await metric('noctua_processor_commands_total', { type: 'silence', outcome: 'applied' });
    const p = await startProcessor({ bus, config: cfg, rules: RULES, partitions: PARTS });
    try {
      const { fpA } = await alertAndCommand(bus, p);
      await produce(bus, cpu(ALL, T0 + 3 * MIN, T0 + 12 * MIN));
      await waitCaughtUp(bus, cfg.groupId);
      assertQuietAfterCommands(await notifications(bus));
      const acks = (await changes(bus)).filter((c) => c.event === 'ack');
      assert.deepEqual(acks.map((c) => [c.fingerprint, c.ack?.by, c.ack?.comment, c.ack?.at]), [[fpA, 'alice', 'on it', T0 + 3 * MIN]], 'one ack record, from the partition that holds the alert');
      assert.ok(acks[0]!.ts < T0 + 3 * MIN && acks[0]!.ts > T0 + 2 * MIN, 'the record sits at the event time it was applied (the watermark), not the wall clock');
      assert.equal(await metric('noctua_processor_commands_total', { type: 'silence', outcome: 'applied' }), applied + PARTS, 'the silence applied once per partition');
      assert.deepEqual(p.silences().map((s) => [s.id, s.createdBy]), [['sil-bc', 'bob']]);
      const a = p.activeAlerts().find((x) => x.fingerprint === fpA)!;
      assert.equal(a.ack?.by, 'alice');
      assert.equal(p.activeAlerts().find((x) => x.labels.device === DEV.B)!.suppressedBy, 'silence:sil-bc');
      // Expiring the silence lets B and C notify again at their next group flush.
      await p.send({ type: 'expire-silence', id: 'sil-bc', by: 'bob', at: T0 + 12 * MIN });
      await produce(bus, cpu(ALL, T0 + 12 * MIN, T0 + 16 * MIN));
      await waitCaughtUp(bus, cfg.groupId);
      const ns = await notifications(bus);
      assert.ok(firingAt(ns, DEV.B).some((t) => t >= T0 + 12 * MIN), 'B notified again once the silence expired');
      assert.deepEqual(firingAt(ns, DEV.A).filter((t) => t >= T0 + 3 * MIN + 10_000), [], 'A still acknowledged');
    } finally {
      await p.stop();
    }
  } finally {
    await bus.close();
  }
});

test('commands survive a restart from the checkpoint, and a replay of the input reproduces them exactly', async () => {
  const bus = new MemoryBus({ maxBatchMessages: 5 });
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
    const p1 = await startProcessor({ bus, config: cfg, rules: RULES, partitions: PARTS });
    let fpA: string;
    try {
      ({ fpA } = await alertAndCommand(bus, p1));
      // In-process API too: acknowledge() sends a command like the others.
      const fpD = fpOf(p1, DEV.D);
      assert.equal(p1.acknowledge(fpD, 'carol', 'preview', T0 + 3 * MIN)?.ack?.by, 'carol', 'acknowledge() returns what the record will say');
      await p1.send({ type: 'unack', fingerprint: fpD, device: DEV.D, by: 'carol', at: T0 + 3 * MIN + 1 });
      await waitCaughtUp(bus, cfg.groupId);
    } finally {
      await p1.stop();
    }
    // A new instance restores every partition from the changelog: the ack and the silence come back.
    const p2 = await startProcessor({ bus, config: cfg, rules: RULES, partitions: PARTS });
    try {
      await produce(bus, cpu(ALL, T0 + 3 * MIN, T0 + 12 * MIN));
      await waitCaughtUp(bus, cfg.groupId);
      assert.equal(p2.activeAlerts().find((x) => x.fingerprint === fpA)?.ack?.by, 'alice', 'ack restored');
      assert.equal(p2.activeAlerts().find((x) => x.labels.device === DEV.D)?.ack, null, 'the withdrawn ack stays withdrawn');
      assert.deepEqual(p2.silences().map((s) => s.id), ['sil-bc'], 'silence restored');
      assertQuietAfterCommands(await notifications(bus));
    } finally {
      await p2.stop();
    }
    const events = (await changes(bus)).filter((c) => c.event !== 'state').map((c) => `${c.event}:${c.labels.device}`).sort();
    assert.deepEqual(events, [`ack:${DEV.A}`, `ack:${DEV.D}`, `unack:${DEV.D}`]);

    // A replay of the same input (commands included) by a fresh group gives identical records.
    const rcfg = processorConfig({ ...cfg, groupId: 'replay', changelog: 'replay.state', alertsTopic: 'replay.alerts', notificationsTopic: 'replay.notifications', rollupsTopic: 'replay.rollups', eventsTopic: 'replay.events', lateTopic: 'replay.late' });
    const r = await startProcessor({ bus, config: rcfg, rules: RULES, partitions: PARTS });
    await waitCaughtUp(bus, 'replay');
    await r.stop();
    assert.deepEqual(canonical(await readTopic(bus, 'replay.alerts')), canonical(await readTopic(bus, cfg.alertsTopic)));
    assert.deepEqual(canonical(await readTopic(bus, 'replay.notifications')), canonical(await readTopic(bus, cfg.notificationsTopic)));
  } finally {
    await bus.close();
  }
});

test('a malformed command is counted and skipped; the samples and commands around it are processed', async () => {
  const bus = new MemoryBus();
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 1 }]);
    const before = { command: await metric('noctua_rejected_messages_total', { topic: TOPICS.samples, reason: 'command' }), codec: await metric('noctua_rejected_messages_total', { topic: TOPICS.samples, reason: 'codec' }) };
    const p = await startProcessor({ bus, config: cfg, rules: RULES, partitions: 1 });
    try {
      await produce(bus, cpu([DEV.A], T0, T0 + MIN));
      await waitCaughtUp(bus, cfg.groupId);
      const fp = fpOf(p, DEV.A);
      const good = commandMessages({ type: 'ack', fingerprint: fp, device: DEV.A, by: 'alice', comment: 'after the bad ones', at: T0 + MIN }, 1)[0]!;
      await produce(bus, [
        { key: DEV.A, value: Buffer.from('not json at all'), headers: { [COMMAND_HEADER]: '1' } },
        { key: DEV.A, value: Buffer.from('{"noctua":"command","v":1,"type":"ack","fingerprint":"xyz","by":"","comment":"","at":1}') },
        { key: DEV.A, value: null, headers: { [COMMAND_HEADER]: '1' } },
        ...cpu([DEV.A], T0 + MIN, T0 + MIN + 30_000),
        good,
        ...cpu([DEV.A], T0 + MIN + 30_000, T0 + 2 * MIN),
      ]);
      await waitCaughtUp(bus, cfg.groupId);
      assert.equal(await metric('noctua_rejected_messages_total', { topic: TOPICS.samples, reason: 'command' }), before.command + 3);
      assert.equal(await metric('noctua_rejected_messages_total', { topic: TOPICS.samples, reason: 'codec' }), before.codec, 'not counted as undecodable sample batches');
      assert.equal(p.activeAlerts().find((x) => x.fingerprint === fp)?.ack?.comment, 'after the bad ones', 'the good command after them applied');
      const tenSec = (await readTopic(bus, TOPICS.rollups)).flatMap((m) => decodeRollups(m.value!)).filter((r) => r.window === '10s');
      assert.ok(tenSec.some((r) => r.start >= T0 + MIN + 30_000), 'samples after the bad commands were processed');
    } finally {
      await p.stop();
    }
  } finally {
    await bus.close();
  }
});
