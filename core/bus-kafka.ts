import kafkajs from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, Kafka as KafkaClient, LogEntry, Producer, RetryOptions, Transaction } from 'kafkajs';
import type {
  Bus,
  BusConsumer,
  BusProducer,
  BusTransaction,
  ConsumerHandlers,
  ConsumerOptions,
  InMessage,
  OutMessage,
  ProducerOptions,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './bus.js';
import { BusError, checkMessages, checkTopicSpec } from './bus.js';
import { createLogger, type Logger } from './log.js';
import { M, counter } from './metrics.js';

const { Kafka, logLevel, Partitioners } = kafkajs;

/**
 * The Bus on a real Kafka cluster through kafkajs. What it adds over plain kafkajs:
 * - offsets are committed explicitly (autoCommit off) or inside transactions;
 * - eachBatch failures are retried in place from the same offset after a backoff (kafkajs would
 *   crash and restart the consumer, replaying from the last commit);
 * - onAssigned/onRevoked from the assignment diff of each GROUP_JOIN (kafkajs has no revoke
 *   callback, and its eager protocol means a revocation is reported after the rejoin, so a
 *   partition may already be fetched by its new owner: correctness must come from commits and
 *   transactions, not from onRevoked);
 * - retries sized so a broker restart only delays producers and consumers.
 */

export interface KafkaBusOptions {
  readonly brokers: readonly string[];
  readonly clientId?: string;
  readonly replicationFactor?: number;
  /** kafkajs retry for requests; the default rides out a broker restart (about a minute). */
  readonly retry?: RetryOptions;
  /** Group liveness: how soon a rebalance is noticed and a dead member evicted. */
  readonly heartbeatIntervalMs?: number;
  readonly sessionTimeoutMs?: number;
  /** Long-poll wait of an idle fetch; also bounds how late an idle member notices a rebalance. */
  readonly maxWaitTimeMs?: number;
  /** Backoff before a failed eachBatch is retried: doubles from min to max. */
  readonly batchRetryMinMs?: number;
  readonly batchRetryMaxMs?: number;
  /** Partitions processed concurrently per consumer (order within a partition always holds). */
  readonly partitionsConsumedConcurrently?: number;
  /**
   * Record timestamps are event times (as in Kafka Streams), but Kafka acts on them: retention
   * deletes a segment whose newest record is older than retention.ms (7 days by default), and
   * Kafka 4 refuses a record more than an hour ahead of the broker. A record dated further back than
   * this, or more than `maxRecordAheadMs` ahead of the sender's clock, is sent with the send time
   * instead (the event time travels in the payload either way) and counted. Without it, a replay of
   * old data lost its output to retention before the sink read it, and a device clock an hour fast
   * made its batches fail. Default 4 days (about half the default retention) and 10 minutes.
   */
  readonly maxRecordAgeMs?: number;
  readonly maxRecordAheadMs?: number;
  readonly logger?: Logger;
}

const restamped = counter('noctua_bus_restamped_total', 'Records sent with the send time because their event time was too old for retention or ahead of the clock', ['topic', 'why']);
const batchRetries = counter('noctua_bus_batch_retries_total', 'eachBatch failures retried after a backoff', ['bus', 'group', 'topic']);
const rebalances = counter('noctua_bus_rebalances_total', 'Consumer group rebalances', ['bus', 'group']);
// A wait, not an error: every fresh start meets it, and an alert on noctua_errors_total must not fire for it.
const settlingWaits = counter('noctua_bus_topic_settling_waits_total', 'Waits for a just-created topic to appear in the broker\'s metadata');

let defaultLog: Logger | null = null;
const logger = () => (defaultLog ??= createLogger(undefined, 'bus-kafka'));

/** kafkajs log lines into pino; kafkajs logs retriable protocol errors at ERROR, so they go out as warn. */
/** The same kafkajs warning (say, "Failed to connect to seed broker" through an outage) is written once per this. */
export const KAFKA_WARN_REPEAT_MS = 30_000;

export function logCreator(log: Logger, repeatMs = KAFKA_WARN_REPEAT_MS, now: () => number = Date.now) {
  // A broker outage makes every client retry about once a second; the operator needs to read that the
  // bus is down and for how long, not a thousand identical lines burying everything else.
  const seen = new Map<string, { at: number; suppressed: number }>();
  const warn = (line: Record<string, unknown>, message: string) => {
    const key = `${String(line.namespace)}\u0000${message}`;
    const t = now();
    const last = seen.get(key);
    if (last && t - last.at < repeatMs) {
      last.suppressed++;
      log.debug(line, message);
      return;
    }
    if (seen.size >= 1000) seen.clear();
    seen.set(key, { at: t, suppressed: 0 });
    log.warn(last?.suppressed ? { ...line, repeated: last.suppressed, repeatedSinceMs: t - last.at } : line, message);
  };
  return () => ({ namespace, level, log: entry }: LogEntry) => {
    const { message, timestamp: _ts, logger: _l, ...extra } = entry;
    const line = { component: 'kafkajs', namespace, ...extra };
    // Per-request error lines precede a retry (rebalances, coordinator moves) and the bounded
    // retries of the idempotent producer are deliberate; real failures surface as thrown errors.
    if (namespace === 'Connection' || message.startsWith('Limiting retries')) log.debug(line, message);
    else if (level === logLevel.ERROR || level === logLevel.WARN) warn(line, message);
    else if (level === logLevel.INFO) log.info(line, message);
    else log.debug(line, message);
  };
}

export const DEFAULT_MAX_RECORD_AGE_MS = 4 * 86_400_000;
export const DEFAULT_MAX_RECORD_AHEAD_MS = 10 * 60_000;

/** The record timestamp Kafka gets for an event time (see KafkaBusOptions.maxRecordAgeMs): the event time, or the send time when Kafka would delete or refuse it. */
export function recordTimestamp(ts: number | undefined, now: number, maxAgeMs = DEFAULT_MAX_RECORD_AGE_MS, maxAheadMs = DEFAULT_MAX_RECORD_AHEAD_MS): { ts: number; why: 'old' | 'ahead' | null } {
  if (ts === undefined) return { ts: now, why: null };
  if (ts < now - maxAgeMs) return { ts: now, why: 'old' };
  if (ts > now + maxAheadMs) return { ts: now, why: 'ahead' };
  return { ts, why: null };
}

function toKafkaMessages(topic: string, messages: readonly OutMessage[], opts: KafkaBusOptions) {
  const now = Date.now();
  return messages.map((m) => {
    const t = recordTimestamp(m.timestamp, now, opts.maxRecordAgeMs, opts.maxRecordAheadMs);
    if (t.why) restamped.inc({ topic, why: t.why });
    return {
      key: m.key,
      value: m.value,
      headers: m.headers ? { ...m.headers } : undefined,
      timestamp: String(t.ts),
      partition: m.partition,
    };
  });
}

function groupByTopic(offsets: readonly TopicPartitionOffset[]): Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> {
  const by = new Map<string, Array<{ partition: number; offset: string }>>();
  for (const o of offsets) {
    if (!/^\d+$/.test(String(o.offset))) throw new BusError(`invalid offset to commit: ${JSON.stringify(o.offset)}`, { topic: o.topic, partition: o.partition });
    (by.get(o.topic) ?? by.set(o.topic, []).get(o.topic)!).push({ partition: o.partition, offset: String(o.offset) });
  }
  return [...by].map(([topic, partitions]) => ({ topic, partitions }));
}

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly kafka: KafkaClient;
  readonly log: Logger;
  private adminClient: Promise<Admin> | null = null;
  private readonly consumers = new Set<KafkaConsumer>();
  private readonly producers = new Set<KafkaProducer>();
  private closed = false;

  constructor(readonly opts: KafkaBusOptions) {
    if (!opts.brokers?.length) throw new BusError('KafkaBus needs at least one broker (host:port)');
    this.log = opts.logger ?? logger();
    this.kafka = new Kafka({
      clientId: opts.clientId ?? 'noctua',
      brokers: [...opts.brokers],
      logLevel: logLevel.WARN,
      logCreator: logCreator(this.log),
      connectionTimeout: 3000,
      retry: opts.retry ?? { initialRetryTime: 300, maxRetryTime: 5000, retries: 15 },
    });
  }

  private admin(): Promise<Admin> {
    this.assertOpen();
    this.adminClient ??= (async () => {
      const a = this.kafka.admin();
      await a.connect();
      return a;
    })().catch((err) => {
      this.adminClient = null;
      M.errors.inc({ component: 'bus', kind: 'admin_connect' });
      throw new BusError(`cannot reach Kafka at ${this.opts.brokers.join(',')}: ${(err as Error).message}`, {}, { cause: err });
    });
    return this.adminClient;
  }

  /** Topics seen to exist: a send checks a new topic once instead of letting kafkajs retry for a minute. */
  private readonly knownTopics = new Set<string>();

  async assertTopicsExist(topics: readonly string[], ctx: { group?: string } = {}): Promise<void> {
    if (topics.every((t) => this.knownTopics.has(t))) return;
    for (const t of await (await this.admin()).listTopics()) this.knownTopics.add(t);
    const unknown = topics.filter((t) => !this.knownTopics.has(t));
    if (unknown.length > 0) throw new BusError(`unknown topic ${unknown.join(', ')} (create it with ensureTopics first)`, { topic: unknown[0], ...ctx });
  }

  /** Partition counts seen per topic: a message naming a partition is checked against it before sending. */
  private readonly partitionCounts = new Map<string, number>();

  /** Explicit partitions must exist: kafkajs would otherwise retry a produce to a missing partition for a minute. */
  async assertPartitionsExist(topic: string, messages: readonly OutMessage[]): Promise<void> {
    let max = -1;
    for (const m of messages) if (m.partition !== undefined && m.partition > max) max = m.partition;
    if (max < 0 || max < (this.partitionCounts.get(topic) ?? 0)) return;
    const meta = await (await this.admin()).fetchTopicMetadata({ topics: [topic] });
    const n = meta.topics[0]?.partitions.length ?? 0;
    this.partitionCounts.set(topic, n);
    if (max >= n) throw new BusError(`no partition ${max}: the topic has ${n}`, { topic, partition: max });
  }

  /** Creates missing topics and grows partitions (retried while a new topic settles, see whileTopicsSettle). */
  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    try {
      await whileTopicsSettle(() => this.ensureTopicsOnce(specs));
    } catch (err) {
      // Counted once it is final: a create that a settling broker refused and a retry then made is no error.
      M.errors.inc({ component: 'bus', kind: 'create_topics' });
      throw err;
    }
  }

  private async ensureTopicsOnce(specs: readonly TopicSpec[]): Promise<void> {
    for (const s of specs) checkTopicSpec(s);
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((s) => ({
            topic: s.topic,
            numPartitions: s.partitions,
            replicationFactor: this.opts.replicationFactor ?? 1,
            configEntries: [
              // Compacted topics (state changelogs, targets) roll segments often and clean eagerly, so a
              // snapshot per transaction does not grow restore time until a 1 GB segment rolls.
              ...(s.compacted
                ? [
                    { name: 'cleanup.policy', value: 'compact' },
                    { name: 'segment.ms', value: '600000' },
                    { name: 'min.cleanable.dirty.ratio', value: '0.1' },
                    { name: 'delete.retention.ms', value: '3600000' },
                  ]
                : []),
              ...(s.retentionMs !== undefined ? [{ name: 'retention.ms', value: String(s.retentionMs) }] : []),
            ],
          })),
        });
      } catch (err) {
        // Another process may have created some of them meanwhile; anything else is a real failure.
        const errors = (err as { errors?: Array<{ type?: string }> }).errors;
        if (!errors?.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) {
          throw new BusError(`cannot create topics ${missing.map((s) => s.topic).join(', ')}: ${(err as Error).message}`, {}, { cause: err });
        }
      }
    }
    // Existing topics with fewer partitions than asked grow (partitions are never removed).
    const present = specs.filter((s) => existing.has(s.topic));
    if (present.length > 0) {
      const meta = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
      const grow = present
        .map((s) => ({ topic: s.topic, count: s.partitions, have: meta.topics.find((t) => t.name === s.topic)?.partitions.length ?? 0 }))
        .filter((x) => x.count > x.have);
      if (grow.length > 0) await admin.createPartitions({ topicPartitions: grow.map(({ topic, count }) => ({ topic, count })) });
    }
    for (const s of specs) this.knownTopics.add(s.topic);
  }

  async producer(opts: ProducerOptions = {}): Promise<BusProducer> {
    this.assertOpen();
    const transactional = opts.transactionalId !== undefined;
    const p = this.kafka.producer({
      // Java-compatible murmur2, the same partitionFor() the MemoryBus uses.
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: transactional || opts.idempotent !== false,
      ...(transactional ? { transactionalId: opts.transactionalId, maxInFlightRequests: 1 } : {}),
      allowAutoTopicCreation: false,
    });
    try {
      await p.connect();
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'producer_connect' });
      throw new BusError(`producer cannot reach Kafka at ${this.opts.brokers.join(',')}: ${(err as Error).message}`, { transactionalId: opts.transactionalId }, { cause: err });
    }
    const bp = new KafkaProducer(this, p, opts.transactionalId);
    this.producers.add(bp);
    return bp;
  }

  consumer(opts: ConsumerOptions): BusConsumer {
    this.assertOpen();
    if (typeof opts?.groupId !== 'string' || opts.groupId === '') throw new BusError('consumer needs a non-empty groupId');
    const c = new KafkaConsumer(this, opts);
    this.consumers.add(c);
    return c;
  }

  async committed(groupId: string, topic: string): Promise<TopicPartitionOffset[]> {
    const admin = await this.admin();
    const res = await whileTopicsSettle(() => admin.fetchOffsets({ groupId, topics: [topic] }));
    return (res.find((r) => r.topic === topic)?.partitions ?? [])
      .map((p) => ({ topic, partition: p.partition, offset: p.offset }))
      .sort((a, b) => a.partition - b.partition);
  }

  async endOffsets(topic: string): Promise<TopicPartitionOffset[]> {
    const admin = await this.admin();
    try {
      const res = await whileTopicsSettle(() => admin.fetchTopicOffsets(topic));
      return res.map((p) => ({ topic, partition: p.partition, offset: p.high })).sort((a, b) => a.partition - b.partition);
    } catch (err) {
      throw new BusError(`cannot read end offsets: ${(err as Error).message}`, { topic }, { cause: err });
    }
  }

  /** Commits a group's offsets from outside the group (allowed only while it has no live members). */
  async setOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const admin = await this.admin();
    for (const { topic, partitions } of groupByTopic(offsets)) await admin.setOffsets({ groupId, topic, partitions });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.consumers].map((c) => c.stop()));
    await Promise.allSettled([...this.producers].map((p) => p.close()));
    const admin = this.adminClient;
    this.closed = true;
    if (admin) await admin.then((a) => a.disconnect()).catch(() => {});
  }

  assertOpen(): void {
    if (this.closed) throw new BusError('bus is closed');
  }

  forget(x: KafkaConsumer | KafkaProducer): void {
    if (x instanceof KafkaConsumer) this.consumers.delete(x);
    else this.producers.delete(x);
  }
}

