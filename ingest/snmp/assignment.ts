import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Bus, BusConsumer, ConsumedBatch, TopicPartition } from '../../core/bus.js';
import { TOPICS } from '../../core/types.js';
import { M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import type { Target } from './config.js';
import { V3User } from './config.js';
import type { SnmpPoller } from './poller.js';

/**
 * Scale-out: the targets topic (compacted, key = target id, value = resolved target JSON, null =
 * removed) is read by every `noctua poll` process in ONE consumer group. Each process polls exactly the
 * targets of the partitions it is assigned; a rebalance (a process joins, dies or leaves) revokes
 * partitions from one member before assigning them to another, so no target is polled twice and
 * none is forgotten.
 *
 * Offsets are never committed for this group: whoever gains a partition reads it from its start (a
 * compacted topic keeps one message per target), which is what makes takeover complete.
 */

export const POLL_GROUP = 'noctua-poll';

/** The wire form of a target on the targets topic. It carries credentials: restrict the topic (ACLs). */
const TargetWire = Type.Object({
  id: Type.String({ minLength: 1 }),
  device: Type.String({ minLength: 1 }),
  address: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  version: Type.Union([Type.Literal('v1'), Type.Literal('v2c'), Type.Literal('v3')]),
  community: Type.Optional(Type.String()),
  user: Type.Optional(V3User),
  intervalMs: Type.Integer({ minimum: 1000 }),
  timeoutMs: Type.Integer({ minimum: 10 }),
  retries: Type.Integer({ minimum: 0 }),
  maxRepetitions: Type.Integer({ minimum: 1 }),
  labels: Type.Record(Type.String(), Type.String()),
});

export async function ensureTargetsTopic(bus: Bus, partitions: number): Promise<void> {
  await bus.ensureTopics([{ topic: TOPICS.targets, partitions, compacted: true }]);
}

/** Publishes targets (upserts) and removals (tombstones) to the targets topic. */
export async function publishTargets(bus: Bus, targets: readonly Target[], removedIds: readonly string[] = []): Promise<void> {
  const producer = await bus.producer();
  try {
    await producer.send(TOPICS.targets, [
      ...targets.map((t) => ({ key: t.id, value: Buffer.from(JSON.stringify(t)) })),
      ...removedIds.map((id) => ({ key: id, value: null })),
    ]);
  } finally {
    await producer.close();
  }
}

export class SharedTargets {
  private consumer: BusConsumer | undefined;
  /** partition -> target id -> target, for the partitions this member owns. */
  private readonly owned = new Map<number, Map<string, Target>>();

  constructor(
    private readonly bus: Bus,
    private readonly poller: SnmpPoller,
    private readonly opts: { groupId?: string; log?: Logger } = {},
  ) {}

  async start(): Promise<void> {
    const c = this.bus.consumer({ groupId: this.opts.groupId ?? POLL_GROUP, fromBeginning: true });
    this.consumer = c;
    await c.subscribe([TOPICS.targets]);
    await c.run({
      eachBatch: async (batch) => this.apply(batch),
      onRevoked: (parts) => this.revoke(parts),
      onAssigned: (parts) => this.opts.log?.info({ partitions: parts.map((p) => p.partition) }, 'snmp targets partitions assigned'),
    });
  }

  /** Leaves the group: the other members take this member's partitions. */
  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  /** Target ids this member currently owns. */
  ids(): string[] {
    return [...this.owned.values()].flatMap((m) => [...m.keys()]);
  }

  private apply(batch: ConsumedBatch): void {
    let part = this.owned.get(batch.partition);
    if (!part) this.owned.set(batch.partition, (part = new Map()));
    for (const m of batch.messages) {
      const id = m.key;
      if (id === null) {
        M.rejected.inc({ topic: TOPICS.targets, reason: 'no_key' });
        continue;
      }
      if (m.value === null) {
        part.delete(id);
        this.poller.removeTarget(id);
        continue;
      }
      let t: unknown;
      try {
        t = JSON.parse(m.value.toString('utf8'));
      } catch {
        t = undefined;
      }
      if (!Value.Check(TargetWire, t) || t.id !== id) {
        M.rejected.inc({ topic: TOPICS.targets, reason: 'invalid_target' });
        // The message may hold credentials: log where it is, never what it holds.
        this.opts.log?.warn({ topic: TOPICS.targets, partition: batch.partition, offset: m.offset, key: id }, 'invalid target on the targets topic skipped');
        continue;
      }
      part.set(id, t as Target);
      this.poller.setTarget(t as Target);
    }
  }

  private revoke(parts: readonly TopicPartition[]): void {
    for (const { partition } of parts) {
      const m = this.owned.get(partition);
      if (!m) continue;
      for (const id of m.keys()) this.poller.removeTarget(id);
      this.owned.delete(partition);
    }
  }
}
