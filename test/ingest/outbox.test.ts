import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Outbox } from '../../ingest/outbox.js';
import { registry } from '../../core/metrics.js';
import { appendFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, tempDir, waitFor } from '../peers/util.js';

async function metric(name: string, source: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels.source === source)?.value ?? 0;
}

/** A bus that refuses everything while `down` is set, and records what it took. */
function flakyBus() {
  const took: number[][] = [];
  const state = { down: false, calls: 0 };
  const send = async (items: readonly number[]) => {
    state.calls++;
    await sleep(1);
    if (state.down) throw new Error('broker unreachable');
    took.push([...items]);
  };
  return { took, state, send };
}

test('an outage longer than the client retries delays polls instead of dropping them: all taken once, in order, in few sends', async () => {
  const bus = flakyBus();
  const box = new Outbox<number>({ source: 'test-outage', send: bus.send, bytes: () => 100, retryMinMs: 5, retryMaxMs: 20 });
  const retriesBefore = await metric('noctua_outbox_retries_total', 'test-outage');
  bus.state.down = true;
  for (let i = 0; i < 50; i++) {
    box.push(i);
    await sleep(2);
  }
  assert.equal(bus.took.length, 0);
  assert.ok(box.held === 50, `${box.held} held`);
  assert.equal(await metric('noctua_outbox_held_items', 'test-outage'), 50);
  bus.state.down = false;
  for (let i = 50; i < 60; i++) box.push(i);
  await box.idle();
  assert.deepEqual(bus.took.flat(), Array.from({ length: 60 }, (_, i) => i));
  assert.ok(bus.took.length <= 3, `what waited went in few sends: ${bus.took.map((b) => b.length).join(',')}`);
  assert.ok((await metric('noctua_outbox_retries_total', 'test-outage')) - retriesBefore >= 3);
  assert.equal(await metric('noctua_outbox_held_items', 'test-outage'), 0);
});

test('a full outbox drops its oldest waiting items, never the send under way, and counts them', async () => {
  const bus = flakyBus();
  bus.state.down = true;
  const box = new Outbox<number>({ source: 'test-full', send: bus.send, bytes: () => 1000, maxBytes: 10_000, retryMinMs: 5, retryMaxMs: 5 });
  for (let i = 0; i < 30; i++) box.push(i);
  // full at 11 items: it drops the oldest waiting down to 90% of its bound, in chunks
  assert.ok(box.held <= 10 && box.held >= 9, `${box.held} held`);
  assert.equal(await metric('noctua_outbox_dropped_total', 'test-full'), 30 - box.held);
  bus.state.down = false;
  await box.idle();
  // item 0 was in the send under way when the rest arrived; the newest follow it, in order
  const took = bus.took.flat();
  assert.equal(took[0], 0);
  assert.deepEqual(took.slice(1), Array.from({ length: took.length - 1 }, (_, i) => 30 - took.length + 1 + i));
});

test('before a retry, recover() may set aside what the failed send delivered after all', async () => {
  const took: number[] = [];
  let fail = true;
  const box = new Outbox<number>({
    source: 'test-recover',
    retryMinMs: 5,
    bytes: () => 1,
    send: async (items) => {
      if (fail) {
        fail = false;
        took.push(...items); // delivered, but the answer was lost
        throw new Error('commit answer lost');
      }
      took.push(...items);
    },
    recover: async (items) => items.filter((i) => !took.includes(i)),
  });
  box.push(1);
  box.push(2);
  await sleep(1);
  box.push(3);
  await box.idle();
  assert.deepEqual(took, [1, 2, 3], 'nothing twice, nothing lost');
});

test('lanes never share a send, and keep their order', async () => {
  const sends: string[][] = [];
  const box = new Outbox<string>({ source: 'test-lanes', bytes: () => 1, lane: (s) => s[0]!, send: async (items) => void sends.push([...items]) });
  for (const s of ['a1', 'a2', 'b1', 'a3', 'b2', 'b3']) box.push(s);
  await box.idle();
  for (const s of sends) assert.equal(new Set(s.map((x) => x[0])).size, 1, s.join(','));
  assert.deepEqual(sends.flat(), ['a1', 'a2', 'b1', 'a3', 'b2', 'b3']);
});