class KafkaProducer implements BusProducer {
  private closed = false;

  constructor(private readonly bus: KafkaBus, private readonly p: Producer, private readonly transactionalId: string | undefined) {}

  async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    if (this.closed) throw new BusError('producer is closed', { topic });
    checkMessages(topic, messages);
    if (messages.length === 0) return;
    await this.bus.assertTopicsExist([topic]);
    await this.bus.assertPartitionsExist(topic, messages);
    try {
      await this.p.send({ topic, acks: -1, messages: toKafkaMessages(topic, messages, this.bus.opts) });
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'produce' });
      throw new BusError(`produce failed: ${(err as Error).message}`, { topic }, { cause: err });
    }
  }

  async transaction(): Promise<BusTransaction> {
    const id = this.transactionalId;
    if (id === undefined) throw new BusError('transaction() needs a producer created with a transactionalId');
    if (this.closed) throw new BusError('producer is closed', { transactionalId: id });
    try {
      return new KafkaTransaction(this.bus, await this.p.transaction(), id);
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'transaction' });
      throw new BusError(`cannot begin transaction: ${(err as Error).message}`, { transactionalId: id }, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.bus.forget(this);
    await this.p.disconnect();
  }
}

class KafkaTransaction implements BusTransaction {
  constructor(private readonly bus: KafkaBus, private readonly tx: Transaction, private readonly id: string) {}

