/**
 * The Bus: keyed topics with partitions, consumer groups, committed offsets and transactional
 * produce-and-commit. Kafka semantics, so that the in-process log (embedded default) and Kafka
 * (distributed) are interchangeable; one conformance suite (test/core/bus-conformance.ts) runs
 * against both.
 *
 * Offsets are decimal strings, as in Kafka clients; a committed offset is the NEXT offset to read.
 */

/** Where a bus error happened; every field that is known is filled, so logs and messages can name it. */
export interface BusErrorContext {
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
  readonly group?: string;
  readonly transactionalId?: string;
}

/** An error of the bus (either implementation), carrying where it happened. */
export class BusError extends Error {
  constructor(message: string, readonly context: BusErrorContext = {}, options?: { cause?: unknown }) {
    super(`${message}${describeContext(context)}`, options);
    this.name = 'BusError';
  }
}

function describeContext(c: BusErrorContext): string {
  const parts = Object.entries(c).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  /** Compacted topics keep the last value per key (state changelogs, targets). */
  readonly compacted?: boolean;
  readonly retentionMs?: number;
}

/** A message's payload bytes (key and value): what byte bounds on messages count, on the bus and before it. */
export function messageBytes(m: { readonly key: string | null; readonly value: Buffer | null }): number {
  return (m.value?.length ?? 0) + (m.key?.length ?? 0);
}

export interface OutMessage {
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** Epoch ms; defaults to the time of send. */
  readonly timestamp?: number;
  /**
   * An explicit partition instead of the key's (murmur2) one: for messages every partition must
   * see, such as operator commands broadcast to all partitions of a processor's input topic.
   */
  readonly partition?: number;
}

export interface InMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to consume. */
  readonly offset: string;
}

export interface ConsumedBatch extends TopicPartition {
  readonly messages: readonly InMessage[];
  /** Offset of the next message the broker will write (end of log); lag = highWatermark - last offset - 1. */
  readonly highWatermark: string;
}

export interface BatchContext {
  /** Keep group membership alive during long work. */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the partition was revoked: stop work early. */
  isRunning(): boolean;
}

export interface ConsumerHandlers {
  /**
   * Called with messages of one partition, in offset order; offsets may have gaps (Kafka's
   * transaction markers, compaction). Throwing retries the same batch after a backoff (counted in
   * noctua_bus_batch_retries_total) until it succeeds or the partition is revoked.
   */
  eachBatch(batch: ConsumedBatch, ctx: BatchContext): Promise<void>;
  /** Partitions newly assigned to this member (after a rebalance). */
  onAssigned?(partitions: readonly TopicPartition[]): Promise<void> | void;
  /**
   * Partitions taken away: flush or drop uncommitted work for them. MemoryBus calls it after the
   * partition's in-flight batch ended and before the next owner starts. KafkaBus (kafkajs, eager
   * protocol, no revoke callback) calls it after the rejoin, when the next owner may already be
   * reading: correctness must come from commits/transactions (fencing), never from this hook.
   * Also called with every owned partition when the consumer stops.
   */
  onRevoked?(partitions: readonly TopicPartition[]): Promise<void> | void;
}

export interface ConsumerOptions {
  readonly groupId: string;
  /** Where a group with no committed offset starts: earliest (default) or latest. */
  readonly fromBeginning?: boolean;
  /** Upper bound of bytes fetched per partition per batch. */
  readonly maxBytesPerPartition?: number;
  /** For transactional pipelines: only read committed messages (default true). */
  readonly readCommitted?: boolean;
  /**
   * Kafka's fetch.min.bytes with fetch.max.wait.ms: a partition's batch is held back until it holds
   * minBytes or its oldest message waited maxWaitMs. For consumers that pay a fixed cost per batch
   * (the processors' transaction with a state snapshot): fewer, larger batches, at most maxWaitMs
   * later. Unset, a batch goes as soon as there is a message.
   */
  readonly linger?: { readonly minBytes: number; readonly maxWaitMs: number };
  /**
   * A reader that never commits (a live tail, a state restore; what Kafka calls a consumer without a
   * group): it holds back neither retention nor compaction of what it reads, and nothing remembers it
   * once it stops. commit() is an error.
   */
  readonly ephemeral?: boolean;
}

