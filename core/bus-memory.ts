import type {
  BatchContext,
  Bus,
  BusConsumer,
  BusProducer,
  BusTransaction,
  ConsumedBatch,
  ConsumerHandlers,
  ConsumerOptions,
  InMessage,
  OutMessage,
  ProducerOptions,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './bus.js';
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { BusError, checkMessages, checkTopicSpec, messageBytes, partitionFor } from './bus.js';
import { createLogger } from './log.js';
import { M, counter } from './metrics.js';

/**
 * The in-process bus: an append-only log per partition with Kafka's semantics, for the embedded
 * default (`noctua start`) and for fast tests. What differs from Kafka, on purpose:
 * - transactional messages are buffered in the transaction and appended at commit, so offsets stay
 *   contiguous and no consumer ever sees an open or aborted transaction (Kafka writes them to the
 *   log and hides them from read_committed consumers; offsets then skip control markers, which is
 *   why callers must never assume contiguous offsets);
 * - a rebalance only revokes what moves (like Kafka's cooperative protocol), and members of a group
 *   are the consumers of this process;
 * - with `dir`, writes are journalled before they are acknowledged (see MemoryBusOptions.dir);
 * - consumed messages are dropped beyond `retainConsumed` (and `retainConsumedBytes`) per partition
 *   so memory stays bounded:
 *   "consumed" means committed by every group that ever subscribed to or committed on the topic in
 *   this process, live or not;
 * - compacted topics keep the newest message of every key, consumed or not (Kafka's log cleaner does
 *   not wait for consumers either), and drop tombstones once consumed.
 */

export interface MemoryBusOptions {
  /** Messages kept per partition once every group that reads the topic committed past them. */
  readonly retainConsumed?: number;
  /** And at most this many bytes of them (keys and values; Kafka's retention.bytes, for consumed messages). */
  readonly retainConsumedBytes?: number;
  /**
   * A group with no member that has not committed for this long (counted from this bus's start at the
   * earliest) is forgotten, its offsets too, and no longer holds retention: Kafka's
   * offsets.retention.minutes (7 days). A consumer removed from the configuration stops pinning its topics.
   */
  readonly groupRetentionMs?: number;
  /** Backoff before a failed eachBatch is retried: doubles from min to max. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Upper bound of messages per delivered batch (bytes are bounded by maxBytesPerPartition). */
  readonly maxBatchMessages?: number;
  /**
   * Durable mode: every accepted message, commit and topic goes to an append-only journal in this
   * directory before it is acknowledged, and a new MemoryBus on the same dir resumes from it, so an
   * embedded process killed mid-run loses nothing it acknowledged. Absent: memory only.
   */
  readonly dir?: string;
  /** Journal size that triggers a rewrite down to what retention keeps (durable mode). */
  readonly journalMaxBytes?: number;
  /** fsync every journal write: survives power loss too, at the cost of a disk flush per send. */
  readonly fsync?: boolean;
}

const DEFAULTS = { retainConsumed: 10_000, retainConsumedBytes: 4 << 20, groupRetentionMs: 7 * 86_400_000, retryMinMs: 100, retryMaxMs: 5_000, maxBatchMessages: 5_000, dir: '', journalMaxBytes: 64 << 20, fsync: false };
const DEFAULT_MAX_BYTES = 1 << 20;
/** Group ids noctua gave its never-committing readers before they were ephemeral (see the constructor). */
const LEGACY_READERS = /^noctua-(live|restore|silences)-/;

const log = createLogger(undefined, 'bus-memory');
const batchRetries = counter('noctua_bus_batch_retries_total', 'eachBatch failures retried after a backoff', ['bus', 'group', 'topic']);
const rebalances = counter('noctua_bus_rebalances_total', 'Consumer group rebalances', ['bus', 'group']);
const truncated = counter('noctua_bus_memory_truncated_total', 'Consumed messages dropped by the in-process bus retention', ['topic']);

interface Entry {
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
  readonly appendedAt: number;
}

class PartitionLog {
  /** Kept entries in offset order; offsets have gaps only where compaction removed entries. */
  entries: Entry[] = [];
  /** The next offset to be written (the high watermark). */
  end = 0;

  get start(): number {
    return this.entries.length > 0 ? this.entries[0]!.offset : this.end;
  }

  /** Puts back an entry read from the journal, at its recorded offset. */
  restore(e: Entry): void {
    if (e.offset < this.end) return;
    this.entries.push(e);
    this.end = e.offset + 1;
  }

  append(m: OutMessage, now: number): Entry {
    const e: Entry = {
      offset: this.end++,
      key: m.key,
      value: m.value,
      headers: { ...(m.headers ?? {}) },
      timestamp: m.timestamp ?? now,
      appendedAt: now,
    };
    this.entries.push(e);
    return e;
  }

  /** Index of the first entry with offset >= o. */
  indexOf(o: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.offset < o) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Entries from offset `from`, at most maxMessages and maxBytes of them (at least one), and their bytes. */
  read(from: number, maxBytes: number, maxMessages: number): { entries: Entry[]; bytes: number } {
    const entries: Entry[] = [];
    let bytes = 0;
    for (let i = this.indexOf(from); i < this.entries.length && entries.length < maxMessages; i++) {
      const e = this.entries[i]!;
      const size = messageBytes(e);
      if (entries.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      entries.push(e);
    }
    return { entries, bytes };
  }

  /** Drops consumed entries (offset < consumed) beyond the newest `keep` of them. */
  truncate(consumed: number, keep: number, keepBytes: number): number {
    const upto = this.indexOf(consumed);
    let n = upto - keep;
    // the newest consumed entries that fit in keepBytes stay (at most keep of them)
    let bytes = 0;
    for (let i = upto - 1; i >= Math.max(0, n); i--) {
      bytes += messageBytes(this.entries[i]!);
      if (bytes > keepBytes) {
        n = i + 1;
        break;
      }
    }
    if (n <= 0) return 0;
    this.entries.splice(0, n);
    return n;
  }

  /** Entries kept by the last compaction: the next is due when the log has grown well past them. */
  keptByCompaction = 0;

  /** True when enough has been appended since the last compaction to make another worth its pass. */
  get compactionDue(): boolean {
    return this.entries.length > 2 * this.keptByCompaction + 64;
  }

  /**
   * Compaction, as Kafka's log cleaner does it: an entry whose key has a newer entry goes, wherever it
   * is (a reader behind it gets the newer value; no consumer has to have read it, or a topic nobody
   * consumes, like the processors' changelog, would keep every snapshot). Tombstones and unkeyed
   * entries go only once every interested group has consumed them, so a live reader still learns of a
   * deletion.
   */
  compact(consumed: number): number {
    const upto = this.indexOf(consumed);
    const newest = new Map<string, number>();
    for (const e of this.entries) if (e.key !== null) newest.set(e.key, e.offset);
    const before = this.entries.length;
    this.entries = this.entries.filter((e, i) => (e.key === null || e.value === null ? i >= upto : newest.get(e.key) === e.offset));
    this.keptByCompaction = this.entries.length;
    return before - this.entries.length;
  }

  expire(olderThan: number, consumed: number): number {
    let n = 0;
    while (n < this.entries.length && this.entries[n]!.appendedAt < olderThan && this.entries[n]!.offset < consumed) n++;
    if (n > 0) this.entries.splice(0, n);
    return n;
  }
}

type JournalEntry = [topic: string, partition: number, offset: number, key: string | null, value: string | null, headers: Record<string, string>, timestamp: number];
type JournalOffset = [group: string, topic: string, partition: number, offset: number];
type JournalRecord =
  | { t: 'topic'; spec: TopicSpec }
  | { t: 'sub'; group: string; topic: string }
  /** Messages and the offsets committed with them (a transaction), applied all or nothing. */
  | { t: 'write'; e: JournalEntry[]; o: JournalOffset[] }
  /** A group forgotten after its retention (forgetIdleGroups). */
  | { t: 'forget'; group: string };

/**
 * Append-only journal of the durable MemoryBus. Frames are [length u32][crc32 u32][JSON]; a torn
 * tail frame (killed mid-write) fails its length or checksum and is cut off on load, so each
 * write, a whole transaction included, is there entirely or not at all.
 */
class Journal {
  private fd: number;
  size = 0;
  readonly path: string;

  constructor(readonly dir: string, private readonly fsync: boolean) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'bus.journal');
    this.fd = openSync(this.path, 'a+');
  }

  load(apply: (r: JournalRecord) => void): void {
    const buf = readFileSync(this.path);
    let pos = 0;
    while (pos + 8 <= buf.length) {
      const len = buf.readUInt32LE(pos);
      const sum = buf.readUInt32LE(pos + 4);
      if (pos + 8 + len > buf.length) break;
      const body = buf.subarray(pos + 8, pos + 8 + len);
      if (crc32(body) !== sum) break;
      apply(JSON.parse(body.toString('utf8')) as JournalRecord);
      pos += 8 + len;
    }
    if (pos < buf.length) {
      log.warn({ journal: this.path, validBytes: pos, droppedBytes: buf.length - pos }, 'bus journal: cut a torn tail (process killed mid-write)');
      M.errors.inc({ component: 'bus', kind: 'journal_torn_tail' });
      ftruncateSync(this.fd, pos);
    }
    this.size = pos;
  }

  private frame(r: JournalRecord): Buffer {
    const body = Buffer.from(JSON.stringify(r), 'utf8');
    const head = Buffer.alloc(8);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt32LE(crc32(body), 4);
    return Buffer.concat([head, body]);
  }

  write(r: JournalRecord): void {
    const f = this.frame(r);
    writeSync(this.fd, f);
    if (this.fsync) fsyncSync(this.fd);
    this.size += f.length;
  }

  /** Replaces the journal by `records` (what is still kept), atomically through a rename. */
  rewrite(records: Iterable<JournalRecord>): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    let size = 0;
    try {
      for (const r of records) {
        const f = this.frame(r);
        writeSync(fd, f);
        size += f.length;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a+');
    this.size = size;
  }

  close(): void {
    closeSync(this.fd);
  }
}

const toJournal = (topic: string, partition: number, e: Entry): JournalEntry => [topic, partition, e.offset, e.key, e.value === null ? null : e.value.toString('base64'), e.headers, e.timestamp];

interface Topic {
  spec: TopicSpec;
  partitions: PartitionLog[];
  roundRobin: number;
}

/** Wakes every waiting consumer when something changes (append, commit, assignment, stop). */
class Signal {
  private waiters: Array<() => void> = [];
  /** Resolves at the next notify(), or after `ms` when given. */
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms === undefined) {
        this.waiters.push(resolve);
        return;
      }
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, ms);
      this.waiters.push(done);
    });
  }
  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class Group {
  readonly committed = new Map<string, number>();
  readonly members: MemoryConsumer[] = [];
  /** Every topic a member of this group ever subscribed to: retention waits for the group on them. */
  readonly topics = new Set<string>();
  /** Rebalances run one after another. */
  chain: Promise<void> = Promise.resolve();
  /** When a member last joined, left or committed (or this bus started, for a group from the journal). */
  lastSeen = Date.now();
  constructor(readonly id: string) {}
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly topics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private readonly txnEpochs = new Map<string, number>();
  private readonly consumers = new Set<MemoryConsumer>();
  private readonly producers = new Set<MemoryProducer>();
  readonly signal = new Signal();
  readonly opts: Required<MemoryBusOptions>;
  private memberSeq = 0;
  private closed = false;

  private readonly journal: Journal | null = null;
  private journalFloor = 0;

  constructor(opts: MemoryBusOptions = {}) {
    this.opts = { ...DEFAULTS, ...opts };
    if (this.opts.dir) {
      this.journal = new Journal(this.opts.dir, this.opts.fsync);
      this.journal.load((r) => this.replay(r));
      // Journals of earlier versions hold the live tails and state restores of every past run as
      // groups that read from offset 0 and never commit: they held retention at 0 for good.
      for (const g of [...this.groups.values()]) {
        if (g.committed.size === 0 && LEGACY_READERS.test(g.id)) this.groups.delete(g.id);
      }
      for (const t of this.topics.values()) this.retain(t);
    }
  }

  private replay(r: JournalRecord): void {
    if (r.t === 'topic') this.createOrGrow(r.spec);
    else if (r.t === 'sub') this.group(r.group).topics.add(r.topic);
    else if (r.t === 'forget') this.groups.delete(r.group);
    else {
      const now = Date.now();
      for (const [topic, partition, offset, key, value, headers, timestamp] of r.e) {
        this.topics.get(topic)?.partitions[partition]?.restore({ offset, key, value: value === null ? null : Buffer.from(value, 'base64'), headers, timestamp, appendedAt: now });
      }
      for (const [group, topic, partition, offset] of r.o) this.group(group).committed.set(tpKey(topic, partition), offset);
    }
  }

  /** What the journal must keep: topics, group interest, retained messages, committed offsets. */
  private *snapshot(): Generator<JournalRecord> {
    for (const t of this.topics.values()) yield { t: 'topic', spec: t.spec };
    for (const g of this.groups.values()) for (const topic of g.topics) yield { t: 'sub', group: g.id, topic };
    for (const t of this.topics.values()) {
      for (let p = 0; p < t.partitions.length; p++) {
        const entries = t.partitions[p]!.entries;
        for (let i = 0; i < entries.length; i += 1000) yield { t: 'write', e: entries.slice(i, i + 1000).map((e) => toJournal(t.spec.topic, p, e)), o: [] };
      }
    }
    const offsets: JournalOffset[] = [];
    for (const g of this.groups.values()) {
      for (const [k, offset] of g.committed) {
        const [topic, partition] = k.split('\u0000') as [string, string];
        offsets.push([g.id, topic, Number(partition), offset]);
      }
    }
    yield { t: 'write', e: [], o: offsets };
  }

  private journalWrite(r: JournalRecord): void {
    if (!this.journal) return;
    try {
      this.journal.write(r);
    } catch (err) {
      M.errors.inc({ component: 'bus', kind: 'journal_write' });
      throw new BusError(`cannot write the bus journal ${this.journal.path}: ${(err as Error).message}`, {}, { cause: err });
    }
  }

  private maybeCompactJournal(): void {
    if (!this.journal || this.journal.size < Math.max(this.opts.journalMaxBytes, this.journalFloor * 2)) return;
    try {
      this.journal.rewrite(this.snapshot());
      // When what is retained is itself large, wait for it to double: no rewrite on every send.
      this.journalFloor = this.journal.size;
    } catch (err) {
      // The old journal is still complete; only its size is not reclaimed.
      M.errors.inc({ component: 'bus', kind: 'journal_rewrite' });
      log.error({ err, journal: this.journal.path }, 'bus journal rewrite failed; keeping the old journal');
    }
  }

  /** Creates a topic or adds partitions; true when something changed. */
  private createOrGrow(spec: TopicSpec): boolean {
    const t = this.topics.get(spec.topic);
    if (!t) {
      this.topics.set(spec.topic, { spec: { ...spec }, partitions: Array.from({ length: spec.partitions }, () => new PartitionLog()), roundRobin: 0 });
      return true;
    }
    if (spec.partitions <= t.partitions.length) return false;
    // Like Kafka's createPartitions: partitions are only ever added; keys may move.
    while (t.partitions.length < spec.partitions) t.partitions.push(new PartitionLog());
    t.spec = { ...t.spec, partitions: spec.partitions };
    return true;
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    for (const spec of specs) checkTopicSpec(spec);
    const grown = new Set<string>();
    for (const spec of specs) {
      const have = this.topics.get(spec.topic);
      if (have && spec.partitions <= have.partitions.length) continue;
      const next = have ? { ...have.spec, partitions: spec.partitions } : spec;
      this.journalWrite({ t: 'topic', spec: next });
      this.createOrGrow(next);
      grown.add(spec.topic);
    }
    const affected = [...this.groups.values()].filter((g) => g.members.some((m) => m.topics.some((x) => grown.has(x))));
    await Promise.all(affected.map((g) => this.rebalance(g)));
  }

  async producer(opts: ProducerOptions = {}): Promise<BusProducer> {
    this.assertOpen();
    let epoch = 0;
    if (opts.transactionalId !== undefined) {
      // A new producer with the same transactional id fences the old one, as in Kafka.
      epoch = (this.txnEpochs.get(opts.transactionalId) ?? 0) + 1;
      this.txnEpochs.set(opts.transactionalId, epoch);
    }
    const p = new MemoryProducer(this, opts.transactionalId, epoch);
    this.producers.add(p);
    return p;
  }

  consumer(opts: ConsumerOptions): BusConsumer {
    this.assertOpen();
    if (typeof opts?.groupId !== 'string' || opts.groupId === '') throw new BusError('consumer needs a non-empty groupId');
    const c = new MemoryConsumer(this, opts, ++this.memberSeq);
    this.consumers.add(c);
    return c;
  }

  async committed(groupId: string, topic: string): Promise<TopicPartitionOffset[]> {
    const t = this.topic(topic);
    const g = this.groups.get(groupId);
    return t.partitions.map((_, partition) => ({ topic, partition, offset: String(g?.committed.get(tpKey(topic, partition)) ?? -1) }));
  }

  async endOffsets(topic: string): Promise<TopicPartitionOffset[]> {
    return this.topic(topic).partitions.map((p, partition) => ({ topic, partition, offset: String(p.end) }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await Promise.all([...this.producers].map((p) => p.close()));
    this.closed = true;
    this.journal?.close();
    this.signal.notify();
  }

  // ---- internals shared with producers and consumers ----

  assertOpen(): void {
    if (this.closed) throw new BusError('bus is closed');
  }

  topic(name: string): Topic {
    const t = this.topics.get(name);
    if (!t) throw new BusError('unknown topic (create it with ensureTopics first)', { topic: name });
    return t;
  }

  /** Explicit partitions must exist (Kafka refuses a produce to a partition it does not have). */
  checkPartitions(topic: string, messages: readonly OutMessage[]): void {
    const n = this.topic(topic).partitions.length;
    for (const m of messages) {
      if (m.partition !== undefined && m.partition >= n) throw new BusError(`no partition ${m.partition}: the topic has ${n}`, { topic, partition: m.partition });
    }
  }

  partitionLog(topic: string, partition: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[partition];
  }

  group(id: string): Group {
    let g = this.groups.get(id);
    if (!g) {
      g = new Group(id);
      this.groups.set(id, g);
    }
    return g;
  }

  isFenced(transactionalId: string, epoch: number): boolean {
    return this.txnEpochs.get(transactionalId) !== epoch;
  }

  /** Appends all batches, then moves all offsets, with no await in between: atomic for every reader. */
  append(batches: ReadonlyArray<{ topic: string; messages: readonly OutMessage[] }>, offsets: ReadonlyArray<{ groupId: string; offsets: readonly TopicPartitionOffset[] }> = []): void {
    const now = Date.now();
    // Everything is checked and placed before anything is written: all or nothing.
    const commits = offsets.flatMap(({ groupId, offsets: o }) => this.checkOffsets(groupId, o));
    for (const { topic, messages } of batches) this.checkPartitions(topic, messages);
    const placed = batches.flatMap(({ topic, messages }) => {
      const t = this.topic(topic);
      return messages.map((m) => ({ t, p: m.partition ?? partitionFor(m.key, t.partitions.length, t.roundRobin++), m }));
    });
    if (this.journal) {
      // Offsets are known before appending: the next offset of each partition, in order.
      const next = new Map<PartitionLog, number>();
      const e = placed.map(({ t, p, m }) => {
        const plog = t.partitions[p]!;
        const offset = next.get(plog) ?? plog.end;
        next.set(plog, offset + 1);
        return toJournal(t.spec.topic, p, { offset, key: m.key, value: m.value, headers: { ...(m.headers ?? {}) }, timestamp: m.timestamp ?? now, appendedAt: now });
      });
      this.journalWrite({ t: 'write', e, o: commits });
    }
    for (const { t, p, m } of placed) t.partitions[p]!.append(m, now);
    for (const { t } of placed) if (t.spec.retentionMs !== undefined) this.expire(t, now);
    for (const { t, p } of placed) {
      const plog = t.partitions[p]!;
      if (t.spec.compacted && plog.compactionDue) {
        const dropped = plog.compact(this.consumedByAll(t, p));
        if (dropped > 0) truncated.inc({ topic: t.spec.topic }, dropped);
      }
    }
    this.applyOffsets(commits);
    this.maybeCompactJournal();
    this.signal.notify();
  }

  commitOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): void {
    const commits = this.checkOffsets(groupId, offsets);
    this.journalWrite({ t: 'write', e: [], o: commits });
    this.applyOffsets(commits);
    this.maybeCompactJournal();
  }

  private checkOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): JournalOffset[] {
    return offsets.map((o) => {
      const t = this.topic(o.topic);
      const n = Number(o.offset);
      if (!Number.isInteger(o.partition) || o.partition < 0 || o.partition >= t.partitions.length) {
        throw new BusError('commit for a partition that does not exist', { topic: o.topic, partition: o.partition, group: groupId });
      }
      if (!Number.isSafeInteger(n) || n < 0) throw new BusError(`invalid offset to commit: ${JSON.stringify(o.offset)}`, { topic: o.topic, partition: o.partition, group: groupId });
      return [groupId, o.topic, o.partition, n];
    });
  }

  private applyOffsets(commits: readonly JournalOffset[]): void {
    const now = Date.now();
    for (const [groupId, topic, partition, n] of commits) {
      const g = this.group(groupId);
      g.committed.set(tpKey(topic, partition), n);
      g.lastSeen = now;
    }
    this.forgetIdleGroups(now);
    for (const topic of new Set(commits.map((c) => c[1]))) this.retain(this.topic(topic));
  }

  /** Groups without members that were not seen for groupRetentionMs go, offsets and interest with them. */
  private forgetIdleGroups(now: number): void {
    for (const g of this.groups.values()) {
      if (g.members.length === 0 && now - g.lastSeen > this.opts.groupRetentionMs) {
        this.journalWrite({ t: 'forget', group: g.id });
        this.groups.delete(g.id);
        log.info({ group: g.id, idleMs: now - g.lastSeen }, 'consumer group forgotten after its retention: no member, no commit');
      }
    }
  }

  /** The lowest offset every interested group has committed past, per partition. */
  private consumedByAll(t: Topic, partition: number): number {
    let min = Infinity;
    const key = tpKey(t.spec.topic, partition);
    for (const g of this.groups.values()) {
      // A group with no live member still counts: a restarting processor must find its input.
      const interested = g.topics.has(t.spec.topic) || [...g.committed.keys()].some((k) => k.startsWith(`${t.spec.topic}\u0000`));
      if (!interested) continue;
      min = Math.min(min, g.committed.get(key) ?? 0);
    }
    return min === Infinity ? 0 : min;
  }

  private retain(t: Topic): void {
    t.partitions.forEach((p, i) => {
      const consumed = this.consumedByAll(t, i);
      const dropped = t.spec.compacted ? (p.indexOf(consumed) > this.opts.retainConsumed ? p.compact(consumed) : 0) : p.truncate(consumed, this.opts.retainConsumed, this.opts.retainConsumedBytes);
      if (dropped > 0) truncated.inc({ topic: t.spec.topic }, dropped);
    });
  }

  private expire(t: Topic, now: number): void {
    t.partitions.forEach((p, i) => {
      if (t.spec.compacted) return;
      const dropped = p.expire(now - t.spec.retentionMs!, this.consumedByAll(t, i));
      if (dropped > 0) truncated.inc({ topic: t.spec.topic }, dropped);
    });
  }

  join(c: MemoryConsumer): Promise<void> {
    const g = this.group(c.groupId);
    g.members.push(c);
    g.lastSeen = Date.now();
    // an ephemeral reader is no interest of its group's: retention does not wait for it
    for (const t of c.ephemeral ? [] : c.topics) {
      if (g.topics.has(t)) continue;
      this.journalWrite({ t: 'sub', group: g.id, topic: t });
      g.topics.add(t);
    }
    return this.rebalance(g);
  }

  leave(c: MemoryConsumer): Promise<void> {
    const g = this.group(c.groupId);
    const i = g.members.indexOf(c);
    if (i >= 0) g.members.splice(i, 1);
    g.lastSeen = Date.now();
    this.consumers.delete(c);
    if (c.ephemeral && g.members.length === 0 && g.topics.size === 0 && g.committed.size === 0) this.groups.delete(g.id);
    g.chain = g.chain.then(() => c.revokeExcept(new Set()));
    return this.rebalance(g);
  }

  forgetProducer(p: MemoryProducer): void {
    this.producers.delete(p);
  }

  private rebalance(g: Group): Promise<void> {
    g.chain = g.chain.then(() => this.doRebalance(g));
    return g.chain;
  }

  /** Range-style assignment per topic over members in join order; only what moves is revoked. */
  private async doRebalance(g: Group): Promise<void> {
    rebalances.inc({ bus: 'memory', group: g.id });
    const target = new Map<MemoryConsumer, Set<string>>(g.members.map((m) => [m, new Set<string>()]));
    const topics = [...new Set(g.members.flatMap((m) => m.topics))].sort();
    for (const topic of topics) {
      const t = this.topics.get(topic);
      if (!t) continue;
      const subs = g.members.filter((m) => m.topics.includes(topic)).sort((a, b) => a.seq - b.seq);
      for (let p = 0; p < t.partitions.length; p++) target.get(subs[p % subs.length]!)!.add(tpKey(topic, p));
    }
    await Promise.all(g.members.map((m) => m.revokeExcept(target.get(m)!)));
    for (const m of g.members) await m.assign(target.get(m)!, g.committed);
    this.signal.notify();
  }
}

