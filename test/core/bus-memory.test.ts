import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../../core/bus-memory.js';
import { partitionFor, type InMessage } from '../../core/bus.js';
import { busConformance } from './bus-conformance.js';
import { sleep, waitFor } from '../peers/util.js';

busConformance('memory', async () => new MemoryBus({ retryMinMs: 10, retryMaxMs: 50 }), { settleMs: 2_000, quietMs: 100 });

/** A group that reads `topic` (one partition) and commits after every batch; `seen()` counts what it read. */
async function committingReader(bus: MemoryBus, topic: string, groupId = 'g') {
  const c = bus.consumer({ groupId });
  await c.subscribe([topic]);
  let seen = 0;
  await c.run({ eachBatch: async (b) => { seen += b.messages.length; await c.commit([{ topic, partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]); } });
  return { consumer: c, seen: () => seen };
}

/** What a new group reading from the beginning finds (at least `atLeast`, then a moment for more). */
async function retained(bus: MemoryBus, topic: string, atLeast: number): Promise<InMessage[]> {
  const late = bus.consumer({ groupId: `late-${topic}`, fromBeginning: true });
  await late.subscribe([topic]);
  const got: InMessage[] = [];
  await late.run({ eachBatch: async (b) => void got.push(...b.messages) });
  await waitFor('the retained tail', () => got.length >= atLeast);
  await sleep(50);
  await late.stop();
  return got;
}

// What only the in-process bus promises: bounded memory, compaction, and hand-over without overlap.

test('memory: consumed messages beyond retainConsumed are dropped, unconsumed ones never', async (t) => {
  const bus = new MemoryBus({ retainConsumed: 100 });
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'r', partitions: 1 }]);
  const p = await bus.producer();
  const c = await committingReader(bus, 'r');
  for (let i = 0; i < 50; i++) await p.send('r', Array.from({ length: 100 }, (_, j) => ({ key: 'k', value: Buffer.from(String(i * 100 + j)) })));
  await waitFor('5000 consumed', () => c.seen() === 5000);
  await c.consumer.stop();
  // A group that starts now from the beginning only finds the retained tail.
  const got = await retained(bus, 'r', 100);
  assert.equal(got.length, 100);
  assert.equal(got[0]!.offset, '4900');
  assert.deepEqual(await bus.endOffsets('r'), [{ topic: 'r', partition: 0, offset: '5000' }]);

  // Nothing is dropped while a group still has it to read.
  await bus.ensureTopics([{ topic: 'u', partitions: 1 }]);
  const slow = bus.consumer({ groupId: 'slow' });
  await slow.subscribe(['u']);
  await slow.run({ eachBatch: async () => { throw new Error('stuck'); } });
  for (let i = 0; i < 5; i++) await p.send('u', Array.from({ length: 100 }, () => ({ key: 'k', value: Buffer.from('x') })));
  await slow.stop();
  const other = bus.consumer({ groupId: 'other', fromBeginning: true });
  await other.subscribe(['u']);
  let n = 0;
  await other.run({ eachBatch: async (b) => { n += b.messages.length; await other.commit([{ topic: 'u', partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]); } });
  await waitFor('other read all 500', () => n === 500);
  await other.stop();
  const again = bus.consumer({ groupId: 'again', fromBeginning: true });
  await again.subscribe(['u']);
  let m = 0;
  await again.run({ eachBatch: async (b) => void (m += b.messages.length) });
  await waitFor('all 500 still there for the stuck group', () => m === 500);
  await again.stop();
});

test('memory: consumed messages are kept up to retainConsumedBytes too (large messages: rollups of 40 KB)', async (t) => {
  const bus = new MemoryBus({ retainConsumed: 1000, retainConsumedBytes: 1000 });
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'b', partitions: 1 }]);
  const g = await committingReader(bus, 'b');
  const p = await bus.producer();
  for (let i = 0; i < 50; i++) await p.send('b', [{ key: 'k', value: Buffer.alloc(99, i) }]);
  await waitFor('50 consumed', () => g.seen() === 50);
  await g.consumer.stop();
  const got = await retained(bus, 'b', 10);
  assert.deepEqual(got.map((m) => m.offset), ['40', '41', '42', '43', '44', '45', '46', '47', '48', '49'], 'the newest 1000 bytes of consumed messages');
});

