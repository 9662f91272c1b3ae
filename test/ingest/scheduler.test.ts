import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, phaseOf, nextSlot } from '../../ingest/scheduler.js';
import { sleep, waitFor } from '../peers/util.js';

test('phases are stable per id and spread over the interval', () => {
  assert.equal(phaseOf('10.0.0.1:161', 60_000), phaseOf('10.0.0.1:161', 60_000));
  const perSecond = new Array<number>(60).fill(0);
  for (let i = 0; i < 10_000; i++) perSecond[Math.floor(phaseOf(`10.${i >> 8}.${i & 255}.1:161`, 60_000) / 1000)]!++;
  const max = Math.max(...perSecond);
  const min = Math.min(...perSecond);
  // 10,000 / 60 = 167 per second on average; a good hash keeps every second near it.
  assert.ok(max < 167 * 1.4 && min > 167 * 0.6, `per-second starts range ${min}..${max}`);
  const now = 1_000_000;
  const slot = nextSlot('x', 5000, now);
  assert.ok(slot > now && slot <= now + 5000);
  assert.equal((slot - phaseOf('x', 5000)) % 5000, 0);
});

test('the global concurrency limit holds and every job runs', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const runs = new Map<string, number>();
  const s = new Scheduler({ concurrency: 3 });
  for (let i = 0; i < 12; i++) {
    const id = `job${i}`;
    s.add({
      id,
      intervalMs: 300,
      async run() {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(20);
        runs.set(id, (runs.get(id) ?? 0) + 1);
        inFlight--;
      },
    });
  }
  s.start();
  await waitFor('every job to run twice', () => [...runs.values()].filter((n) => n >= 2).length === 12, 10_000, 20);
  await s.stop();
  assert.ok(maxInFlight <= 3, `max in flight ${maxInFlight}`);
  assert.equal(inFlight, 0, 'stop() waits for runs in flight');
});

test('a job still running at its next slot is skipped, never run twice at once', async () => {
  const skips: string[] = [];
  let concurrentSelf = 0;
  let maxSelf = 0;
  let runs = 0;
  const s = new Scheduler({ concurrency: 10, onSkip: (id, why) => skips.push(`${id}:${why}`) });
  s.add({
    id: 'slow',
    intervalMs: 50,
    async run() {
      concurrentSelf++;
      maxSelf = Math.max(maxSelf, concurrentSelf);
      runs++;
      await sleep(180);
      concurrentSelf--;
    },
  });
  s.start();
  await waitFor('an overrun skip', () => skips.includes('slow:overrun') && runs >= 2, 10_000, 10);
  await s.stop();
  assert.equal(maxSelf, 1);
});

test('queued runs whose next slot has come are dropped as stale; late starts are reported', async () => {
  const skips: string[] = [];
  const late: string[] = [];
  const s = new Scheduler({ concurrency: 1, lateAfterMs: () => 10, onSkip: (id, why) => skips.push(`${id}:${why}`), onLate: (id) => late.push(id) });
  // One job hogs the only slot for longer than the others' interval.
  s.add({ id: 'hog', intervalMs: 1000, run: () => sleep(400) });
  for (let i = 0; i < 5; i++) s.add({ id: `quick${i}`, intervalMs: 100, run: () => sleep(1) });
  s.start();
  await waitFor('a stale skip', () => skips.some((x) => x.endsWith(':stale')), 10_000, 10);
  await waitFor('a late start', () => late.length > 0, 10_000, 10);
  await s.stop();
});

test('a removed job stops running; a throwing job is reported and does not stop the others', async () => {
  let a = 0;
  let b = 0;
  const errors: string[] = [];
  const s = new Scheduler({ concurrency: 2, onError: (id, err) => errors.push(`${id}: ${(err as Error).message}`) });
  s.add({ id: 'a', intervalMs: 40, run: async () => void a++ });
  s.add({
    id: 'b',
    intervalMs: 40,
    run: async () => {
      b++;
      throw new Error('device exploded');
    },
  });
  s.start();
  await waitFor('both to run', () => a >= 2 && b >= 2, 10_000, 5);
  assert.ok(errors[0]!.startsWith('b: device exploded'));
  s.remove('a');
  const aThen = a;
  const bThen = b;
  await waitFor('b to keep running', () => b >= bThen + 3, 10_000, 5);
  assert.ok(a <= aThen + 1, 'at most the run already queued');
  assert.equal(s.has('a'), false);
  await s.stop();
});