class MemoryProducer implements BusProducer {
  private open: MemoryTransaction | null = null;
  private closed = false;

  constructor(private readonly bus: MemoryBus, readonly transactionalId: string | undefined, readonly epoch: number) {}

  async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    // Like kafkajs, a plain send on a transactional producer is outside any open transaction.
    this.assertUsable();
    checkMessages(topic, messages);
    this.bus.append([{ topic, messages }]);
  }

  async transaction(): Promise<BusTransaction> {
    this.assertUsable();
    const id = this.transactionalId;
    if (id === undefined) throw new BusError('transaction() needs a producer created with a transactionalId');
    if (this.open) throw new BusError('a transaction is already open on this producer', { transactionalId: id });
    if (this.bus.isFenced(id, this.epoch)) throw new BusError('producer fenced: a newer producer uses this transactionalId', { transactionalId: id });
    this.open = new MemoryTransaction(this.bus, id, this.epoch, () => {
      this.open = null;
    });
    return this.open;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.open) await this.open.abort();
    this.closed = true;
    this.bus.forgetProducer(this);
  }

  private assertUsable(): void {
    if (this.closed) throw new BusError('producer is closed', { transactionalId: this.transactionalId });
    this.bus.assertOpen();
  }
}

class MemoryTransaction implements BusTransaction {
  private readonly batches: Array<{ topic: string; messages: readonly OutMessage[] }> = [];
  private readonly offsets: Array<{ groupId: string; offsets: readonly TopicPartitionOffset[] }> = [];
  private done = false;

