import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../../core/bus-memory.js';
import { TOPICS } from '../../core/types.js';
import { decodeBatch, encodeBatch } from '../../core/codec.js';
import { partitionFor } from '../../core/bus.js';
import { startProcessor, processorConfig, windowOptions, Pipeline, emptyOutput, anomalyStage, type RollupRecord } from '../../processors/runner.js';
import { demoMessages, DEMO_START, DEMO_RULES, readTopic, produceAll, waitCaughtUp, canonical, rollupRows } from './harness.js';
import { decodeRollups } from '../../processors/rollup-codec.js';
import { registry } from '../../core/metrics.js';

const PARTS = 3;
const cfg = processorConfig({ delay: { default: '10s' }, restoreTimeout: '20s' });

async function runOnce(bus: MemoryBus, msgs: ReturnType<typeof demoMessages>) {
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
  await produceAll(bus, msgs);
  const p = await startProcessor({ bus, config: cfg, rules: DEMO_RULES, partitions: PARTS });
  await waitCaughtUp(bus, cfg.groupId);
  await p.stop();
}

test('runner on the in-process bus: rollups and alert transitions equal a direct run of the operators per partition', async () => {
  const msgs = demoMessages(10);
  const bus = new MemoryBus();
  try {
    await runOnce(bus, msgs);
    const rollups = (await readTopic(bus, TOPICS.rollups)).flatMap((m) => decodeRollups(m.value!));
    const alerts = await readTopic(bus, TOPICS.alerts);

    // Expected: the same operators fed directly, partition by partition in offset order.
    const pipes = new Map<number, Pipeline>();
    const out = emptyOutput();
    for (const m of msgs) {
      const part = partitionFor(m.key, PARTS);
      let pl = pipes.get(part);
      if (!pl) pipes.set(part, (pl = Pipeline.create(windowOptions(cfg), DEMO_RULES, anomalyStage(cfg))));
      pl.step(decodeBatch(m.value), out);
    }
    assert.ok(out.results.length > 1000, `demo produces rollups (${out.results.length})`);
    assert.ok(out.changes.some((c) => c.state === 'firing'), 'demo rules fire');
    assert.equal(rollups.length, out.results.length);
    assert.equal(alerts.length, out.changes.length);
    const byKey = (r: RollupRecord) => `${r.window}|${r.key}|${r.start}|${r.revision}`;
    const got = new Map(rollups.map((r) => [byKey(r), r]));
    for (const r of out.results) {
      const g = got.get(`${r.window}|${r.key}|${r.start}|${r.revision}`);
      assert.ok(g, `rollup ${r.window} ${r.key} ${r.start} produced`);
      assert.equal(g.count, r.agg.count);
      assert.equal(g.sum, r.agg.sum);
      assert.equal(g.p95, r.agg.p95);
    }
    // anomaly scores and the expected band are rollups of their own, per scored series and window
    const of = (m: string) => rollups.filter((r) => r.metric === m && r.window === '1m' && r.labels.of === 'if_in_bps');
    assert.ok(of('anomaly_score').length > 0 && of('anomaly_upper').length > 0, 'scores and bands rolled up');
    const upper = new Map(of('anomaly_upper').map((r) => [`${JSON.stringify(r.labels)}|${r.start}|${r.revision}`, r]));
    for (const lo of of('anomaly_lower')) {
      const up = upper.get(`${JSON.stringify(lo.labels)}|${lo.start}|${lo.revision}`);
      assert.ok(up && up.count === lo.count && up.sum > lo.sum, `band of ${lo.key} at ${lo.start}`);
    }
    const windows = new Set([...got.values()].map((r) => r.window));
    assert.deepEqual([...windows].sort(), ['10s', '1m', '5m']);
    // The 1 h window of 08:00 is still open after 10 minutes of data: nothing emitted early.
    // State is on the changelog: one snapshot per input partition.
    const snaps = await readTopic(bus, cfg.changelog);
    assert.ok(snaps.length >= PARTS);
  } finally {
    await bus.close();
  }
});

test('a stopped instance hands its partitions and state to another: output identical to one uninterrupted run', async () => {
  const msgs = demoMessages(10);
  const ref = new MemoryBus();
  let refRollups: string[];
  let refAlerts: string[];
  try {
    await runOnce(ref, msgs);
    refRollups = rollupRows(await readTopic(ref, TOPICS.rollups));
    refAlerts = canonical(await readTopic(ref, TOPICS.alerts));
  } finally {
    await ref.close();
  }

  const bus = new MemoryBus({ maxBatchMessages: 7 });
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
    const half = Math.floor(msgs.length / 2);
    await produceAll(bus, msgs.slice(0, half));
    const a = await startProcessor({ bus, config: cfg, rules: DEMO_RULES, partitions: PARTS });
    const b = await startProcessor({ bus, config: cfg, rules: DEMO_RULES, partitions: PARTS });
    await waitCaughtUp(bus, cfg.groupId);
    assert.ok(a.assignment().length > 0 && b.assignment().length > 0, 'two members share the partitions');
    await a.stop(); // b takes a's partitions and restores their state from the changelog
    await produceAll(bus, msgs.slice(half));
    await waitCaughtUp(bus, cfg.groupId);
    assert.equal(b.assignment().length, PARTS);
    const c = await startProcessor({ bus, config: cfg, rules: DEMO_RULES, partitions: PARTS });
    await b.stop(); // and on to a third instance, which has nothing left to do but must not duplicate
    await c.stop();
    assert.deepEqual(rollupRows(await readTopic(bus, TOPICS.rollups)), refRollups);
    assert.deepEqual(canonical(await readTopic(bus, TOPICS.alerts)), refAlerts);
  } finally {
    await bus.close();
  }
});

