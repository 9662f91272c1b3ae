import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBus } from '../../core/bus-memory.js';
import type { Bus, InMessage } from '../../core/bus.js';
import { startProcess, tempDir, waitFor } from '../peers/util.js';

const busModule = new URL('../../core/bus-memory.js', import.meta.url).href;

/**
 * The "copy" processor: reads `in`, writes each value to `out` and commits its input offsets in
 * the same transaction. Run in a child that is SIGKILLed, then here after the restart: `out` must
 * hold every input exactly once.
 */
const processor = `
export async function runCopy(bus, report) {
  const tx = await bus.producer({ transactionalId: 'copy-0' });
  const c = bus.consumer({ groupId: 'copy' });
  await c.subscribe(['in']);
  await c.run({ eachBatch: async (b) => {
    const t = await tx.transaction();
    await t.send('out', b.messages.map((m) => ({ key: m.key, value: m.value })));
    await t.sendOffsets('copy', [{ topic: 'in', partition: b.partition, offset: String(Number(b.messages.at(-1).offset) + 1) }]);
    await t.commit();
    report?.(b.messages.length);
  } });
  return c;
}`;

const child = (dir: string) => `
import { MemoryBus } from ${JSON.stringify(busModule)};
${processor}
const bus = new MemoryBus({ dir: ${JSON.stringify(dir)}, journalMaxBytes: 64 * 1024 });
await bus.ensureTopics([{ topic: 'in', partitions: 3 }, { topic: 'out', partitions: 3 }]);
await runCopy(bus);
const p = await bus.producer();
for (let i = 0; ; i++) {
  await p.send('in', [{ key: 'dev' + (i % 17), value: Buffer.from(String(i)) }]);
  process.stdout.write('sent ' + i + '\\n');
  if (i % 50 === 0) await new Promise((r) => setImmediate(r));
}
`;

/** Reads a topic from its start up to its end offsets (retention may have dropped its head). */
async function readAll(bus: Bus, topic: string, group: string): Promise<InMessage[]> {
  const ends = new Map((await bus.endOffsets(topic)).map((e) => [e.partition, Number(e.offset)]));
  const got: InMessage[] = [];
  const c = bus.consumer({ groupId: group, fromBeginning: true });
  await c.subscribe([topic]);
  await c.run({ eachBatch: async (b) => void got.push(...b.messages) });
  const reached = () => [...ends].every(([p, end]) => end === 0 || got.some((m) => m.partition === p && Number(m.offset) === end - 1));
  await waitFor(`${topic} read to its end`, reached, 10_000, 20);
  await c.stop();
  return got;
}

test('memory (durable): a process killed mid-run resumes from its journal: nothing acknowledged is lost, transactions stay exactly-once', async (t) => {
  const tmp = tempDir('bus-durable');
  t.after(() => tmp.remove());
  const dir = join(tmp.path, 'bus');
  const proc = startProcess(process.execPath, ['--input-type=module', '-e', child(dir)]);
  const lastSent = () => {
    const m = proc.output().match(/sent (\d+)\n(?![\s\S]*sent \d+\n)/);
    return m ? Number(m[1]) : -1;
  };
  await waitFor('the child to send 3000 messages', () => {
    if (proc.child.exitCode !== null) throw new Error(`child exited: ${proc.output().slice(-2000)}`);
    return lastSent() >= 3000;
  }, 60_000, 20);
  await proc.kill('SIGKILL');
  const acknowledged = lastSent();
  assert.ok(statSync(join(dir, 'bus.journal')).size > 0);

  const bus = new MemoryBus({ dir });
  t.after(() => bus.close());
  const input = await readAll(bus, 'in', 'check-in');
  const values = new Set(input.map((m) => Number(m.value!.toString())));
  for (let i = 0; i <= acknowledged; i++) assert.ok(values.has(i), `acknowledged message ${i} survived the kill`);
  assert.equal(values.size, input.length, 'no message written twice');

  // The copy processor resumes from its committed offsets; its output must match the input exactly.
  const mod = await import(`data:text/javascript,${encodeURIComponent(processor)}`);
  const copy = await mod.runCopy(bus);
  await waitFor('out to catch up with in', async () => {
    const [a, b] = await Promise.all([bus.endOffsets('in'), bus.endOffsets('out')]);
    return a.reduce((s, e) => s + Number(e.offset), 0) === b.reduce((s, e) => s + Number(e.offset), 0);
  }, 20_000, 20);
  await copy.stop();
  const output = (await readAll(bus, 'out', 'check-out')).map((m) => Number(m.value!.toString()));
  assert.equal(output.length, input.length, 'every input copied once: no loss, no duplicate from the kill');
  assert.deepEqual([...output].sort((x, y) => x - y), [...values].sort((x, y) => x - y));
});