  constructor(private readonly bus: MemoryBus, private readonly id: string, private readonly epoch: number, private readonly finished: () => void) {}

  async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    this.assertActive();
    this.bus.topic(topic);
    checkMessages(topic, messages);
    this.bus.checkPartitions(topic, messages);
    // Copies, so a caller reusing its array cannot change what the transaction commits.
    this.batches.push({ topic, messages: messages.map((m) => ({ ...m })) });
  }

  async sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    this.assertActive();
    for (const o of offsets) this.bus.topic(o.topic);
    this.offsets.push({ groupId, offsets: offsets.map((o) => ({ ...o })) });
  }

  async commit(): Promise<void> {
    this.assertActive();
    this.done = true;
    this.finished();
    this.bus.append(this.batches, this.offsets);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.finished();
  }

  private assertActive(): void {
    if (this.done) throw new BusError('transaction already committed or aborted', { transactionalId: this.id });
    if (this.bus.isFenced(this.id, this.epoch)) {
      this.done = true;
      this.finished();
      throw new BusError('producer fenced: a newer producer uses this transactionalId', { transactionalId: this.id });
    }
  }
}

interface Owned {
  readonly topic: string;
  readonly partition: number;
  /** Next offset to deliver. */
  position: number;
  revoked: boolean;
}

