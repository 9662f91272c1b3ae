import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus } from '../../../core/bus.js';
import { decodeBatch } from '../../../core/codec.js';
import { createLogger } from '../../../core/log.js';
import { TOPICS } from '../../../core/types.js';
import { DemoSource } from '../../../ingest/demo/source.js';

/** A bus whose producer takes about a millisecond per batch, one at a time: the history's replay takes several intervals. */
function slowBus(into: Array<{ device: string; ts: number }>): Bus {
  let queue = Promise.resolve();
  const producer = {
    send: (topic: string, msgs: Array<{ value: Buffer }>) =>
      (queue = queue.then(async () => {
        await sleep(1);
        if (topic === TOPICS.samples) for (const m of msgs) into.push(decodeBatch(m.value));
      })),
    close: async () => {},
  };
  return { producer: async () => producer } as unknown as Bus;
}

test('the demo polls every device on one grid: the live polls follow the replayed history one interval later, even when the replay takes longer than an interval', { timeout: 30_000 }, async () => {
  const polls: Array<{ device: string; ts: number }> = [];
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
      const gap = ts[i]! - ts[i - 1]!;
      // a timer may fire late on a busy machine (and the next poll then a little less than an interval after it); before, the first live poll came a replay's length late or part of an interval early
      assert.ok(gap >= every - 250 && gap <= every + 250, `${device}: poll ${i} came ${gap} ms after the one before (${ts.length} polls, live from poll ~${120})`);
    }
    assert.ok(ts.at(-1)! > t0 + replayMs, `${device}: polled live`);
  }
});