test('a shutdown waits for the bus a bounded time, then counts what it could not send', async () => {
  const bus = flakyBus();
  bus.state.down = true;
  const box = new Outbox<number>({ source: 'test-close', send: bus.send, bytes: () => 1, retryMinMs: 5, retryMaxMs: 10 });
  for (let i = 0; i < 5; i++) box.push(i);
  const t0 = Date.now();
  assert.equal(await box.close(200), 5);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await metric('noctua_outbox_dropped_total', 'test-close'), 5);
  box.push(6);
  assert.equal(box.held, 0, 'a closed outbox takes nothing');
});

test('a send holds at most maxBatchBytes (one item at least): the held polls of an outage go out in sends the broker accepts', async () => {
  const sends: number[][] = [];
  const box = new Outbox<number>({ source: 'test-batch-bytes', bytes: (i) => (i === 7 ? 5000 : 300), maxBatchBytes: 1000, send: async (items) => void sends.push([...items]) });
  for (let i = 0; i < 10; i++) box.push(i);
  await box.idle();
  assert.deepEqual(sends.flat(), Array.from({ length: 10 }, (_, i) => i));
  for (const s of sends) assert.ok(s.length === 1 || s.reduce((a, i) => a + (i === 7 ? 5000 : 300), 0) <= 1000, `send of ${s.join(',')}`);
  assert.ok(sends.some((s) => s.length === 1 && s[0] === 7), 'an item over the bound goes alone');
});

const numbers = (dir: string) => ({ dir, encode: (n: number) => (n < 0 ? null : Buffer.from(String(n))), decode: (b: Buffer) => Number(b.toString()) });

/**
 * An outbox in a process of its own with a bus that is down, then takes `okSends` sends, then fails for
 * good; it pushes `items` and says 'ready' once its spool has them. SIGKILL is then a real kill.
 */
async function killedHolder(dir: string, items: number[], okSends: number, maxBatch: number): Promise<{ took: () => number[]; kill: () => Promise<void> }> {
  const outbox = join(import.meta.dirname, '../../ingest/outbox.js');
  const p = startProcess(process.execPath, ['--input-type=module', '-e', `
    const { Outbox } = await import(${JSON.stringify(outbox)});
    let down = true;
    let ok = ${okSends};
    const box = new Outbox({
      source: 'child', bytes: () => 10, retryMinMs: 5, retryMaxMs: 5, maxBatch: ${maxBatch},
      send: async (items) => {
        await new Promise((r) => setTimeout(r, 1));
        if (down) { down = false; throw new Error('broker unreachable'); }
        if (ok-- <= 0) throw new Error('broker unreachable');
        console.log('took ' + items.join(','));
      },
      spool: { dir: ${JSON.stringify(dir)}, encode: (n) => (n < 0 ? null : Buffer.from(String(n))), decode: (b) => Number(b.toString()) },
    });
    for (const n of ${JSON.stringify(items)}) box.push(n);
    setTimeout(() => console.log('ready'), 300);
  `]);
  await waitFor('the holder to spool', () => /ready/.test(p.output()) || p.child.exitCode !== null, 10_000, 10);
  assert.equal(p.child.exitCode, null, p.output());
  return { took: () => [...p.output().matchAll(/took ([\d,]+)/g)].flatMap((m) => m[1]!.split(',').map(Number)), kill: () => p.kill('SIGKILL') };
}