class MemoryConsumer implements BusConsumer {
  topics: string[] = [];
  readonly groupId: string;
  private readonly owned = new Map<string, Owned>();
  private handlers: ConsumerHandlers | null = null;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private inflight: Promise<void> | null = null;
  private loopDone: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private cursor = 0;
  /** Cuts a retry backoff short when the partition is revoked or the consumer stops. */
  private interrupt: (() => void) | null = null;

  constructor(private readonly bus: MemoryBus, private readonly opts: ConsumerOptions, readonly seq: number) {
    this.groupId = opts.groupId;
  }

  get ephemeral(): boolean {
    return this.opts.ephemeral === true;
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    if (this.state !== 'idle') throw new BusError('subscribe before run()', { group: this.groupId });
    for (const t of topics) this.bus.topic(t);
    this.topics = [...new Set([...this.topics, ...topics])];
  }

  async run(handlers: ConsumerHandlers): Promise<void> {
    if (this.state !== 'idle') throw new BusError('consumer already running or stopped', { group: this.groupId });
    if (this.topics.length === 0) throw new BusError('run() before subscribe()', { group: this.groupId });
    this.handlers = handlers;
    this.state = 'running';
    await this.bus.join(this);
    this.loopDone = this.loop();
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    this.bus.assertOpen();
    if (this.ephemeral) throw new BusError('an ephemeral reader does not commit', { group: this.groupId });
    this.bus.commitOffsets(this.groupId, offsets);
  }

