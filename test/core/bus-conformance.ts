import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Bus, BusConsumer, ConsumerHandlers, ConsumerOptions, InMessage, TopicPartition } from '../../core/bus.js';
import { partitionFor } from '../../core/bus.js';
import { sleep, waitFor } from '../peers/util.js';

/**
 * One conformance suite for every Bus implementation: the MemoryBus (test/core/bus-memory.test.ts)
 * and the KafkaBus against a real broker (test/core/bus-kafka.peer.test.ts) must both pass it, so
 * code written against the in-process bus behaves the same on Kafka.
 *
 * Every test uses fresh topic and group names, so one broker serves the whole suite.
 */
export interface ConformanceOptions {
  /** Upper bound for anything to arrive or a rebalance to settle (a real broker needs seconds). */
  readonly settleMs?: number;
  /** How long an absent message is awaited before concluding it is invisible. */
  readonly quietMs?: number;
}

export function busConformance(name: string, makeBus: () => Promise<Bus>, opts: ConformanceOptions = {}): void {
  const settleMs = opts.settleMs ?? 10_000;
  const quietMs = opts.quietMs ?? 300;
  const uid = () => randomBytes(4).toString('hex');
  const topicName = (what: string) => `conf.${what}.${uid()}`;

  async function withBus(t: TestContext): Promise<Bus> {
    const bus = await makeBus();
    t.after(() => bus.close());
    return bus;
  }

  /** Runs a consumer that records everything it receives and every assignment change. */
  async function collect(bus: Bus, topics: string[], consumerOpts: ConsumerOptions, extra: Partial<ConsumerHandlers> = {}) {
    const received: InMessage[] = [];
    const assigned: TopicPartition[][] = [];
    const revoked: TopicPartition[][] = [];
    const consumer = bus.consumer(consumerOpts);
    await consumer.subscribe(topics);
    await consumer.run({
      eachBatch: async (batch, ctx) => {
        if (extra.eachBatch) await extra.eachBatch(batch, ctx);
        received.push(...batch.messages);
      },
      onAssigned: (p) => {
        assigned.push([...p]);
      },
      onRevoked: (p) => {
        revoked.push([...p]);
      },
    });
    return { consumer, received, assigned, revoked };
  }

  const values = (ms: readonly InMessage[]) => ms.map((m) => m.value?.toString() ?? null);
  const sortTp = (a: readonly TopicPartition[]) => [...a].sort((x, y) => x.topic.localeCompare(y.topic) || x.partition - y.partition);
  const waitAssigned = (c: BusConsumer, n: number, what: string) => waitFor(what, () => c.assignment().length === n, settleMs * 3);

  test(`${name}: same key goes to the same partition, the one murmur2 picks, in order`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('order');
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    const p = await bus.producer({ idempotent: true });
    const keys = Array.from({ length: 12 }, (_, i) => `device-${i}`);
    for (let round = 0; round < 10; round++) {
      await p.send(topic, keys.map((key) => ({ key, value: Buffer.from(`${key}#${round}`) })));
    }
    await p.close();
    const { consumer, received } = await collect(bus, [topic], { groupId: `g-${uid()}`, fromBeginning: true });
    await waitFor('all 120 messages', () => received.length >= 120, settleMs * 3);
    await consumer.stop();
    assert.equal(received.length, 120);
    for (const key of keys) {
      const mine = received.filter((m) => m.key === key);
      assert.equal(mine.length, 10, key);
      assert.deepEqual(new Set(mine.map((m) => m.partition)), new Set([partitionFor(key, 4)]), `${key} partition`);
      assert.deepEqual(values(mine), Array.from({ length: 10 }, (_, r) => `${key}#${r}`), `${key} order`);
      const offsets = mine.map((m) => BigInt(m.offset));
      assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), `${key} offsets increase`);
    }
  });

  test(`${name}: keys, null keys, null values, binary values, headers and timestamps round-trip`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('roundtrip');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const p = await bus.producer();
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    // an hour ago, to the ms: an event time Kafka keeps as the record timestamp (bus-kafka.ts: recordTimestamp)
    const dated = Date.now() - 3_600_000 + 123;
    await p.send(topic, [
      { key: null, value: Buffer.from('no key') },
      { key: 'tombstone', value: null },
      { key: 'bin', value: binary, headers: { 'content-type': 'application/x-noctua-batch', 'ü': 'ünïcode ✓' }, timestamp: dated },
      { key: '', value: Buffer.alloc(0) },
    ]);
    await p.close();
    const { consumer, received } = await collect(bus, [topic], { groupId: `g-${uid()}` });
    await waitFor('4 messages', () => received.length >= 4, settleMs * 3);
    await consumer.stop();
    const [a, b, c, d] = received;
    assert.equal(a!.key, null);
    assert.equal(a!.value!.toString(), 'no key');
    assert.deepEqual(a!.headers, {});
    assert.equal(b!.key, 'tombstone');
    assert.equal(b!.value, null);
    assert.equal(c!.key, 'bin');
    assert.ok(c!.value!.equals(binary));
    assert.deepEqual(c!.headers, { 'content-type': 'application/x-noctua-batch', 'ü': 'ünïcode ✓' });
    assert.equal(c!.timestamp, dated);
    assert.equal(typeof a!.timestamp, 'number');
    assert.ok(Math.abs(a!.timestamp - Date.now()) < 60_000, 'default timestamp is the send time');
    assert.equal(d!.key, '');
    assert.equal(d!.value!.length, 0);
    assert.deepEqual(received.map((m) => m.topic), [topic, topic, topic, topic]);
  });

  test(`${name}: endOffsets and committed report the log end and the group's commits`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('offsets');
    await bus.ensureTopics([{ topic, partitions: 2 }]);
    const group = `g-${uid()}`;
    assert.deepEqual(sortTp(await bus.endOffsets(topic)), [{ topic, partition: 0, offset: '0' }, { topic, partition: 1, offset: '0' }]);
    const p = await bus.producer();
    // Keys chosen by the partitioner so that partition 0 gets 3 and partition 1 gets 2.
    const k0 = [...Array(50).keys()].map((i) => `k${i}`).filter((k) => partitionFor(k, 2) === 0).slice(0, 3);
    const k1 = [...Array(50).keys()].map((i) => `k${i}`).filter((k) => partitionFor(k, 2) === 1).slice(0, 2);
    await p.send(topic, [...k0, ...k1].map((key) => ({ key, value: Buffer.from(key) })));
    await p.close();
    assert.deepEqual(sortTp(await bus.endOffsets(topic)), [{ topic, partition: 0, offset: '3' }, { topic, partition: 1, offset: '2' }]);
    assert.deepEqual(sortTp(await bus.committed(group, topic)), [{ topic, partition: 0, offset: '-1' }, { topic, partition: 1, offset: '-1' }]);
    const c = bus.consumer({ groupId: group });
    await c.commit([{ topic, partition: 0, offset: '2' }]);
    assert.deepEqual(sortTp(await bus.committed(group, topic)), [{ topic, partition: 0, offset: '2' }, { topic, partition: 1, offset: '-1' }]);
    await c.stop();
  });

  test(`${name}: a new member of the group resumes after the committed offset`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('resume');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const group = `g-${uid()}`;
    const p = await bus.producer();
    await p.send(topic, Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: Buffer.from(String(i)) })));
    const first = await collect(bus, [topic], { groupId: group, fromBeginning: true });
    await waitFor('first 10', () => first.received.length >= 10, settleMs * 3);
    // Commit after the 6th message only: the next member must start at offset of message 6.
    await first.consumer.commit([{ topic, partition: 0, offset: String(BigInt(first.received[5]!.offset) + 1n) }]);
    await first.consumer.stop();
    await p.send(topic, [{ key: 'k', value: Buffer.from('10') }]);
    await p.close();
    const second = await collect(bus, [topic], { groupId: group, fromBeginning: true });
    await waitFor('the resumed messages', () => second.received.length >= 5, settleMs * 3);
    await sleep(quietMs);
    await second.consumer.stop();
    assert.deepEqual(values(second.received), ['6', '7', '8', '9', '10']);
  });

  test(`${name}: fromBeginning=false starts a new group at the end of the log`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('latest');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const p = await bus.producer();
    await p.send(topic, [{ key: 'k', value: Buffer.from('old') }]);
    const c = await collect(bus, [topic], { groupId: `g-${uid()}`, fromBeginning: false });
    await waitAssigned(c.consumer, 1, 'assignment');
    // The broker may need a moment after assignment to resolve "latest"; send until one arrives.
    await waitFor('a new message', async () => {
      await p.send(topic, [{ key: 'k', value: Buffer.from('new') }]);
      await sleep(200);
      return c.received.length > 0;
    }, settleMs * 3, 0);
    await c.consumer.stop();
    await p.close();
    assert.ok(!values(c.received).includes('old'), 'the old message is not delivered');
  });

  test(`${name}: two members divide the partitions, and one takes all when the other leaves`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('group');
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    const group = `g-${uid()}`;
    const a = await collect(bus, [topic], { groupId: group });
    await waitAssigned(a.consumer, 4, 'member A owning 4 partitions');
    const b = await collect(bus, [topic], { groupId: group });
    await waitFor('2 + 2 partitions', () => a.consumer.assignment().length === 2 && b.consumer.assignment().length === 2, settleMs * 3);
    const owned = [...a.consumer.assignment(), ...b.consumer.assignment()].map((x) => x.partition).sort();
    assert.deepEqual(owned, [0, 1, 2, 3], 'disjoint, and together all partitions');
    assert.ok(a.revoked.flat().length >= 2, 'A was told what it lost');
    assert.ok(b.assigned.flat().length === 2, 'B was told what it got');

    // Every message lands at the member that owns its partition.
    const p = await bus.producer();
    const keys = Array.from({ length: 40 }, (_, i) => `dev${i}`);
    await p.send(topic, keys.map((key) => ({ key, value: Buffer.from(key) })));
    await waitFor('40 messages across A and B', () => a.received.length + b.received.length >= 40, settleMs * 3);
    const aParts = new Set(a.consumer.assignment().map((x) => x.partition));
    assert.ok(a.received.every((m) => aParts.has(m.partition)), 'A only got its partitions');
    assert.ok(b.received.every((m) => !aParts.has(m.partition)), 'B only got its partitions');
    assert.equal(a.received.length + b.received.length, 40);

    // Commit what was consumed, then B leaves: A gets everything back and resumes after the commits.
    for (const member of [a, b]) {
      const next = new Map<number, bigint>();
      for (const m of member.received) next.set(m.partition, BigInt(m.offset) + 1n);
      await member.consumer.commit([...next].map(([partition, o]) => ({ topic, partition, offset: String(o) })));
    }
    const before = a.received.length;
    await b.consumer.stop();
    await waitAssigned(a.consumer, 4, 'A owning all 4 again');
    assert.ok(a.assigned.flat().length >= 6, 'A was told about the partitions it regained');
    await p.send(topic, keys.map((key) => ({ key, value: Buffer.from(`${key}.2`) })));
    await p.close();
    await waitFor('40 more at A', () => a.received.length - before >= 40, settleMs * 3);
    await sleep(quietMs);
    assert.equal(a.received.length - before, 40, 'nothing replayed beyond the commits');
    await a.consumer.stop();
  });

  test(`${name}: linger: a batch waits for minBytes or maxWaitMs, so messages sent apart arrive together`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('linger');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const track = async (linger?: { minBytes: number; maxWaitMs: number }) => {
      const sizes: number[] = [];
      const c = await collect(bus, [topic], { groupId: `g-${uid()}`, ...(linger ? { linger } : {}) }, { eachBatch: async (b) => void sizes.push(b.messages.length) });
      await waitAssigned(c.consumer, 1, 'assigned');
      return { ...c, sizes };
    };
    const eager = await track();
    const lingering = await track({ minBytes: 1 << 20, maxWaitMs: 2500 });
    const p = await bus.producer();
    for (let i = 0; i < 10; i++) {
      await p.send(topic, [{ key: 'k', value: Buffer.from(`m${i}`) }]);
      await sleep(100);
    }
    await waitFor('all 10 at both', () => eager.received.length === 10 && lingering.received.length === 10, settleMs * 3);
    assert.ok(eager.sizes.length >= 6, `without linger the sends come one by one (${eager.sizes.join(',')})`);
    assert.ok(lingering.sizes.length <= 3, `with linger they come together (${lingering.sizes.join(',')})`);
    assert.deepEqual(values(lingering.received), values(eager.received));

    // minBytes reached: no waiting out maxWaitMs
    const topic2 = topicName('linger-bytes');
    await bus.ensureTopics([{ topic: topic2, partitions: 1 }]);
    const sizes: number[] = [];
    const c = await collect(bus, [topic2], { groupId: `g-${uid()}`, linger: { minBytes: 2000, maxWaitMs: 10_000 } }, { eachBatch: async (b) => void sizes.push(b.messages.length) });
    await waitAssigned(c.consumer, 1, 'assigned');
    await p.send(topic2, [{ key: 'k', value: Buffer.alloc(1200, 1) }]);
    await sleep(Math.max(quietMs, 1000));
    assert.equal(c.received.length, 0, 'one message of 1200 bytes waits for more');
    const sent = Date.now();
    await p.send(topic2, [{ key: 'k', value: Buffer.alloc(1200, 2) }]);
    await waitFor('both once 2000 bytes are there', () => c.received.length === 2, settleMs);
    // (a long maxWaitMs holds a Kafka consumer's stop as long: kafkajs waits for the fetch in flight)
    assert.ok(Date.now() - sent < 5_000, 'delivered at minBytes, not at maxWaitMs');
    assert.deepEqual(sizes, [2]);
    await p.close();
    for (const x of [eager, lingering, c]) await x.consumer.stop();
  });

  test(`${name}: lag is exported per group and partition while a member reads it, and dropped when it stops`, async (t) => {
    const { M } = await import('../../core/metrics.js');
    const bus = await withBus(t);
    const topic = topicName('lag');
    await bus.ensureTopics([{ topic, partitions: 2 }]);
    const p = await bus.producer();
    await p.send(topic, [{ key: null, value: Buffer.from('a'), partition: 0 }, { key: null, value: Buffer.from('b'), partition: 1 }]);
    await p.close();
    const groupId = `g-${uid()}`;
    const lags = async () => (await M.busLag.get()).values.filter((v) => v.labels.group === groupId).map((v) => `${v.labels.partition}=${v.value}`).sort();
    const c = await collect(bus, [topic], { groupId });
    await waitFor('both read', () => c.received.length === 2, settleMs * 3);
    await waitFor('lag of both partitions', async () => (await lags()).join() === '0=0,1=0', settleMs);
    await c.consumer.stop();
    assert.deepEqual(await lags(), [], 'a stopped member reports no lag for what it no longer reads');
  });

  test(`${name}: a batch whose handler throws is retried from the same offset, nothing lost`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('retry');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const p = await bus.producer();
    await p.send(topic, Array.from({ length: 5 }, (_, i) => ({ key: 'k', value: Buffer.from(String(i)) })));
    await p.close();
    const firstOffsets: string[] = [];
    let failures = 0;
    const c = await collect(bus, [topic], { groupId: `g-${uid()}` }, {
      eachBatch: async (batch) => {
        firstOffsets.push(batch.messages[0]!.offset);
        if (failures < 2) {
          failures++;
          throw new Error('transient failure of the handler');
        }
      },
    });
    await waitFor('5 messages after 2 failures', () => c.received.length >= 5, settleMs * 3);
    await c.consumer.stop();
    assert.equal(failures, 2);
    assert.deepEqual(firstOffsets.slice(0, 3), [firstOffsets[0], firstOffsets[0], firstOffsets[0]], 'retried from the same offset');
    assert.deepEqual(values(c.received), ['0', '1', '2', '3', '4']);
  });

  test(`${name}: transactions: abort hides output and keeps offsets, commit shows both at once`, async (t) => {
    const bus = await withBus(t);
    const input = topicName('txin');
    const output = topicName('txout');
    await bus.ensureTopics([{ topic: input, partitions: 1 }, { topic: output, partitions: 1 }]);
    const group = `g-${uid()}`;
    const plain = await bus.producer();
    const tx = await bus.producer({ transactionalId: `tx-${uid()}` });
    const reader = await collect(bus, [output], { groupId: `r-${uid()}`, readCommitted: true });

    const aborted = await tx.transaction();
    await aborted.send(output, [{ key: 'k', value: Buffer.from('aborted-1') }, { key: 'k', value: Buffer.from('aborted-2') }]);
    await aborted.sendOffsets(group, [{ topic: input, partition: 0, offset: '5' }]);
    await aborted.abort();
    await plain.send(output, [{ key: 'k', value: Buffer.from('marker-1') }]);
    await waitFor('marker-1', () => values(reader.received).includes('marker-1'), settleMs * 3);
    assert.deepEqual(values(reader.received), ['marker-1'], 'aborted output is never visible');
    assert.deepEqual(await bus.committed(group, input), [{ topic: input, partition: 0, offset: '-1' }], 'aborted offsets are not committed');

    const open = await tx.transaction();
    await open.send(output, [{ key: 'k', value: Buffer.from('committed-1') }, { key: 'k', value: Buffer.from('committed-2') }]);
    await open.sendOffsets(group, [{ topic: input, partition: 0, offset: '7' }]);
    await sleep(quietMs);
    assert.ok(!values(reader.received).includes('committed-1'), 'an open transaction is invisible');
    assert.deepEqual(await bus.committed(group, input), [{ topic: input, partition: 0, offset: '-1' }], 'offsets move only at commit');
    await open.commit();
    await waitFor('committed output', () => values(reader.received).includes('committed-2'), settleMs * 3);
    assert.deepEqual(values(reader.received), ['marker-1', 'committed-1', 'committed-2']);
    assert.deepEqual(await bus.committed(group, input), [{ topic: input, partition: 0, offset: '7' }]);

    await reader.consumer.stop();
    await tx.close();
    await plain.close();
  });

  test(`${name}: a newer producer with the same transactionalId fences the older one`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('fence');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const id = `tx-${uid()}`;
    const old = await bus.producer({ transactionalId: id });
    const stale = await old.transaction();
    await stale.send(topic, [{ key: 'k', value: Buffer.from('zombie') }]);
    const fresh = await bus.producer({ transactionalId: id });
    const live = await fresh.transaction();
    await live.send(topic, [{ key: 'k', value: Buffer.from('live') }]);
    await live.commit();
    await assert.rejects(async () => {
      await stale.send(topic, [{ key: 'k', value: Buffer.from('zombie-2') }]);
      await stale.commit();
    }, 'the fenced producer cannot commit');
    const reader = await collect(bus, [topic], { groupId: `r-${uid()}`, readCommitted: true });
    await waitFor('the live message', () => reader.received.length >= 1, settleMs * 3);
    await sleep(quietMs);
    await reader.consumer.stop();
    assert.deepEqual(values(reader.received), ['live']);
    await old.close().catch(() => {});
    await fresh.close();
  });

  test(`${name}: consuming or producing an unknown topic is a clear error naming it`, async (t) => {
    const bus = await withBus(t);
    const missing = topicName('missing');
    const c = bus.consumer({ groupId: `g-${uid()}` });
    await assert.rejects(async () => {
      await c.subscribe([missing]);
      await c.run({ eachBatch: async () => {} });
    }, (err: Error) => err.message.includes(missing) && /unknown topic/.test(err.message));
    await c.stop();
    const p = await bus.producer();
    await assert.rejects(p.send(missing, [{ key: 'k', value: Buffer.from('v') }]), (err: Error) => err.message.includes(missing) && /unknown topic/.test(err.message));
    await p.close();
  });

  test(`${name}: malformed messages are rejected with an error naming the topic, nothing half-written`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('bad');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const p = await bus.producer();
    await assert.rejects(
      p.send(topic, [{ key: 'ok', value: Buffer.from('good') }, { key: 'bad', value: 'not a buffer' as unknown as Buffer }]),
      (err: Error) => err.message.includes(topic) && /value/.test(err.message),
    );
    await p.send(topic, [{ key: 'ok', value: Buffer.from('after') }]);
    await p.close();
    assert.deepEqual(await bus.endOffsets(topic), [{ topic, partition: 0, offset: '1' }], 'the batch with a bad message wrote nothing');
  });
  test(`${name}: a message with an explicit partition lands there whatever its key; a missing partition is a clear error`, async (t) => {
    const bus = await withBus(t);
    const topic = topicName('part');
    await bus.ensureTopics([{ topic, partitions: 3 }]);
    const key = 'device-7';
    const home = partitionFor(key, 3);
    const p = await bus.producer();
    // One copy per partition (a broadcast), plus one keyed message that goes where murmur2 says.
    await p.send(topic, [0, 1, 2].map((partition) => ({ key, value: Buffer.from(`to-${partition}`), partition })));
    await p.send(topic, [{ key, value: Buffer.from('keyed') }]);
    await assert.rejects(p.send(topic, [{ key, value: Buffer.from('nowhere'), partition: 3 }]), (err: Error) => err.message.includes(topic) && /partition 3/.test(err.message));
    await assert.rejects(p.send(topic, [{ key, value: Buffer.from('negative'), partition: -1 }]), (err: Error) => err.message.includes(topic) && /partition/.test(err.message));
    await p.close();
    const { consumer, received } = await collect(bus, [topic], { groupId: `g-${uid()}`, fromBeginning: true });
    await waitFor('4 messages', () => received.length === 4, settleMs);
    await sleep(quietMs);
    await consumer.stop();
    for (const partition of [0, 1, 2]) {
      const want = partition === home ? [`to-${partition}`, 'keyed'] : [`to-${partition}`];
      assert.deepEqual(values(received.filter((m) => m.partition === partition)), want, `partition ${partition}`);
    }
  });
}