test('spool: what a killed process held while the bus was away is sent by the next one, once, before anything new', async () => {
  const dir = tempDir('spool');
  try {
    const holder = await killedHolder(dir.path, [...Array.from({ length: 20 }, (_, i) => i), -1], 0, 4); // -1 needs no spool (a line its file still holds)
    await holder.kill();
    assert.deepEqual(holder.took(), []);
    const b = flakyBus();
    const next = new Outbox<number>({ source: 'test-spool', send: b.send, bytes: () => 10, retryMinMs: 5, retryMaxMs: 5, maxBatch: 4, spool: numbers(dir.path) });
    next.push(100);
    await next.idle();
    assert.deepEqual(b.took.flat(), [...Array.from({ length: 20 }, (_, i) => i), 100]);
    assert.equal(statSync(join(dir.path, 'items')).size, 0, 'emptied once all was taken');
    assert.equal(await metric('noctua_outbox_replayed_total', 'test-spool'), 20);
    await next.close(100);
  } finally {
    dir.remove();
  }
});

test('spool: a send the bus took is not sent again; a torn last write is cut off; a shutdown keeps what it could not send', async () => {
  const dir = tempDir('spool');
  try {
    // Down, then two sends of three taken, then down for good: killed with 0-5 taken and 6-9 held.
    const holder = await killedHolder(dir.path, Array.from({ length: 10 }, (_, i) => i), 2, 3);
    await holder.kill();
    assert.deepEqual(holder.took(), [0, 1, 2, 3, 4, 5]);
    // Killed in the middle of a write: half a frame at the end.
    appendFileSync(join(dir.path, 'items'), Buffer.from([0xa5, 0, 0, 0, 9, 1]));
    const b = flakyBus();
    b.state.down = true;
    const next = new Outbox<number>({ source: 'test-spool-2', send: b.send, bytes: () => 10, retryMinMs: 5, retryMaxMs: 5, spool: numbers(dir.path) });
    // A shutdown while the bus is away: kept for the next start, not dropped.
    assert.equal(await next.close(30), 0);
    const c = flakyBus();
    const last = new Outbox<number>({ source: 'test-spool-2', send: c.send, bytes: () => 10, retryMinMs: 5, retryMaxMs: 5, spool: numbers(dir.path) });
    await last.idle();
    assert.deepEqual([...holder.took(), ...c.took.flat()], Array.from({ length: 10 }, (_, i) => i), 'each once, in order');
    await last.close(100);
  } finally {
    dir.remove();
  }
});

test('spool: one process per spool; a full outbox drops from the spool too', async () => {
  const dir = tempDir('spool');
  try {
    writeFileSync(join(dir.path, 'lock'), String(process.ppid)); // a live process holds it
    const bus = flakyBus();
    const held = new Outbox<number>({ source: 'test-spool-3', send: bus.send, bytes: () => 10, spool: numbers(dir.path) });
    bus.state.down = true;
    held.push(1);
    await waitFor('a failed send', () => bus.state.calls > 0, 5_000, 1);
    await sleep(10);
    assert.equal(statSync(join(dir.path, 'items'), { throwIfNoEntry: false }), undefined, 'no spool: memory only');
    await held.close(0);
    writeFileSync(join(dir.path, 'lock'), '999999999'); // its process is gone
    const full = new Outbox<number>({ source: 'test-spool-3', send: bus.send, bytes: () => 1000, maxBytes: 10_000, retryMinMs: 5, retryMaxMs: 5, spool: numbers(dir.path) });
    full.push(0);
    await waitFor('a failed send', () => bus.state.calls > 1, 5_000, 1);
    for (let i = 1; i < 30; i++) full.push(i);
    await sleep(20);
    const kept = full.held;
    await full.close(0); // what it holds stays in the spool
    const c = flakyBus();
    const next = new Outbox<number>({ source: 'test-spool-3', send: c.send, bytes: () => 1000, spool: numbers(dir.path) });
    await next.idle();
    assert.equal(c.took.flat().length, kept, 'what the full outbox dropped is not sent after a restart');
    assert.deepEqual(c.took.flat().slice(1), Array.from({ length: kept - 1 }, (_, i) => 30 - kept + 1 + i));
    await next.close(100);
  } finally {
    dir.remove();
  }
});
