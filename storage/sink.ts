import type { Bus, BusConsumer, ConsumedBatch, BatchContext, TopicPartition } from '../core/bus.js';
import type { Config } from '../core/config.js';
import type { Labels } from '../core/types.js';
import { TOPICS } from '../core/types.js';
import { decodeBatch, decodeEvent } from '../core/codec.js';
// Operator commands (acks, silences) ride on the samples topic for the processors; they hold no rows.
import { isCommandMessage } from '../processors/commands.js';
import { createLogger, type Logger } from '../core/log.js';
import { M, counter } from '../core/metrics.js';
import type { ClickHouse } from './clickhouse.js';
import { TsvBuilder } from './tsv.js';
import { SeriesIndex, LabelSetSeries, writeSampleRow, seriesRow, eventRow, validTs, SAMPLE_COLUMNS, type SeriesInfo } from './rows.js';
import { str } from './query.js';

/**
 * The sink: samples and events from the bus into ClickHouse, exactly once.
 *
 * Per partition it buffers rows and flushes on `maxRows` or `maxDelayMs`: one insert per table,
 * then the offset commit, never before ClickHouse acknowledged. Flushes run one at a time, in order,
 * so a partition's commits only move forward over inserted ranges.
 *
 * Exactly once (full profile): each insert carries insert_deduplication_token =
 * group/topic/partition/first-last offsets, and the range is written to `sink_ledger` BEFORE the
 * insert. A sink that takes over a partition (restart, crash, rebalance) reads the ledger entries at
 * or beyond where it starts and re-forms exactly those ranges first, so a retried insert carries the
 * same token and ClickHouse drops it (tables keep non_replicated_deduplication_window tokens).
 *
 * Legacy profile (servers without tokens): no ledger; samples/events/series are ReplacingMergeTree
 * keyed by their identity, so a replayed range collapses on merge. Count them with FINAL.
 *
 * While ClickHouse is unreachable a flush retries with exponential backoff and jitter; the buffer
 * is kept, and once `maxBufferedRows` are waiting, eachBatch waits (the bus stops fetching).
 */

export interface SinkOptions {
  readonly bus: Bus;
  readonly ch: ClickHouse;
  readonly cfg: Config['sink'];
  readonly log?: Logger;
  /** Rows buffered (all partitions) before consumption pauses; default 4 x maxRows. */
  readonly maxBufferedRows?: number;
  /** How often a known series' last_seen is refreshed in the inventory (ms); default 1 h. */
  readonly seriesRefreshMs?: number;
  /** Test hook: called after the inserts of a range and before its commit. */
  readonly beforeCommit?: (range: FlushRange) => void | Promise<void>;
}

/** One flushed range of one partition. */
export interface FlushRange {
  readonly topic: string;
  readonly partition: number;
  readonly first: number;
  readonly last: number;
  readonly rows: number;
}

const YIELD_EVERY_ROWS = 5_000;

const SUBSCRIBED = [TOPICS.samples, TOPICS.events] as const;

const flushes = counter('noctua_sink_flushes_total', 'Sink flushes by reason', ['reason']);
const replayedRanges = counter('noctua_sink_replayed_ranges_total', 'Ledger ranges re-formed after a takeover', ['topic']);

interface Ledger {
  readonly first: number;
  readonly last: number;
}

/** What one partition has buffered since its last flush. */
class PartitionBuffer {
  first = -1;
  last = -1;
  /** Rows of every table in the buffer (samples + events), for flush triggers and backpressure. */
  rows = 0;
  startedAt = 0;
  readonly samples = new TsvBuilder(1 << 16);
  events: Record<string, unknown>[] = [];
  /** Series to upsert into the inventory with this range, by id. */
  series = new Map<string, { info: SeriesInfo; lastSeen: number }>();
  /** Ledger ranges still to re-form, in order (takeover recovery). */
  replay: Ledger[] = [];
  ledgerLoaded = false;
  /** Bumped when the partition is revoked: in-flight work of an older epoch must not commit. */
  epoch = 0;
  /** Next offset expected; a redelivered batch (after a retry) skips what is already buffered. */
  next = -1;

  constructor(readonly topic: string, readonly partition: number) {}

  get empty(): boolean {
    return this.first < 0;
  }