test('memory: an ephemeral reader (a live tail) holds back no retention, and cannot commit', async (t) => {
  const bus = new MemoryBus({ retainConsumed: 100 });
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'e', partitions: 1 }]);
  let tailed = 0;
  const tail = bus.consumer({ groupId: 'tail-1', fromBeginning: false, ephemeral: true });
  await tail.subscribe(['e']);
  await tail.run({ eachBatch: async (b) => void (tailed += b.messages.length) });
  await assert.rejects(tail.commit([{ topic: 'e', partition: 0, offset: '0' }]), /ephemeral reader does not commit/);
  const g = await committingReader(bus, 'e');
  const p = await bus.producer();
  for (let i = 0; i < 10; i++) await p.send('e', Array.from({ length: 100 }, (_, j) => ({ key: 'k', value: Buffer.from(String(i * 100 + j)) })));
  await waitFor('1000 read by both', () => g.seen() === 1000 && tailed === 1000);
  assert.equal((await retained(bus, 'e', 100)).length, 100, 'the committing group alone decides what is consumed: the tail kept nothing');
  for (const c of [tail, g.consumer]) await c.stop();
});

test('memory: a compacted topic keeps the newest value of every key once consumed', async (t) => {
  const bus = new MemoryBus({ retainConsumed: 0 });
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'state', partitions: 1, compacted: true }]);
  const p = await bus.producer();
  for (let v = 0; v < 10; v++) await p.send('state', ['a', 'b', 'c'].map((key) => ({ key, value: Buffer.from(`${key}${v}`) })));
  await p.send('state', [{ key: 'c', value: null }]);
  const c = bus.consumer({ groupId: 'reader' });
  await c.subscribe(['state']);
  await c.run({ eachBatch: async (b) => c.commit([{ topic: 'state', partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]) });
  await waitFor('committed to the end', async () => (await bus.committed('reader', 'state'))[0]!.offset === '31');
  await c.stop();
  const restore = bus.consumer({ groupId: `restore`, fromBeginning: true });
  await restore.subscribe(['state']);
  const got: InMessage[] = [];
  await restore.run({ eachBatch: async (b) => void got.push(...b.messages) });
  await waitFor('the compacted state', () => got.length >= 2);
  await sleep(50);
  await restore.stop();
  assert.deepEqual(got.map((m) => [m.key, m.value?.toString() ?? null]), [['a', 'a9'], ['b', 'b9']], 'latest per key, deleted key gone');
});

test('memory: a compacted topic nobody consumes (the processors\' changelog) stays bounded; a live reader still sees a tombstone', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'changelog', partitions: 1, compacted: true }, { topic: 'book', partitions: 1, compacted: true }]);
  const p = await bus.producer();
  // a snapshot of two chunks every few seconds, for hours: only the newest of each key need stay
  for (let v = 0; v < 5_000; v++) await p.send('changelog', ['p0#0', 'p0#1'].map((key) => ({ key, value: Buffer.alloc(1024, v % 251) })));
  const entries = (topic: string) => (bus as unknown as { topics: Map<string, { partitions: Array<{ entries: unknown[] }> }> }).topics.get(topic)!.partitions[0]!.entries.length;
  assert.ok(entries('changelog') <= 2 * 2 + 64 + 2, `${entries('changelog')} entries kept of 10,000`);
  const restore = bus.consumer({ groupId: 'restore', fromBeginning: true });
  await restore.subscribe(['changelog']);
  const got = new Map<string, number>();
  await restore.run({ eachBatch: async (b) => void b.messages.forEach((m) => got.set(m.key!, m.value![0]!)) });
  await waitFor('the newest snapshot', () => got.size === 2 && [...got.values()].every((x) => x === 4_999 % 251));
  await restore.stop();
  // a reader that has read a key's value and is behind its deletion learns of the deletion, however much is written after
  const reader = bus.consumer({ groupId: 'reader' });
  await reader.subscribe(['book']);
  const seen: Array<[string, string | null]> = [];
  let hold = true;
  await reader.run({
    eachBatch: async (b) => {
      for (const m of b.messages) seen.push([m.key!, m.value?.toString() ?? null]);
      while (hold) await sleep(5);
      await reader.commit([{ topic: 'book', partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]);
    },
  });
  await p.send('book', [{ key: 's1', value: Buffer.from('silence') }]);
  await waitFor('the value read', () => seen.length === 1);
  await p.send('book', [{ key: 's1', value: null }]);
  for (let v = 0; v < 300; v++) await p.send('book', [{ key: `other${v % 3}`, value: Buffer.from(String(v)) }]);
  hold = false;
  await waitFor('the deletion read', () => seen.some(([k, v]) => k === 's1' && v === null));
  await reader.stop();
});