export interface BusConsumer {
  subscribe(topics: readonly string[]): Promise<void>;
  /** Starts consuming; resolves once running (not when stopped). */
  run(handlers: ConsumerHandlers): Promise<void>;
  /** Commits offsets for this group (outside a transaction). */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  /** The partitions this member currently owns. */
  assignment(): readonly TopicPartition[];
  stop(): Promise<void>;
}

export interface BusTransaction {
  send(topic: string, messages: readonly OutMessage[]): Promise<void>;
  /** Commits consumer offsets atomically with the messages sent in this transaction. */
  sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface BusProducer {
  /** Resolves once the messages are durably accepted (acks=all on Kafka). */
  send(topic: string, messages: readonly OutMessage[]): Promise<void>;
  /** Only on producers created with a transactionalId. */
  transaction(): Promise<BusTransaction>;
  close(): Promise<void>;
}

export interface ProducerOptions {
  /** Enables transactions; one id per processor instance and input partition set. */
  readonly transactionalId?: string;
  readonly idempotent?: boolean;
}

export interface Bus {
  readonly kind: 'memory' | 'kafka';
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  producer(opts?: ProducerOptions): Promise<BusProducer>;
  consumer(opts: ConsumerOptions): BusConsumer;
  /** Committed offsets of a group (for lag metrics and tests). */
  committed(groupId: string, topic: string): Promise<TopicPartitionOffset[]>;
  /** End offsets (high watermarks) of a topic. */
  endOffsets(topic: string): Promise<TopicPartitionOffset[]>;
  close(): Promise<void>;
}

/** Kafka's default partitioner picks murmur2(key) % partitions; both buses use it, so keys land alike. */
export function murmur2(key: Buffer): number {
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  const length = key.length;
  let h = seed ^ length;
  const length4 = Math.floor(length / 4);
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (key[i4]! & 0xff) + ((key[i4 + 1]! & 0xff) << 8) + ((key[i4 + 2]! & 0xff) << 16) + ((key[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  switch (length % 4) {
    case 3:
      h ^= (key[(length & ~3) + 2]! & 0xff) << 16;
    // falls through
    case 2:
      h ^= (key[(length & ~3) + 1]! & 0xff) << 8;
    // falls through
    case 1:
      h ^= key[length & ~3]! & 0xff;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

export function partitionFor(key: string | null, partitions: number, roundRobin = 0): number {
  if (key === null) return roundRobin % partitions;
  return (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions;
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Rejects a topic spec Kafka would reject, with a message naming the topic. */
export function checkTopicSpec(spec: TopicSpec): void {
  if (typeof spec?.topic !== 'string' || !TOPIC_NAME.test(spec.topic)) {
    throw new BusError(`invalid topic name ${JSON.stringify(spec?.topic)} (expected 1-249 of [a-zA-Z0-9._-])`);
  }
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
    throw new BusError(`invalid partition count ${JSON.stringify(spec.partitions)} (expected an integer >= 1)`, { topic: spec.topic });
  }
}

/**
 * Rejects malformed outgoing messages before anything is written, so a bad message fails its own
 * send with a clear error instead of poisoning the log (both buses call it).
 */
export function checkMessages(topic: string, messages: readonly OutMessage[]): void {
  if (!Array.isArray(messages)) throw new BusError('messages must be an array', { topic });
  messages.forEach((m, i) => {
    const where = `message ${i}`;
    if (m === null || typeof m !== 'object') throw new BusError(`${where} is not an object`, { topic });
    if (m.key !== null && typeof m.key !== 'string') throw new BusError(`${where}: key must be a string or null`, { topic });
    if (m.value !== null && !Buffer.isBuffer(m.value)) throw new BusError(`${where}: value must be a Buffer or null`, { topic });
    if (m.headers !== undefined) {
      if (m.headers === null || typeof m.headers !== 'object') throw new BusError(`${where}: headers must be an object of strings`, { topic });
      for (const [k, v] of Object.entries(m.headers)) {
        if (typeof v !== 'string') throw new BusError(`${where}: header ${JSON.stringify(k)} must be a string`, { topic });
      }
    }
    if (m.timestamp !== undefined && !(Number.isFinite(m.timestamp) && m.timestamp >= 0)) {
      throw new BusError(`${where}: timestamp must be epoch milliseconds`, { topic });
    }
    if (m.partition !== undefined && !(Number.isInteger(m.partition) && m.partition >= 0)) {
      throw new BusError(`${where}: partition must be an integer >= 0`, { topic, partition: m.partition });
    }
  });
}
