import type { TSchema, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Bus, BusConsumer, ConsumedBatch, TopicPartition } from '../core/bus.js';
import { M } from '../core/metrics.js';
import type { Logger } from '../core/log.js';

/**
 * Scale-out of a poller's targets through Kafka: a compacted topic (key = target id, value = the
 * target as JSON, null = removed) read by every poll process in ONE consumer group. Each process polls
 * exactly the targets of the partitions it is assigned; a rebalance (a process joins, dies or leaves)
 * revokes partitions from one member before assigning them to another, so no target is polled twice
 * and none is forgotten.
 *
 * Offsets are never committed for such a group: whoever gains a partition reads it from its start (a
 * compacted topic keeps one message per target), which is what makes takeover complete.
 */

export interface SharedTargetsOptions<S extends TSchema> {
  readonly topic: string;
  readonly groupId: string;
  /** The wire form; a message that does not match it is counted and skipped. */
  readonly wire: S;
  /** Poll this target from now on (a new one, or a change). */
  readonly set: (t: Static<S>) => void;
  readonly remove: (id: string) => void;
  /** For logs: 'snmp', 'ssh'. */
  readonly what: string;
  readonly log?: Logger;
}

export async function ensureTargetTopic(bus: Bus, topic: string, partitions: number): Promise<void> {
  await bus.ensureTopics([{ topic, partitions, compacted: true }]);
}

/** Publishes targets (upserts) and removals (tombstones) to a targets topic. */
export async function publishTargetList(bus: Bus, topic: string, targets: readonly { id: string }[], removedIds: readonly string[] = []): Promise<void> {
  const producer = await bus.producer();
  try {
    await producer.send(topic, [
      ...targets.map((t) => ({ key: t.id, value: Buffer.from(JSON.stringify(t)) })),
      ...removedIds.map((id) => ({ key: id, value: null })),
    ]);
  } finally {
    await producer.close();
  }
}

export class SharedTargets<S extends TSchema & { static: { id: string } }> {
  private consumer: BusConsumer | undefined;
  /** partition -> target id, for the partitions this member owns. */
  private readonly owned = new Map<number, Set<string>>();

  constructor(private readonly bus: Bus, private readonly o: SharedTargetsOptions<S>) {}

  async start(): Promise<void> {
    const c = this.bus.consumer({ groupId: this.o.groupId, fromBeginning: true });
    this.consumer = c;
    await c.subscribe([this.o.topic]);
    await c.run({
      eachBatch: async (batch) => this.apply(batch),
      onRevoked: (parts) => this.revoke(parts),
      onAssigned: (parts) => this.o.log?.info({ topic: this.o.topic, partitions: parts.map((p) => p.partition) }, `${this.o.what} targets partitions assigned`),
    });
  }

  /** Leaves the group: the other members take this member's partitions. */
  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  /** Target ids this member currently owns. */
  ids(): string[] {
    return [...this.owned.values()].flatMap((s) => [...s]);
  }

  private apply(batch: ConsumedBatch): void {
    let part = this.owned.get(batch.partition);
    if (!part) this.owned.set(batch.partition, (part = new Set()));
    for (const m of batch.messages) {
      const id = m.key;
      if (id === null) {
        M.rejected.inc({ topic: this.o.topic, reason: 'no_key' });
        continue;
      }
      if (m.value === null) {
        part.delete(id);
        this.o.remove(id);
        continue;
      }
      let t: unknown;
      try {
        t = JSON.parse(m.value.toString('utf8'));
      } catch {
        t = undefined;
      }
      if (!Value.Check(this.o.wire, t) || (t as { id: string }).id !== id) {
        M.rejected.inc({ topic: this.o.topic, reason: 'invalid_target' });
        // The message may hold credentials: log where it is, never what it holds.
        this.o.log?.warn({ topic: this.o.topic, partition: batch.partition, offset: m.offset, key: id }, 'invalid target on the targets topic skipped');
        continue;
      }
      part.add(id);
      this.o.set(t);
    }
  }

  private revoke(parts: readonly TopicPartition[]): void {
    for (const { partition } of parts) {
      const ids = this.owned.get(partition);
      if (!ids) continue;
      for (const id of ids) this.o.remove(id);
      this.owned.delete(partition);
    }
  }
}

/** What every polling source (SNMP, SSH, GNS3) is started with, besides its own section. */
export interface PollSourceOptions {
  readonly bus: Bus;
  /** 'local' (default): this process polls every configured target; 'shared': they are published to the kind's targets topic and this process polls those of its partitions in the consumer group. */
  readonly mode?: 'local' | 'shared';
  /** shared mode: partitions of the targets topic when it is created. */
  readonly partitions?: number;
  /** shared mode: the consumer group (default: the kind's). */
  readonly groupId?: string;
  readonly log?: Logger;
  /** Where the outbox spools what the bus does not take (spool.ts); absent: memory only. */
  readonly dataDir?: string;
}

/**
 * A source's targets by mode: 'local' sets every configured one here; 'shared' publishes them to the
 * topic and polls those of this process's partitions. Returns the group membership to stop (shared).
 */
export async function assignTargets<S extends TSchema & { static: { id: string } }>(
  src: PollSourceOptions,
  configured: readonly Static<S>[],
  o: Omit<SharedTargetsOptions<S>, 'log'>,
): Promise<SharedTargets<S> | undefined> {
  if (src.mode !== 'shared') {
    for (const t of configured) o.set(t);
    return undefined;
  }
  await ensureTargetTopic(src.bus, o.topic, src.partitions ?? 12);
  if (configured.length > 0) await publishTargetList(src.bus, o.topic, configured);
  const shared = new SharedTargets(src.bus, { ...o, groupId: src.groupId ?? o.groupId, ...(src.log ? { log: src.log } : {}) });
  await shared.start();
  return shared;
}