  take(): Snapshot {
    const snap: Snapshot = {
      topic: this.topic,
      partition: this.partition,
      first: this.first,
      last: this.last,
      rows: this.rows,
      sampleRows: this.samples.rows,
      samples: this.samples.take(),
      events: this.events,
      series: [...this.series.values()],
      epoch: this.epoch,
      replayed: false,
    };
    this.first = -1;
    this.last = -1;
    this.rows = 0;
    this.events = [];
    this.series = new Map();
    return snap;
  }
}

interface Snapshot extends FlushRange {
  readonly sampleRows: number;
  readonly samples: Buffer;
  readonly events: Record<string, unknown>[];
  readonly series: Array<{ info: SeriesInfo; lastSeen: number }>;
  readonly epoch: number;
  /** The range came from the ledger: it is already recorded there. */
  replayed: boolean;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class Sink {
  private readonly bus: Bus;
  private readonly ch: ClickHouse;
  private readonly cfg: Config['sink'];
  private readonly log: Logger;
  private readonly maxBufferedRows: number;
  private readonly seriesRefreshMs: number;
  private readonly index = new SeriesIndex();
  private readonly parts = new Map<string, PartitionBuffer>();
  private consumer: BusConsumer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Rows in buffers plus rows in queued/in-flight flushes. */
  private pendingRows = 0;
  private waiters: Array<() => void> = [];
  private state: 'idle' | 'running' | 'stopping' | 'stopped' | 'dead' = 'idle';
  private wakeRetry: (() => void) | null = null;
  /** The flush attempt in progress, if any. */
  private attempt: { key: string; done: Promise<void> } | null = null;
  /** Epochs are unique per sink so a stale flush never matches a partition assigned again later. */
  private epochSeq = 0;

  constructor(private readonly opts: SinkOptions) {
    this.bus = opts.bus;
    this.ch = opts.ch;
    this.cfg = opts.cfg;
    this.log = opts.log ?? createLogger(undefined, 'sink');
    this.maxBufferedRows = opts.maxBufferedRows ?? this.cfg.maxRows * 4;
    this.seriesRefreshMs = opts.seriesRefreshMs ?? 3_600_000;
  }

  get groupId(): string {
    return this.cfg.groupId;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`sink ${this.groupId} already started`);
    this.state = 'running';
    const c = this.bus.consumer({ groupId: this.groupId, fromBeginning: true });
    this.consumer = c;
    await c.subscribe([...SUBSCRIBED]);
    this.timer = setInterval(() => this.flushDue(), Math.max(10, Math.floor(this.cfg.maxDelayMs / 4)));
    this.timer.unref();
    await c.run({
      eachBatch: (b, ctx) => this.eachBatch(b, ctx),
      onAssigned: (tps) => this.onAssigned(tps),
      onRevoked: (tps) => this.onRevoked(tps),
    });
  }

  /**
   * Graceful: stop taking messages, flush and commit everything buffered, leave the group.
   * While ClickHouse is unreachable the flush keeps retrying; after `timeoutMs` (default: no limit)
   * the sink gives up like kill(): what was not committed is re-read by the next owner.
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.wake();
    for (const b of this.parts.values()) if (!b.empty) this.enqueue(b, 'stop');
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      this.chain.then(() => true),
      new Promise<boolean>((r) => {
        if (opts.timeoutMs !== undefined) timer = setTimeout(() => r(false), opts.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!flushed) {
      this.log.warn({ group: this.groupId, pendingRows: this.pendingRows, timeoutMs: opts.timeoutMs }, 'stop: flush did not finish in time; leaving uncommitted rows to the next owner');
      await this.kill();
      this.state = 'stopped';
      return;
    }
    if (this.timer) clearInterval(this.timer);
    await this.consumer?.stop();
    this.state = 'stopped';
  }

  /**
   * Stops as a crash would: nothing more is flushed or committed, the group membership ends.
   * For tests and for a process that must exit now; what was not committed is re-read by the next owner.
   */
  async kill(): Promise<void> {
    if (this.state === 'dead' || this.state === 'stopped') return;
    this.state = 'dead';
    if (this.timer) clearInterval(this.timer);
    this.wake();
    await this.consumer?.stop();
  }

  private get alive(): boolean {
    return this.state === 'running' || this.state === 'stopping';
  }

  private buffer(topic: string, partition: number): PartitionBuffer {
    const k = key(topic, partition);
    let b = this.parts.get(k);
    if (!b) {
      b = new PartitionBuffer(topic, partition);
      b.epoch = ++this.epochSeq;
      this.parts.set(k, b);
    }
    return b;
  }

