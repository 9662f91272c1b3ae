import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus } from '../../../core/bus.js';
import { decodeBatch } from '../../../core/codec.js';
import { createLogger } from '../../../core/log.js';
import { TOPICS, type SampleBatch } from '../../../core/types.js';
import { DEMO_STATE_TOPIC, DemoSource } from '../../../ingest/demo/source.js';
import { MemoryBus } from '../../../core/bus-memory.js';
import { M } from '../../../core/metrics.js';
import { RateState } from '../../../processors/rate.js';

/** A bus whose producer takes about two milliseconds per poll, one send at a time: the history's replay takes several intervals. */
function slowBus(into: SampleBatch[]): Bus {
  let queue = Promise.resolve();
  const producer = {
    send: (topic: string, msgs: Array<{ value: Buffer }>) =>
      (queue = queue.then(async () => {
        await sleep(2 * msgs.length);
        if (topic === TOPICS.samples) for (const m of msgs) into.push(decodeBatch(m.value));
      })),
    close: async () => {},
  };
  return { producer: async () => producer } as unknown as Bus;
}

test('the demo polls every device on one grid: the live polls follow the replayed history one interval later, even when the replay takes longer than an interval', { timeout: 30_000 }, async () => {
  const polls: SampleBatch[] = [];
  const every = 500;
  const demo = new DemoSource(slowBus(polls), { devices: 12, interfaces: 2, seed: 42, incidentEveryMs: 0, intervalMs: every, backfillMs: 60_000 }, createLogger('silent'));
  const t0 = Date.now();
  await demo.start();
  const replayMs = Date.now() - t0;
  assert.ok(replayMs > 2 * every, `the replay (${replayMs} ms) takes more than an interval, or this test shows nothing`);
  await sleep(4 * every);
  await demo.stop();
  const byDevice = new Map<string, number[]>();
  for (const p of polls) byDevice.set(p.device, [...(byDevice.get(p.device) ?? []), p.ts]);
  assert.equal(byDevice.size, 12);
  for (const [device, ts] of byDevice) {
    assert.ok(ts.length >= 120 + 4, `${device}: ${ts.length} polls`);
    for (let i = 1; i < ts.length; i++) {
      // before, the first live poll came a replay's length late or part of an interval early
      assert.equal(ts[i]! - ts[i - 1]!, every, `${device}: poll ${i} of ${ts.length} (live from about the 120th)`);
    }
    assert.ok(ts.at(-1)! > t0 + replayMs, `${device}: polled live`);
  }
});

test('a start so busy that the poll timers fire late: each device\'s polls stay on the grid and its rates stay its rates', { timeout: 30_000 }, async () => {
  const polls: SampleBatch[] = [];
  const every = 500;
  const demo = new DemoSource(slowBus(polls), { devices: 12, interfaces: 2, seed: 42, incidentEveryMs: 0, intervalMs: every, backfillMs: 10_000 }, createLogger('silent'));
  await demo.start();
  // the processors digesting the history in the same process hold the event loop for a few intervals
  const until = Date.now() + 3.3 * every;
  while (Date.now() < until);
  await sleep(4 * every);
  await demo.stop();
  const rates = new RateState();
  const last = new Map<string, number>();
  let compared = 0;
  for (const b of polls) {
    const prevTs = last.get(b.device) ?? -Infinity;
    // on the grid: a late timer polls at its grid time and catches up (a poll at the present would follow a gap
    // as long as the stall, over which a busy Counter32 uplink wraps twice unseen)
    if (prevTs > -Infinity) assert.equal(b.ts - prevTs, every, `${b.device}: a poll at ${b.ts} after one at ${prevTs}`);
    last.set(b.device, b.ts);
  }
  const seen = new Map<string, number>();
  for (const b of polls.sort((x, y) => x.ts - y.ts)) {
    for (const s of rates.process(b).samples) {
      if (s.metric !== 'if_in_bps') continue;
      const key = `${b.device}/${s.labels.ifIndex}`;
      const before = seen.get(key);
      seen.set(key, s.value);
      if (before === undefined || before < 1e6) continue;
      compared++;
      // the model's traffic moves by a few % from poll to poll; a poll out of order had doubled a rate or more
      assert.ok(s.value > 0.6 * before && s.value < 1.6 * before, `${key}: ${s.value.toExponential(3)} after ${before.toExponential(3)} at ${b.ts}`);
    }
  }
  assert.ok(compared > 12 * 2 * 20, `${compared} rates compared`);
  assert.equal(rates.stats.outOfOrder, 0);
});

/** An in-process bus with the topics a demo writes (its state topic it makes itself). */
async function demoBus(): Promise<MemoryBus> {
  const bus = new MemoryBus();
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 3 }, { topic: TOPICS.events, partitions: 3 }]);
  return bus;
}

/** Every sample batch on the bus, in offset order per device. */
async function published(bus: MemoryBus): Promise<SampleBatch[]> {
  const ends = await bus.endOffsets(TOPICS.samples);
  const got = new Map<number, SampleBatch[]>();
  const c = bus.consumer({ groupId: `read-${Math.random()}`, fromBeginning: true, ephemeral: true });
  await c.subscribe([TOPICS.samples]);
  const last = new Map<number, number>();
  await c.run({ eachBatch: async (b) => {
    for (const m of b.messages) got.set(b.partition, [...(got.get(b.partition) ?? []), decodeBatch(m.value!)]);
    last.set(b.partition, Number(b.messages.at(-1)!.offset));
  } });
  const done = () => ends.every((e) => e.offset === '0' || last.get(e.partition) === Number(e.offset) - 1);
  for (let i = 0; i < 200 && !done(); i++) await sleep(10);
  await c.stop();
  return [...got.values()].flat();
}

