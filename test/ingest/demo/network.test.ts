import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoNetwork } from '../../../ingest/demo/network.js';
import { replayDemo } from '../../../ingest/demo/source.js';

const opts = { devices: 12, interfaces: 8, seed: 42, incidentEveryMs: 600_000 };
const T0 = Date.UTC(2026, 10, 2, 0, 0, 0);

test('replays of the same poll times are identical (deterministic from the seed)', () => {
  const a = [...replayDemo(new DemoNetwork(opts), T0, T0 + 600_000, 10_000)];
  const b = [...replayDemo(new DemoNetwork(opts), T0, T0 + 600_000, 10_000)];
  assert.deepEqual(a, b);
  const c = [...replayDemo(new DemoNetwork({ ...opts, seed: 43 }), T0, T0 + 600_000, 10_000)];
  assert.notDeepEqual(a, c);
});

test('64-bit counters only grow, 32-bit counters wrap, a reboot resets counters and sysUpTime with an event', () => {
  const net = new DemoNetwork({ ...opts, rebootEveryMs: 3_600_000 });
  const last = new Map<string, number>();
  let wraps = 0;
  let reboots = 0;
  let uptimeDrops = 0;
  for (const { batch, events } of replayDemo(net, T0, T0 + 6 * 3_600_000, 10_000)) {
    reboots += events.filter((e) => e.kind === 'reboot').length;
    const rebooted = events.some((e) => e.kind === 'reboot');
    for (const s of batch.samples) {
      const k = s.metric + JSON.stringify(s.labels);
      const prev = last.get(k);
      last.set(k, s.value);
      if (prev === undefined) continue;
      if (s.metric === 'sysUpTime' && s.value < prev) uptimeDrops++;
      if (s.metric === 'ifHCInOctets' && !rebooted) assert.ok(s.value >= prev, `${k} went back ${prev} -> ${s.value}`);
      if (s.metric === 'ifInOctets' && s.value < prev && !rebooted) wraps++;
    }
  }
  assert.ok(wraps > 0, 'some 32-bit counter wrapped');
  assert.ok(reboots >= 3, `reboots: ${reboots}`);
  assert.equal(uptimeDrops, reboots);
});

test('an injected incident shows in the polls of its device and interface only while it lasts', () => {
  const net = new DemoNetwork({ ...opts, incidentEveryMs: 0 });
  const dev = net.deviceNames[3]!;
  net.inject({ device: dev, ifIndex: 2, kind: 'link-down', start: T0 + 60_000, end: T0 + 120_000 });
  const oper = (t: number) => {
    const { batch } = net.poll(3, t);
    return batch.samples.find((s) => s.metric === 'ifOperStatus' && s.labels.ifIndex === '2')!.value;
  };
  assert.equal(oper(T0), 1);
  assert.equal(oper(T0 + 60_000), 2);
  assert.equal(oper(T0 + 119_999), 2);
  assert.equal(oper(T0 + 120_000), 1);
});

test('utilisation stays within line speed', () => {
  const net = new DemoNetwork(opts);
  const prev = new Map<string, number>();
  for (const { batch } of replayDemo(net, T0, T0 + 3_600_000, 10_000)) {
    const speed = new Map(batch.samples.filter((s) => s.metric === 'ifHighSpeed').map((s) => [s.labels.ifIndex, s.value]));
    for (const s of batch.samples.filter((x) => x.metric === 'ifHCInOctets')) {
      const k = batch.device + s.labels.ifIndex;
      const p = prev.get(k);
      prev.set(k, s.value);
      if (p === undefined || s.value < p) continue;
      const bps = ((s.value - p) * 8) / 10;
      assert.ok(bps <= speed.get(s.labels.ifIndex)! * 1e6, `${k}: ${bps} bps`);
    }
  }
});

test('scheduled incidents spread over the ports and kinds, not the same few again and again', () => {
  // the hash's low bits once cycled: a week's incidents fell on 24 of 96 ports, each always the same kind
  const net = new DemoNetwork({ ...opts, incidentEveryMs: 30 * 60_000 });
  const seen = new Map<string, { device: string; ifIndex: number; kind: string }>();
  for (let t = T0; t < T0 + 7 * 86_400_000; t += 60_000) for (const i of net.scheduledIncidents(t)) seen.set(`${i.device}/${i.ifIndex}/${i.start}`, i);
  const all = [...seen.values()];
  assert.ok(all.length > 250, `${all.length} incidents in a week`);
  const ports = new Set(all.map((i) => `${i.device}/${i.ifIndex}`));
  const pairs = new Set(all.map((i) => `${i.device}/${i.ifIndex}/${i.kind}`));
  assert.ok(ports.size >= 80, `${ports.size} of 96 ports`);
  assert.ok(pairs.size >= 150, `${pairs.size} port-kind pairs`);
});