test('memory (durable): a torn journal tail is cut and counted; everything before it loads', async (t) => {
  const tmp = tempDir('bus-torn');
  t.after(() => tmp.remove());
  const first = new MemoryBus({ dir: tmp.path });
  await first.ensureTopics([{ topic: 'x', partitions: 1 }]);
  const p = await first.producer();
  await p.send('x', [{ key: 'a', value: Buffer.from('1') }, { key: 'a', value: Buffer.from('2') }]);
  const c = first.consumer({ groupId: 'g' });
  await c.commit([{ topic: 'x', partition: 0, offset: '1' }]);
  await first.close();
  // Half a frame, as a kill in the middle of a write leaves it.
  appendFileSync(join(tmp.path, 'bus.journal'), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 123, 34]));

  const second = new MemoryBus({ dir: tmp.path });
  t.after(() => second.close());
  assert.deepEqual(await second.endOffsets('x'), [{ topic: 'x', partition: 0, offset: '2' }]);
  assert.deepEqual(await second.committed('g', 'x'), [{ topic: 'x', partition: 0, offset: '1' }]);
  const p2 = await second.producer();
  await p2.send('x', [{ key: 'a', value: Buffer.from('3') }]);
  const got = await readAll(second, 'x', 'all');
  assert.deepEqual(got.map((m) => m.value!.toString()), ['1', '2', '3'], 'writes after the cut land after the good data');
});