  assignment(): readonly TopicPartition[] {
    return [...this.owned.values()].filter((o) => !o.revoked).map(({ topic, partition }) => ({ topic, partition }));
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.interrupt?.();
    this.bus.signal.notify();
    await this.loopDone;
    // Leaving the group revokes everything this member owned (onRevoked runs), then the rest rebalance.
    await this.bus.leave(this);
    this.state = 'stopped';
  }

  /** Called by the group: gives up every partition not in `keep`, after its in-flight batch ends. */
  async revokeExcept(keep: Set<string>): Promise<void> {
    const lost = [...this.owned.entries()].filter(([k]) => !keep.has(k));
    if (lost.length === 0) return;
    for (const [, o] of lost) o.revoked = true;
    this.interrupt?.();
    await this.inflight;
    for (const [k, o] of lost) {
      this.owned.delete(k);
      // a partition this member no longer reads has no lag here (its new owner reports it)
      M.busLag.remove({ group: this.groupId, topic: o.topic, partition: o.partition });
    }
    await this.callHook('onRevoked', lost.map(([, o]) => ({ topic: o.topic, partition: o.partition })));
  }

  /** Called by the group: takes the partitions in `target` not owned yet, at the committed offsets. */
  async assign(target: Set<string>, committed: Map<string, number>): Promise<void> {
    const gained: TopicPartition[] = [];
    for (const k of target) {
      if (this.owned.has(k)) continue;
      const [topic, p] = k.split('\u0000') as [string, string];
      const partition = Number(p);
      const plog = this.bus.partitionLog(topic, partition)!;
      const c = committed.get(k);
      const position = c !== undefined ? c : this.opts.fromBeginning === false ? plog.end : plog.start;
      this.owned.set(k, { topic, partition, position, revoked: false });
      gained.push({ topic, partition });
    }
    if (gained.length > 0) await this.callHook('onAssigned', gained);
  }