test('memory: a partition changes hands only after its in-flight batch ends and onRevoked ran', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'h', partitions: 2 }]);
  const p = await bus.producer();
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a = bus.consumer({ groupId: 'g' });
  await a.subscribe(['h']);
  await a.run({
    eachBatch: async (b) => {
      log.push(`A batch ${b.partition} start`);
      await gate;
      log.push(`A batch ${b.partition} end`);
    },
    onRevoked: (ps) => void log.push(`A revoked ${ps.map((x) => x.partition).join(',')}`),
  });
  const key1 = ['x', 'y', 'z', 'w', 'v'].find((k) => partitionFor(k, 2) === 1)!;
  await p.send('h', [{ key: key1, value: Buffer.from('1') }]);
  await waitFor('A busy on partition 1', () => log.includes('A batch 1 start'));
  const b = bus.consumer({ groupId: 'g' });
  await b.subscribe(['h']);
  const joined = b.run({
    eachBatch: async (bt) => void log.push(`B batch ${bt.partition}`),
    onAssigned: (ps) => void log.push(`B assigned ${ps.map((x) => x.partition).join(',')}`),
  });
  await sleep(50);
  assert.ok(!log.some((l) => l.startsWith('B ')), 'B gets nothing while A still works on partition 1');
  release();
  await joined;
  assert.deepEqual(log.slice(0, 4), ['A batch 1 start', 'A batch 1 end', 'A revoked 1', 'B assigned 1']);
  // A never committed, so B starts partition 1 from the beginning: the message is processed again.
  await waitFor('B replays partition 1', () => log.includes('B batch 1'));
  await a.stop();
  await b.stop();
});

test('memory: adding partitions to a topic rebalances its groups', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'grow', partitions: 1 }]);
  const c = bus.consumer({ groupId: 'g' });
  await c.subscribe(['grow']);
  await c.run({ eachBatch: async () => {} });
  assert.equal(c.assignment().length, 1);
  await bus.ensureTopics([{ topic: 'grow', partitions: 3 }]);
  assert.deepEqual(c.assignment().map((x) => x.partition).sort(), [0, 1, 2]);
  await bus.ensureTopics([{ topic: 'grow', partitions: 2 }]);
  assert.equal((await bus.endOffsets('grow')).length, 3, 'partitions are never removed');
  await c.stop();
});

test('memory: bad input gives clear errors, never a crash', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await assert.rejects(bus.ensureTopics([{ topic: 'bad topic!', partitions: 1 }]), /invalid topic name/);
  await assert.rejects(bus.ensureTopics([{ topic: 'ok', partitions: 0 }]), /partition count.*topic=ok/);
  const p = await bus.producer();
  await assert.rejects(p.send('missing', [{ key: 'k', value: null }]), /unknown topic.*topic=missing/);
  await assert.rejects(p.transaction(), /transactionalId/);
  await bus.ensureTopics([{ topic: 'ok', partitions: 1 }]);
  const c = bus.consumer({ groupId: 'g' });
  await assert.rejects(c.commit([{ topic: 'ok', partition: 5, offset: '1' }]), /partition that does not exist.*partition=5/);
  await assert.rejects(c.commit([{ topic: 'ok', partition: 0, offset: 'abc' }]), /invalid offset/);
  await assert.rejects(c.run({ eachBatch: async () => {} }), /subscribe/);
  assert.throws(() => bus.consumer({ groupId: '' }), /groupId/);
});

test('memory: consumer lag per group and partition is exported after each batch, and dropped with the partition', async (t) => {
  const { M } = await import('../../core/metrics.js');
  const bus = new MemoryBus({ maxBatchMessages: 10 });
  t.after(() => bus.close());
  await bus.ensureTopics([{ topic: 'lag', partitions: 1 }]);
  const p = await bus.producer();
  await p.send('lag', Array.from({ length: 25 }, () => ({ key: 'k', value: Buffer.from('v') })));
  const c = bus.consumer({ groupId: 'lagger' });
  await c.subscribe(['lag']);
  const lagNow = async () => (await M.busLag.get()).values.find((v) => v.labels.group === 'lagger' && v.labels.topic === 'lag')?.value;
  let batches = 0;
  await c.run({ eachBatch: async () => void batches++ });
  await waitFor('3 batches', () => batches === 3);
  await waitFor('lag 0 once caught up', async () => (await lagNow()) === 0);
  await c.stop();
  assert.equal(await lagNow(), undefined, 'a stopped member reports no lag for what it no longer reads');
  // A group stuck after its first batch of 10 shows the 15 it has not read.
  let first = true;
  const d = bus.consumer({ groupId: 'slowpoke' });
  await d.subscribe(['lag']);
  await d.run({ eachBatch: async () => { if (!first) throw new Error('stop here'); first = false; } });
  await waitFor('slowpoke lag', async () => (await M.busLag.get()).values.find((v) => v.labels.group === 'slowpoke')?.value === 15);
  await d.stop();
});