test('memory (durable): the journal is rewritten down to what retention keeps, and reloads the same', async (t) => {
  const tmp = tempDir('bus-rewrite');
  t.after(() => tmp.remove());
  const bus = new MemoryBus({ dir: tmp.path, retainConsumed: 10, journalMaxBytes: 16 * 1024 });
  await bus.ensureTopics([{ topic: 'r', partitions: 1 }]);
  const c = bus.consumer({ groupId: 'g' });
  await c.subscribe(['r']);
  await c.run({ eachBatch: async (b) => c.commit([{ topic: 'r', partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]) });
  const p = await bus.producer();
  for (let i = 0; i < 5000; i++) await p.send('r', [{ key: 'k', value: Buffer.from(`value-${i}`) }]);
  await waitFor('all committed', async () => (await bus.committed('g', 'r'))[0]!.offset === '5000', 10_000, 10);
  await bus.close();
  const size = statSync(join(tmp.path, 'bus.journal')).size;
  assert.ok(size < 64 * 1024, `journal bounded (${size} bytes for 5000 messages)`);

  const again = new MemoryBus({ dir: tmp.path });
  t.after(() => again.close());
  assert.deepEqual(await again.endOffsets('r'), [{ topic: 'r', partition: 0, offset: '5000' }]);
  assert.deepEqual(await again.committed('g', 'r'), [{ topic: 'r', partition: 0, offset: '5000' }]);
  const tail = await readAll(again, 'r', 'tail');
  assert.ok(tail.length >= 10 && tail.at(-1)!.value!.toString() === 'value-4999', 'the retained tail is there');
});

test('memory (durable): the never-committing readers of earlier versions in a journal no longer hold retention; a group that has yet to commit still does', async (t) => {
  const tmp = tempDir('bus-legacy-readers');
  t.after(() => tmp.remove());
  const old = new MemoryBus({ dir: tmp.path });
  await old.ensureTopics([{ topic: 'r', partitions: 1 }, { topic: 'u', partitions: 1 }]);
  // as the live tail of an earlier build joined: a plain group reading from the end, never committing
  const tail = old.consumer({ groupId: 'noctua-live-123-456', fromBeginning: false });
  await tail.subscribe(['r']);
  await tail.run({ eachBatch: async () => {} });
  await tail.stop();
  // a sink that subscribed and stopped before its first commit
  const sink = old.consumer({ groupId: 'noctua-sink' });
  await sink.subscribe(['u']);
  await sink.run({ eachBatch: async () => { throw new Error('down'); } });
  await sink.stop();
  await old.close();

  const bus = new MemoryBus({ dir: tmp.path, retainConsumed: 10 });
  t.after(() => bus.close());
  const p = await bus.producer();
  for (const topic of ['r', 'u']) {
    const g = bus.consumer({ groupId: 'g' });
    await g.subscribe([topic]);
    let n = 0;
    await g.run({ eachBatch: async (b) => { n += b.messages.length; await g.commit([{ topic, partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]); } });
    await p.send(topic, Array.from({ length: 100 }, (_, i) => ({ key: 'k', value: Buffer.from(String(i)) })));
    await waitFor(`${topic} consumed`, () => n === 100);
    await g.stop();
  }
  assert.equal((await readAll(bus, 'r', 'after-r')).length, 10, 'the old tail holds nothing back');
  assert.equal((await readAll(bus, 'u', 'after-u')).length, 100, 'the sink that never committed still finds all it has to read');
});

test('memory (durable): a group without members that stopped committing is forgotten after groupRetentionMs, for good: it no longer pins its topics', async (t) => {
  const tmp = tempDir('bus-group-retention');
  t.after(() => tmp.remove());
  const opts = { dir: tmp.path, retainConsumed: 10, groupRetentionMs: 300 };
  const bus = new MemoryBus(opts);
  await bus.ensureTopics([{ topic: 'r', partitions: 1 }]);
  const p = await bus.producer();
  await p.send('r', Array.from({ length: 50 }, (_, i) => ({ key: 'k', value: Buffer.from(String(i)) })));
  // a receiver taken out of the configuration: it read 5 and will never come back
  const gone = bus.consumer({ groupId: 'gone' });
  await gone.subscribe(['r']);
  await gone.run({ eachBatch: async () => {} });
  await gone.commit([{ topic: 'r', partition: 0, offset: '5' }]);
  await gone.stop();
  const live = bus.consumer({ groupId: 'live' });
  await live.subscribe(['r']);
  await live.run({ eachBatch: async (b) => live.commit([{ topic: 'r', partition: 0, offset: String(Number(b.messages.at(-1)!.offset) + 1) }]) });
  await waitFor('live read all', async () => (await bus.committed('live', 'r'))[0]!.offset === '50');
  assert.equal((await readAll(bus, 'r', 'peek-1')).length, 50, 'within its retention, the idle group still holds what it has not read');
  await new Promise((r) => setTimeout(r, 400));
  await p.send('r', [{ key: 'k', value: Buffer.from('50') }]);
  await waitFor('live read the new one', async () => (await bus.committed('live', 'r'))[0]!.offset === '51');
  assert.deepEqual(await bus.committed('gone', 'r'), [{ topic: 'r', partition: 0, offset: '-1' }], 'forgotten, offsets and all');
  assert.equal((await readAll(bus, 'r', 'peek-2')).length, 10, 'the topic trimmed to what retention keeps');
  await live.stop();
  await p.close();
  await bus.close();
  const again = new MemoryBus({ ...opts, groupRetentionMs: 7 * 86_400_000 });
  t.after(() => again.close());
  assert.deepEqual(await again.committed('gone', 'r'), [{ topic: 'r', partition: 0, offset: '-1' }], 'still forgotten after a restart');
  assert.deepEqual(await again.committed('live', 'r'), [{ topic: 'r', partition: 0, offset: '51' }], 'the live group kept');
});