  private async callHook(name: 'onAssigned' | 'onRevoked', parts: TopicPartition[]): Promise<void> {
    try {
      await this.handlers?.[name]?.(parts);
    } catch (err) {
      // A failing hook must not wedge the group; it is counted and logged with what it was given.
      M.errors.inc({ component: 'bus', kind: name });
      log.error({ err, group: this.groupId, partitions: parts }, `${name} handler failed`);
    }
  }

  private async loop(): Promise<void> {
    while (this.state === 'running') {
      const next = this.nextBatch();
      if (!('batch' in next)) {
        await this.bus.signal.wait(next.lingerMs);
        continue;
      }
      this.inflight = this.deliver(next.owned, next.batch);
      await this.inflight;
      this.inflight = null;
    }
  }

  /**
   * Round-robin over owned partitions so one busy partition cannot starve the others. With nothing to
   * deliver, says how soon a lingering batch is due (undefined: when a message arrives).
   */
  private nextBatch(): { owned: Owned; batch: ConsumedBatch } | { lingerMs?: number } {
    const all = [...this.owned.values()];
    const linger = this.opts.linger;
    let lingerMs: number | undefined;
    for (let i = 0; i < all.length; i++) {
      const o = all[(this.cursor + i) % all.length]!;
      if (o.revoked) continue;
      const plog = this.bus.partitionLog(o.topic, o.partition)!;
      // Retention may have dropped what this position points at: resume at the log start (auto.offset.reset=earliest).
      if (o.position < plog.start) o.position = plog.start;
      if (o.position >= plog.end) continue;
      const { entries, bytes } = plog.read(o.position, this.opts.maxBytesPerPartition ?? DEFAULT_MAX_BYTES, this.bus.opts.maxBatchMessages);
      if (entries.length === 0) {
        o.position = plog.end;
        continue;
      }
      if (linger) {
        const waited = Date.now() - entries[0]!.appendedAt;
        const full = entries.length >= this.bus.opts.maxBatchMessages || entries[entries.length - 1] !== plog.entries[plog.entries.length - 1] || bytes >= linger.minBytes;
        if (waited < linger.maxWaitMs && !full) {
          lingerMs = Math.min(lingerMs ?? Infinity, linger.maxWaitMs - waited);
          continue;
        }
      }
      this.cursor = (this.cursor + i + 1) % all.length;
      const messages: InMessage[] = entries.map((e) => ({
        topic: o.topic,
        partition: o.partition,
        offset: String(e.offset),
        key: e.key,
        value: e.value,
        headers: e.headers,
        timestamp: e.timestamp,
      }));
      return { owned: o, batch: { topic: o.topic, partition: o.partition, messages, highWatermark: String(plog.end) } };
    }
    return lingerMs === undefined ? {} : { lingerMs };
  }