test('a restarted demo continues its devices from the state written with their polls: no poll published twice or skipped, counters that go on, rates without a reset; a state of another network is set aside', { timeout: 30_000 }, async () => {
  const bus = await demoBus();
  try {
    const every = 500;
    const opts = { devices: 12, interfaces: 2, seed: 42, incidentEveryMs: 0, intervalMs: every, backfillMs: 10_000, stateTopic: DEMO_STATE_TOPIC };
    const first = new DemoSource(bus, opts, createLogger('silent'));
    await first.start();
    await sleep(3 * every);
    await first.stop();
    const firstRun = first.polls;
    await sleep(2 * every); // down for a while: the restart catches up on these polls
    const second = new DemoSource(bus, opts, createLogger('silent'));
    await second.start();
    await sleep(3 * every);
    await second.stop();
    const polls = await published(bus);
    assert.equal(polls.length, first.polls + second.polls);
    assert.ok(second.polls >= 12 * 4, `${firstRun} polls, then ${second.polls}`);
    const last = new Map<string, number>();
    const octets = new Map<string, number>();
    for (const b of polls) {
      const prev = last.get(b.device);
      if (prev !== undefined) assert.equal(b.ts - prev, every, `${b.device}: a poll at ${b.ts} after one at ${prev} (restart after poll ${firstRun})`);
      last.set(b.device, b.ts);
      for (const x of b.samples) {
        if (x.metric !== 'ifHCInOctets') continue;
        const key = `${b.device}/${x.labels.ifIndex}`;
        assert.ok(x.value >= (octets.get(key) ?? 0), `${key}: ifHCInOctets went back from ${octets.get(key)} to ${x.value}`);
        octets.set(key, x.value);
      }
    }
    const rates = new RateState();
    for (const b of [...polls].sort((x, y) => x.ts - y.ts)) rates.process(b);
    assert.deepEqual({ ...rates.stats, wraps: 0 }, { outOfOrder: 0, wraps: 0, ambiguous: 0, resets: 0, reboots: 0, clamped: 0 });
    // a state of another network (or garbage) is set aside with a warning: that device starts afresh, the others go on
    const p = await bus.producer();
    await p.send(DEMO_STATE_TOPIC, [{ key: 'core-rtr-1', value: Buffer.from(JSON.stringify({ v: 1, seed: 7, interfaces: 2, name: 'core-rtr-1', device: [] })) }, { key: 'dist-sw-1', value: Buffer.from('{not json') }]);
    await p.close();
    const setAside = async () => (await M.errors.get()).values.find((v) => v.labels.component === 'demo' && v.labels.kind === 'state')?.value ?? 0;
    const before = await setAside();
    const third = new DemoSource(bus, { ...opts, backfillMs: 5_000 }, createLogger('silent'));
    await third.start();
    await sleep(2 * every);
    await third.stop();
    assert.equal((await setAside()) - before, 2, 'both states set aside, and counted');
    const earlier = new Set(polls.map((b) => `${b.device}@${b.ts}`));
    const fresh = (await published(bus)).filter((b) => !earlier.has(`${b.device}@${b.ts}`));
    assert.equal(new Set(fresh.map((b) => b.device)).size, 12, 'every device polled on');
  } finally {
    await bus.close();
  }
});

test('a demo killed between polls resumes from what its transactions committed: a poll whose transaction did not commit is polled again, one that did is not', { timeout: 30_000 }, async () => {
  const bus = await demoBus();
  try {
    const every = 400;
    const opts = { devices: 4, interfaces: 1, seed: 9, incidentEveryMs: 0, intervalMs: every, backfillMs: 4_000, stateTopic: DEMO_STATE_TOPIC };
    const first = new DemoSource(bus, opts, createLogger('silent'));
    await first.start();
    await sleep(2 * every);
    // killed: no stop(), and an open transaction of the dead process (its samples without its commit)
    const zombie = await bus.producer({ transactionalId: `noctua-demo.${opts.seed}` });
    const tx = await zombie.transaction();
    await tx.send(TOPICS.samples, [{ key: 'core-rtr-1', value: Buffer.from('never committed') }]);
    (first as unknown as { stopped: boolean }).stopped = true;
    await sleep(every);
    const second = new DemoSource(bus, opts, createLogger('silent'));
    await second.start();
    await sleep(2 * every);
    await second.stop();
    await first.stop();
    const polls = await published(bus);
    const byDevice = new Map<string, number[]>();
    for (const b of polls) byDevice.set(b.device, [...(byDevice.get(b.device) ?? []), b.ts]);
    for (const [device, ts] of byDevice) {
      assert.equal(new Set(ts).size, ts.length, `${device}: no poll twice`);
      for (let i = 1; i < ts.length; i++) assert.equal(ts[i]! - ts[i - 1]!, every, `${device}: no poll skipped (${i} of ${ts.length})`);
    }
  } finally {
    await bus.close();
  }
});