  private async guard<T>(what: string, ctx: { topic?: string; group?: string }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'transaction' });
      throw new BusError(`transaction ${what} failed: ${(err as Error).message}`, { ...ctx, transactionalId: this.id }, { cause: err });
    }
  }

  async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    checkMessages(topic, messages);
    if (messages.length === 0) return;
    await this.bus.assertTopicsExist([topic]);
    await this.bus.assertPartitionsExist(topic, messages);
    await this.guard('send', { topic }, () => this.tx.send({ topic, acks: -1, messages: toKafkaMessages(topic, messages, this.bus.opts) }));
  }

  async sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const topics = groupByTopic(offsets);
    await this.guard('sendOffsets', { group: groupId }, () => this.tx.sendOffsets({ consumerGroupId: groupId, topics }));
  }

  async commit(): Promise<void> {
    await this.guard('commit', {}, () => this.tx.commit());
  }

  async abort(): Promise<void> {
    if (!this.tx.isActive()) return;
    await this.guard('abort', {}, () => this.tx.abort());
  }
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class KafkaConsumer implements BusConsumer {
  private readonly c: Consumer;
  private topics: string[] = [];
  private owned = new Map<string, TopicPartition>();
  private running = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  /** onAssigned/onRevoked run in order, and batches wait for them. */
  private hooks: Promise<void> = Promise.resolve();
  private handlers: ConsumerHandlers | null = null;
  private readonly groupId: string;
  /** A commit failed because the group no longer knows this member: the next batch failure rejoins. */
  private membershipLost: unknown = null;

  constructor(private readonly bus: KafkaBus, private readonly opts: ConsumerOptions) {
    this.groupId = opts.groupId;
    const o = bus.opts;
    this.c = bus.kafka.consumer({
      groupId: opts.groupId,
      readUncommitted: opts.readCommitted === false,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1 << 20,
      heartbeatInterval: o.heartbeatIntervalMs ?? 1000,
      sessionTimeout: o.sessionTimeoutMs ?? 10_000,
      rebalanceTimeout: Math.max(20_000, (o.sessionTimeoutMs ?? 10_000) * 2),
      // linger: the broker holds a fetch until it has minBytes or maxWaitMs passed (fetch.min.bytes, fetch.max.wait.ms)
      minBytes: opts.linger?.minBytes ?? 1,
      maxWaitTimeInMs: opts.linger?.maxWaitMs ?? o.maxWaitTimeMs ?? 1000,
      allowAutoTopicCreation: false,
      retry: { ...(o.retry ?? { initialRetryTime: 300, maxRetryTime: 5000, retries: 15 }), restartOnFailure: async () => true },
    });
    this.c.on(this.c.events.GROUP_JOIN, (e) => this.onJoin(e.payload.memberAssignment));
    this.c.on(this.c.events.CRASH, (e) => {
      M.errors.inc({ component: 'bus', kind: 'consumer_crash' });
      this.bus.log.warn({ err: e.payload.error, group: this.groupId, restart: e.payload.restart }, 'Kafka consumer crashed; kafkajs restarts it');
    });
  }

  private onJoin(assignment: Record<string, number[]>): void {
    rebalances.inc({ bus: 'kafka', group: this.groupId });
    const next = new Map<string, TopicPartition>();
    for (const [topic, parts] of Object.entries(assignment)) for (const partition of parts) next.set(tpKey(topic, partition), { topic, partition });
    const lost = [...this.owned].filter(([k]) => !next.has(k)).map(([, v]) => v);
    const gained = [...next].filter(([k]) => !this.owned.has(k)).map(([, v]) => v);
    this.owned = next;
    if (lost.length > 0) this.queueHook('onRevoked', lost);
    if (gained.length > 0) this.queueHook('onAssigned', gained);
  }

  private queueHook(name: 'onAssigned' | 'onRevoked', parts: TopicPartition[]): void {
    // a partition this member no longer reads has no lag here (its new owner reports it)
    if (name === 'onRevoked') for (const { topic, partition } of parts) M.busLag.remove({ group: this.groupId, topic, partition });
    this.hooks = this.hooks.then(async () => {
      try {
        await this.handlers?.[name]?.(parts);
      } catch (err) {
        M.errors.inc({ component: 'bus', kind: name });
        this.bus.log.error({ err, group: this.groupId, partitions: parts }, `${name} handler failed`);
      }
    });
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    if (this.running) throw new BusError('subscribe before run()', { group: this.groupId });
    this.topics = [...new Set([...this.topics, ...topics])];
  }

  async run(handlers: ConsumerHandlers): Promise<void> {
    if (this.running || this.stopped) throw new BusError('consumer already running or stopped', { group: this.groupId });
    if (this.topics.length === 0) throw new BusError('run() before subscribe()', { group: this.groupId });
    this.handlers = handlers;
    // kafkajs would retry an unknown topic for a minute before failing; say it at once instead.
    await this.bus.assertTopicsExist(this.topics, { group: this.groupId });
    try {
      await this.c.connect();
      // a topic another process has just created may not be in this broker's metadata yet
      await whileTopicsSettle(() => this.c.subscribe({ topics: this.topics, fromBeginning: this.opts.fromBeginning !== false }));
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'consumer_connect' });
      await this.c.disconnect().catch(() => {});
      throw new BusError(`consumer cannot subscribe to ${this.topics.join(',')}: ${(err as Error).message}`, { group: this.groupId }, { cause: err });
    }
    this.running = true;
    await this.c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.bus.opts.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    await this.hooks;
    const { topic, partition } = batch;
    const messages: InMessage[] = batch.messages.map((m) => ({
      topic,
      partition,
      offset: m.offset,
      key: m.key === null ? null : m.key.toString(),
      value: m.value,
      headers: headersToStrings(m.headers),
      timestamp: Number(m.timestamp),
    }));
    const ctx = { heartbeat, isRunning: () => isRunning() && !isStale() && !this.stopping };
    const min = this.bus.opts.batchRetryMinMs ?? 100;
    const max = this.bus.opts.batchRetryMaxMs ?? 5000;
    for (let attempt = 0; ; attempt++) {
      // Not resolving an offset makes kafkajs fetch the same messages again after a stop or rebalance.
      if (!ctx.isRunning()) return;
      try {
        await this.handlers!.eachBatch({ topic, partition, messages, highWatermark: batch.highWatermark }, ctx);
        resolveOffset(batch.lastOffset());
        if (this.owned.has(tpKey(topic, partition))) M.busLag.set({ group: this.groupId, topic, partition }, Math.max(0, Number(batch.highWatermark) - Number(batch.lastOffset()) - 1));
        return;
      } catch (err) {
        // The group forgot this member (broker restart, session timeout) or is rebalancing: only
        // kafkajs can fix that by rejoining, so its own error goes back to it instead of a retry.
        const membership = membershipError(err) ?? this.membershipLost;
        if (membership) {
          this.membershipLost = null;
          throw membership;
        }
        batchRetries.inc({ bus: 'kafka', group: this.groupId, topic });
        M.errors.inc({ component: 'bus', kind: 'batch_failed' });
        const backoff = Math.min(max, min * 2 ** attempt);
        this.bus.log.warn({ err, group: this.groupId, topic, partition, offset: messages[0]!.offset, attempt, backoffMs: backoff }, 'eachBatch failed; retrying the same batch');
        const lost = await this.pause(backoff, heartbeat, ctx.isRunning);
        if (lost) throw lost;
      }
    }
  }

  /** Sleeps in short steps, heartbeating so a long backoff does not cost the group membership. */
  private async pause(ms: number, heartbeat: () => Promise<void>, alive: () => boolean): Promise<unknown> {
    const until = Date.now() + ms;
    while (Date.now() < until && alive()) {
      await new Promise((r) => setTimeout(r, Math.min(250, until - Date.now())));
      try {
        await heartbeat();
      } catch (err) {
        const m = membershipError(err);
        if (m) return m;
      }
    }
    return null;
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    if (this.opts.ephemeral) throw new BusError('an ephemeral reader does not commit', { group: this.groupId });
    const topics = groupByTopic(offsets);
    try {
      if (this.running && !this.stopping) {
        await this.c.commitOffsets(topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset }))));
      } else {
        await this.bus.setOffsets(this.groupId, offsets);
      }
    } catch (err) {
      this.membershipLost = membershipError(err) ?? this.membershipLost;
      M.errors.inc({ component: 'bus', kind: 'commit' });
      throw new BusError(`commit failed: ${(err as Error).message}`, { group: this.groupId, topic: offsets[0]?.topic }, { cause: err });
    }
  }

  assignment(): readonly TopicPartition[] {
    return [...this.owned.values()];
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      if (this.running) {
        // disconnect() waits for the batch in flight, then leaves the group.
        await this.c.disconnect().catch((err) => this.bus.log.warn({ err, group: this.groupId }, 'consumer disconnect failed'));
        this.running = false;
        const lost = [...this.owned.values()];
        this.owned = new Map();
        if (lost.length > 0) this.queueHook('onRevoked', lost);
        await this.hooks;
      }
      this.bus.forget(this);
    })();
    return this.stopping;
  }
}

function headersToStrings(h: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    // Kafka allows repeated header keys; the Bus keeps the last, like a record.
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last !== undefined) out[k] = last.toString();
  }
  return out;
}

const MEMBERSHIP_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/** The kafkajs error in a cause chain that means "rejoin the group", if any. */
function membershipError(err: unknown): unknown {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && MEMBERSHIP_ERRORS.has(type)) return e;
  }
  return null;
}

/**
 * Runs `fn`, retrying while a topic settles: a broker that has just created a topic (here or in
 * another process) can answer UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE for a moment, until
 * its metadata has propagated. Retriable errors are retried with backoff for up to ~20 s; anything
 * else, at once, to the caller.
 */
export async function whileTopicsSettle<T>(fn: () => Promise<T>, attempts = 15): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const cause = (err as { cause?: { retriable?: boolean; type?: string } }).cause ?? (err as { retriable?: boolean; type?: string });
      const retriable = cause?.retriable === true || cause?.type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition|LEADER_NOT_AVAILABLE/.test((err as Error).message);
      if (!retriable || attempt >= attempts) throw err;
      settlingWaits.inc();
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}