  private onAssigned(tps: readonly TopicPartition[]): void {
    // The ledger is read on the partition's first batch, where the start offset is known.
    for (const tp of tps) {
      const b = this.buffer(tp.topic, tp.partition);
      b.ledgerLoaded = false;
      b.next = -1;
    }
  }

  private async onRevoked(tps: readonly TopicPartition[]): Promise<void> {
    for (const tp of tps) {
      const k = key(tp.topic, tp.partition);
      const b = this.parts.get(k);
      if (!b) continue;
      // Uncommitted rows go: the new owner re-reads them from the committed offset.
      this.release(b.rows);
      b.epoch = ++this.epochSeq;
      b.take();
      b.replay = [];
      b.ledgerLoaded = false;
      this.parts.delete(k);
    }
    // A flush of a revoked partition may be mid-attempt: let that attempt end (its ledger row must be
    // visible before the new owner reads the ledger); it will neither retry nor commit.
    this.wakeRetry?.();
    const a = this.attempt;
    if (a && tps.some((tp) => key(tp.topic, tp.partition) === a.key)) await a.done.catch(() => undefined);
  }

  private async loadLedger(b: PartitionBuffer, from: number): Promise<void> {
    if (this.ch.profile !== 'full') {
      b.ledgerLoaded = true;
      return;
    }
    const sql =
      `SELECT toString(first) AS f, toString(last) AS l FROM ${this.ch.database}.sink_ledger FINAL ` +
      `WHERE consumer_group = ${str(this.groupId)} AND topic = ${str(b.topic)} AND partition = ${b.partition} AND last >= ${from} ORDER BY first`;
    const rs = await this.ch.client.query({ query: sql, format: 'JSONEachRow' });
    const rows = await rs.json<{ f: string; l: string }>();
    b.replay = rows.map((r) => ({ first: Number(r.f), last: Number(r.l) }));
    b.ledgerLoaded = true;
    if (b.replay.length > 0) {
      this.log.info({ group: this.groupId, topic: b.topic, partition: b.partition, from, ranges: b.replay.length }, 're-forming ledger ranges after takeover');
    }
  }

  private async eachBatch(batch: ConsumedBatch, ctx: BatchContext): Promise<void> {
    if (this.state !== 'running' || batch.messages.length === 0) return;
    const b = this.buffer(batch.topic, batch.partition);
    const epoch = b.epoch;
    const firstOffset = Number(batch.messages[0]!.offset);
    if (!b.ledgerLoaded) {
      // Throws while ClickHouse is unreachable: the bus retries this batch with backoff.
      await this.loadLedger(b, firstOffset);
    }
    const isSamples = batch.topic === TOPICS.samples;
    let sinceYield = 0;
    for (const m of batch.messages) {
      if (this.state !== 'running' || b.epoch !== epoch) return;
      const off = Number(m.offset);
      if (b.next >= 0 && off < b.next) continue; // redelivered after a retry: already buffered
      b.next = off + 1;
      // Takeover ranges: forget those wholly behind us, close a range whose last offset is missing
      // from the log (ranges end where the ledger says), and never let a plain buffer run into one.
      let r = b.replay[0];
      while (r && r.last < off && (b.empty || b.first > r.last)) {
        b.replay.shift();
        r = b.replay[0];
      }
      if (r && !b.empty) {
        if (b.first === r.first && off > r.last) this.cut(b, 'replay');
        else if (b.first < r.first && off >= r.first) this.cut(b, 'rows');
        r = b.replay[0];
      }
      if (b.empty) {
        b.first = r && r.first <= off ? r.first : off;
        b.startedAt = Date.now();
      }
      b.last = off;
      const added = isSamples ? (isCommandMessage(m) ? 0 : this.addSamples(b, m.value, m.partition, m.offset)) : this.addEvent(b, m.value, m.partition, m.offset);
      b.rows += added;
      this.pendingRows += added;
      if (this.replaying(b)) {
        if (off >= b.replay[0]!.last) this.cut(b, 'replay');
      } else if (b.rows >= this.cfg.maxRows) this.cut(b, 'rows');
      // Let flush steps that are waiting on the event loop run: a batch can hold 100k+ samples.
      if ((sinceYield += added) >= YIELD_EVERY_ROWS) {
        sinceYield = 0;
        await new Promise<void>((r) => setImmediate(r));
      }
      while (this.pendingRows >= this.maxBufferedRows && !this.replaying(b) && this.state === 'running' && b.epoch === epoch) {
        await this.waitForRoom();
        await ctx.heartbeat();
      }
    }
  }