test('a malformed input message is counted and skipped; the batches around it are processed', async () => {
  const bus = new MemoryBus();
  try {
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 1 }]);
    const msgs = demoMessages(2, 1, 2);
    const bad = { key: msgs[0]!.key, value: Buffer.from('garbage'), timestamp: msgs[0]!.timestamp };
    const before = await rejected();
    await produceAll(bus, [...msgs.slice(0, 10), bad, ...msgs.slice(10)]);
    const p = await startProcessor({ bus, config: cfg, partitions: 1 });
    await waitCaughtUp(bus, cfg.groupId);
    await p.stop();
    assert.equal(await rejected(), before + 1);
    const rollups = await readTopic(bus, TOPICS.rollups);
    const tenSec = rollups.flatMap((m) => decodeRollups(m.value!)).filter((r) => r.window === '10s' && r.metric === 'hrProcessorLoad');
    assert.ok(tenSec.length >= 10, `rollups from before and after the bad message (${tenSec.length})`);
    void encodeBatch;
  } finally {
    await bus.close();
  }
});

async function rejected(): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'noctua_rejected_messages_total');
  return Number(m?.values.find((v) => v.labels.topic === TOPICS.samples && v.labels.reason === 'codec')?.value ?? 0);
}

test('rulesFile: rules load at start and reload without a restart; later input is judged by the new rules', async () => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tempDir, waitFor } = await import('../peers/util.js');
  const dir = tempDir('runner-rules');
  const bus = new MemoryBus();
  try {
    const file = join(dir.path, 'rules.yaml');
    const rule = (th: number) => `groups:\n  - name: g\n    rules:\n      - { alert: CpuBusy, expr: 'hrProcessorLoad > ${th}' }\nroute: { group_wait: 10s, group_interval: 30s, repeat_interval: 1h }\n`;
    writeFileSync(file, rule(1000));
    const msgs = demoMessages(4, 2, 1);
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 1 }]);
    const rcfg = processorConfig({ rulesFile: file, delay: { default: '5s' } });
    const p = await startProcessor({ bus, config: rcfg, partitions: 1 });
    try {
      assert.equal(p.rules().rules[0]!.value, 1000);
      await produceAll(bus, msgs.slice(0, msgs.length / 2));
      await waitCaughtUp(bus, rcfg.groupId);
      assert.equal((await readTopic(bus, TOPICS.alerts)).length, 0, 'CPU never exceeds 1000');
      writeFileSync(file, rule(0));
      await waitFor('the rule file reload', () => p.rules().rules[0]!.value === 0, 10_000, 20);
      await produceAll(bus, msgs.slice(msgs.length / 2));
      await waitCaughtUp(bus, rcfg.groupId);
      const alerts = (await readTopic(bus, TOPICS.alerts)).map((m) => JSON.parse(m.value!.toString()) as { rule: string; state: string; ts: number });
      assert.ok(alerts.some((a) => a.rule === 'CpuBusy' && a.state === 'firing'), 'the reloaded rule fires');
      assert.ok(alerts.every((a) => a.ts >= msgs[msgs.length / 2]!.timestamp - 10_000), 'only on input after the reload');
    } finally {
      await p.stop();
    }
  } finally {
    await bus.close();
    dir.remove();
  }
});

test('acknowledging an active alert through the processor: recorded on the alerts topic with who and comment', async () => {
  const bus = new MemoryBus();
  try {
    const msgs = demoMessages(10);
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: PARTS }]);
    const p = await startProcessor({ bus, config: cfg, rules: DEMO_RULES, partitions: PARTS });
    try {
      await produceAll(bus, msgs.slice(0, msgs.length / 2));
      await waitCaughtUp(bus, cfg.groupId);
      const active = p.activeAlerts().filter((a) => a.state === 'firing');
      assert.ok(active.length > 0, 'some demo alert is firing half way');
      const fp = active[0]!.fingerprint;
      const change = p.acknowledge(fp, 'alice', 'on it', DEMO_START + 5 * 60_000);
      assert.equal(change?.ack?.by, 'alice');
      assert.equal(p.acknowledge('ffffffffffffffff', 'bob', ''), null, 'unknown alert: not held here');
      await produceAll(bus, msgs.slice(msgs.length / 2));
      await waitCaughtUp(bus, cfg.groupId);
      const acks = (await readTopic(bus, TOPICS.alerts)).map((m) => JSON.parse(m.value!.toString()) as { event: string; fingerprint: string; ack: { by: string; comment: string } | null }).filter((c) => c.event === 'ack');
      assert.deepEqual(acks.map((a) => [a.fingerprint, a.ack?.by, a.ack?.comment]), [[fp, 'alice', 'on it']]);
    } finally {
      await p.stop();
    }
  } finally {
    await bus.close();
  }
});