  private async deliver(o: Owned, batch: ConsumedBatch): Promise<void> {
    const ctx: BatchContext = {
      heartbeat: async () => {},
      isRunning: () => this.state === 'running' && !o.revoked,
    };
    const last = Number(batch.messages[batch.messages.length - 1]!.offset);
    for (let attempt = 0; ; attempt++) {
      if (!ctx.isRunning()) return;
      try {
        await this.handlers!.eachBatch(batch, ctx);
        if (o.revoked) return;
        o.position = Math.max(o.position, last + 1);
        M.busLag.set({ group: this.groupId, topic: batch.topic, partition: batch.partition }, Math.max(0, (this.bus.partitionLog(batch.topic, batch.partition)?.end ?? 0) - last - 1));
        return;
      } catch (err) {
        batchRetries.inc({ bus: 'memory', group: this.groupId, topic: batch.topic });
        M.errors.inc({ component: 'bus', kind: 'batch_failed' });
        const backoff = Math.min(this.bus.opts.retryMaxMs, this.bus.opts.retryMinMs * 2 ** attempt);
        log.warn({ err, group: this.groupId, topic: batch.topic, partition: batch.partition, offset: batch.messages[0]!.offset, attempt, backoffMs: backoff }, 'eachBatch failed; retrying the same batch');
        await this.pause(backoff);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        self.interrupt = null;
        resolve();
      }
      this.interrupt = done;
    });
  }
}