  private reject(topic: string, partition: number, offset: string, reason: string, detail: string): void {
    M.rejected.inc({ topic, reason });
    this.log.warn({ topic, partition, offset, reason }, `skipping message: ${detail}`);
  }

  private addSamples(b: PartitionBuffer, value: Buffer | null, partition: number, offset: string): number {
    if (!value || value.length === 0) {
      this.reject(b.topic, partition, offset, 'empty', 'empty sample batch message');
      return 0;
    }
    let batch;
    try {
      batch = decodeBatch(value);
    } catch (err) {
      this.reject(b.topic, partition, offset, 'decode', (err as Error).message);
      return 0;
    }
    const profile = this.ch.profile;
    const sets = new Map<Labels, LabelSetSeries>();
    const refresh = this.seriesRefreshMs;
    let rows = 0;
    let badTs = 0;
    for (const s of batch.samples) {
      if (!validTs(s.ts)) {
        badTs++;
        continue;
      }
      let set = sets.get(s.labels);
      if (set === undefined) sets.set(s.labels, (set = this.index.labelSet(batch.device, s.labels)));
      const info = set.get(s.metric);
      writeSampleRow(b.samples, profile, info, s.ts, s.value);
      rows++;
      if (info.upsertedTs < 0 || s.ts - info.upsertedTs >= refresh) {
        const pending = b.series.get(info.id);
        if (!pending) b.series.set(info.id, { info, lastSeen: s.ts });
        else if (s.ts > pending.lastSeen) pending.lastSeen = s.ts;
      }
    }
    if (badTs > 0) {
      M.rejected.inc({ topic: b.topic, reason: 'ts_out_of_range' }, badTs);
      this.log.warn({ topic: b.topic, partition, offset, device: batch.device, samples: badTs }, 'skipping samples with a timestamp out of range');
    }
    return rows;
  }

  private addEvent(b: PartitionBuffer, value: Buffer | null, partition: number, offset: string): number {
    if (!value || value.length === 0) {
      this.reject(b.topic, partition, offset, 'empty', 'empty event message');
      return 0;
    }
    try {
      const e = decodeEvent(value);
      if (!validTs(e.ts)) {
        this.reject(b.topic, partition, offset, 'ts_out_of_range', `event ${e.id} ts ${e.ts} out of range`);
        return 0;
      }
      b.events.push(eventRow(this.ch.profile, e));
      return 1;
    } catch (err) {
      this.reject(b.topic, partition, offset, 'decode', (err as Error).message);
      return 0;
    }
  }

  private flushDue(): void {
    if (this.state !== 'running') return;
    const now = Date.now();
    for (const b of this.parts.values()) {
      // A takeover range is only flushed whole.
      if (!b.empty && !this.replaying(b) && now - b.startedAt >= this.cfg.maxDelayMs) this.cut(b, 'time');
    }
  }

  /** True while the buffer is re-forming a ledger range. */
  private replaying(b: PartitionBuffer): boolean {
    return !b.empty && b.replay.length > 0 && b.replay[0]!.first === b.first;
  }

  private cut(b: PartitionBuffer, reason: string): void {
    if (b.empty) return;
    this.enqueue(b, reason);
  }

  private enqueue(b: PartitionBuffer, reason: string): void {
    const replayed = this.replaying(b);
    if (replayed && reason !== 'replay') {
      // Stopping in the middle of a takeover range: flushing part of it under the range's token
      // and committing its end would skip the rest. Drop it; the next owner re-forms it whole.
      this.release(b.rows);
      b.take();
      return;
    }
    const snap = b.take();
    if (replayed) {
      // The ledger's bounds, not the offsets seen: that is what the earlier attempt's token used.
      const r = b.replay.shift()!;
      (snap as { last: number }).last = r.last;
      snap.replayed = true;
      replayedRanges.inc({ topic: b.topic });
    }
    flushes.inc({ reason });
    this.chain = this.chain.then(() => this.flush(snap));
  }

  private release(rows: number): void {
    this.pendingRows = Math.max(0, this.pendingRows - rows);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private waitForRoom(): Promise<void> {
    return new Promise((r) => {
      this.waiters.push(r);
      // Heartbeat at least every few seconds while waiting.
      setTimeout(r, 3000).unref();
    });
  }

  private stillOwned(s: Snapshot): boolean {
    const b = this.parts.get(key(s.topic, s.partition));
    if (!this.alive || b === undefined || b.epoch !== s.epoch) return false;
    // The bus's own view as well: with Kafka's eager rebalances onRevoked comes after the rejoin.
    return this.consumer?.assignment().some((tp) => tp.topic === s.topic && tp.partition === s.partition) ?? false;
  }

  private token(s: Snapshot): string {
    return `${this.groupId}/${s.topic}/${s.partition}/${s.first}-${s.last}`;
  }

  private async flush(s: Snapshot): Promise<void> {
    let attempt = 0;
    const done = { ledger: false, samples: false, events: false, series: false };
    const k = key(s.topic, s.partition);
    try {
      while (this.stillOwned(s)) {
        const run = this.tryFlush(s, done);
        this.attempt = { key: k, done: run };
        try {
          await run;
          return;
        } catch (err) {
          if (!this.stillOwned(s)) return;
          const delay = backoff(attempt++, this.cfg.retryMinMs, this.cfg.retryMaxMs);
          M.errors.inc({ component: 'sink', kind: 'flush' });
          this.log.warn(
            { err: (err as Error).message, group: this.groupId, topic: s.topic, partition: s.partition, first: s.first, last: s.last, rows: s.rows, attempt, retryInMs: delay },
            'flush failed; retrying',
          );
          await this.sleep(delay);
        } finally {
          this.attempt = null;
        }
      }
    } finally {
      this.release(s.rows);
    }
  }

  /** One attempt: the inserts not done yet, then the commit (only while the partition is ours). */
  private async tryFlush(s: Snapshot, done: { ledger: boolean; samples: boolean; events: boolean; series: boolean }): Promise<void> {
    await this.insertAll(s, done);
    if (!this.stillOwned(s)) return;
    await this.opts.beforeCommit?.(s);
    if (!this.stillOwned(s)) return;
    await this.commit(s);
    for (const x of s.series) x.info.upsertedTs = Math.max(x.info.upsertedTs, x.lastSeen);
  }

  private async insertAll(s: Snapshot, done: { ledger: boolean; samples: boolean; events: boolean; series: boolean }): Promise<void> {
    const ch = this.ch;
    const db = ch.database;
    const full = ch.profile === 'full';
    const settings = full ? { insert_deduplication_token: this.token(s) } : undefined;
    if (full && !s.replayed && !done.ledger) {
      await ch.insertRows(`${db}.sink_ledger`, [{ consumer_group: this.groupId, topic: s.topic, partition: s.partition, first: s.first, last: s.last }]);
      done.ledger = true;
    }
    if (s.sampleRows > 0 && !done.samples) {
      // Serial parsing: same blocks (so same dedup block ids) on every retry, and less CPU than the
      // parallel parser on a busy machine (benchmarks/sink.ts).
      const sampleSettings = ch.embedded ? { ...settings, input_format_parallel_parsing: 0 } : settings;
      await this.timed('samples', s.sampleRows, () => ch.insertTsv(`${db}.samples`, SAMPLE_COLUMNS[ch.profile], s.samples, sampleSettings));
      done.samples = true;
    }
    if (s.events.length > 0 && !done.events) {
      await this.timed('events', s.events.length, () => ch.insertRows(`${db}.events`, s.events, settings));
      done.events = true;
    }
    if (s.series.length > 0 && !done.series) {
      // ReplacingMergeTree(last_seen): a repeated upsert collapses, no token needed.
      const rows = s.series.map((x) => seriesRow(ch.profile, x.info, x.lastSeen));
      await this.timed('series', rows.length, () => ch.insertRows(`${db}.series`, rows));
      done.series = true;
    }
  }

  private async timed(table: string, rows: number, op: () => Promise<void>): Promise<void> {
    const end = M.sinkInsertSeconds.startTimer({ table });
    try {
      await op();
    } catch (err) {
      M.sinkRetries.inc({ table });
      throw err;
    } finally {
      end();
    }
    M.sinkBatchRows.observe({ table }, rows);
    M.sinkRows.inc({ table }, rows);
  }

  private async commit(s: Snapshot): Promise<void> {
    await this.consumer!.commit([{ topic: s.topic, partition: s.partition, offset: String(s.last + 1) }]);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.wakeRetry === done) self.wakeRetry = null;
        resolve();
      }
      this.wakeRetry = done;
    });
  }
}

/** Exponential backoff with full jitter between min and the capped exponential. */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(minMs + Math.random() * Math.max(0, cap - minMs));
}
