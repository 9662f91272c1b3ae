import { counter, gauge, M } from '../core/metrics.js';
import type { Logger } from '../core/log.js';
import { Spool } from './spool.js';

/**
 * What a source has polled and the bus has not yet taken: held in order and retried until the bus takes
 * it, so a broker restart or an outage longer than the client's own retries (about a minute) delays
 * polls instead of dropping them, as Telegraf's output buffer does. Bounded in bytes: beyond the bound
 * the oldest waiting items go first, counted and logged (a poller must not die of a long outage).
 *
 * One send at a time, in order: everything waiting goes in the next send (up to maxBatch items of one
 * lane, e.g. one topic), so a slow bus gets fewer, larger requests instead of a pile of parallel ones.
 *
 * With a spool (spool.ts), what is held while the bus does not take it is also on disk: from a send
 * that failed or has waited SPILL_AFTER_MS (the Kafka client itself retries for about a minute before
 * it fails) until everything held then was taken, and whatever a shutdown could not send. A process
 * killed during a broker outage sends it when it starts again, before anything new.
 */
export interface OutboxOptions<T> {
  /** The source's name: metric label and log context. */
  readonly source: string;
  /** Sends items of one lane, in order; throws when the bus did not take them (all are retried). */
  readonly send: (items: readonly T[]) => Promise<void>;
  /** Bytes an item holds (for the bound). */
  readonly bytes: (item: T) => number;
  /** Items of different lanes never share a send (a send's retry must not repeat another lane's success). */
  readonly lane?: (item: T) => string;
  /** Called before a send that follows a failed one: e.g. a new producer, or dropping what the failure committed after all. */
  readonly recover?: (items: T[]) => Promise<T[]>;
  /** Log context for a batch that failed (device, topic). */
  readonly describe?: (items: readonly T[]) => Record<string, unknown>;
  readonly maxBytes?: number;
  readonly maxBatch?: number;
  /**
   * Bytes in one send (at least one item). The held polls of an outage go out in several sends: the
   * broker refuses a record batch over message.max.bytes (1 MB by default), and a batch it refuses
   * would be retried for ever.
   */
  readonly maxBatchBytes?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly log?: Logger;
  /** Where held items go on disk while the bus is away, and their form there (null: an item that needs none, e.g. a line its file still holds). */
  readonly spool?: SpoolOptions<T>;
}

export interface SpoolOptions<T> {
  readonly dir: string;
  readonly encode: (item: T) => Buffer | null;
  /** Throws on a frame it cannot read (counted and skipped). */
  readonly decode: (frame: Buffer) => T;
}

interface Entry<T> {
  readonly item: T;
  readonly size: number;
  /** Written to the spool (the spooled entries are a prefix of the queue's encodable ones, in order). */
  spooled: boolean;
  /** Left the queue (taken by the bus, dropped): never to be spooled. */
  gone?: boolean;
}

export const OUTBOX_MAX_BYTES = 128 * 1024 * 1024;
export const OUTBOX_MAX_BATCH_BYTES = 512 * 1024;
/** A send not answered for this long puts what is held on disk (with a spool). */
export const SPILL_AFTER_MS = 2_000;

const heldItems = gauge('noctua_outbox_held_items', 'Polled items waiting for the bus to take them', ['source']);
const heldBytes = gauge('noctua_outbox_held_bytes', 'Bytes of polled items waiting for the bus', ['source']);
const retries = counter('noctua_outbox_retries_total', 'Sends to the bus retried after a failure', ['source']);
const dropped = counter('noctua_outbox_dropped_total', 'Polled items dropped: the outbox was full, or a shutdown could not wait for the bus', ['source']);

export class Outbox<T> {
  private queue: Entry<T>[] = [];
  private bytesHeld = 0;
  /** Items at the head of the queue in the send under way (never dropped: the bus may be taking them). */
  private inFlight = 0;
  /** Set and cleared inside pump() itself, so a push never finds a pump that has already left its loop. */
  private pumping = false;
  private pumped: Promise<void> = Promise.resolve();
  private failedSince: number | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly maxBytes: number;
  private droppedLoggedAt = -Infinity;
  private droppedUnlogged = 0;
  private readonly spool: Spool | null = null;
  private spillScheduled = false;
  /** Pushed while spilling and not yet written (a spill of these alone is not a scan of the whole queue). */
  private toSpill: Entry<T>[] = [];
  /** A send has waited SPILL_AFTER_MS: until one succeeds, pushes go to disk as in a failure. */
  private slow = false;

  constructor(private readonly o: OutboxOptions<T>) {
    this.maxBytes = o.maxBytes ?? OUTBOX_MAX_BYTES;
    if (o.spool) {
      const opened = Spool.open(o.spool.dir, o.source, o.log);
      if (opened) {
        this.spool = opened.spool;
        for (const frame of opened.pending) {
          let item: T;
          try {
            item = o.spool.decode(frame);
          } catch (err) {
            M.errors.inc({ component: o.source, kind: 'spool_decode' });
            o.log?.warn({ source: o.source, spool: o.spool.dir, err: (err as Error).message }, 'outbox spool: an unreadable item skipped');
            continue;
          }
          const size = o.bytes(item);
          this.queue.push({ item, size, spooled: true });
          this.bytesHeld += size;
        }
        // Frames skipped above are not in the queue: the file must hold exactly the spooled entries.
        if (this.queue.length !== opened.pending.length) this.respool();
        if (this.queue.length > 0) o.log?.info({ source: o.source, items: this.queue.length, bytes: this.bytesHeld }, 'outbox: sending first what the bus had not taken before the last stop');
        this.gauges();
        this.kick();
      }
    }
  }

  get held(): number {
    return this.queue.length;
  }

  /** Bytes waiting (a source that can wait, such as a followed file, reads on when this is low again). */
  get bytes(): number {
    return this.bytesHeld;
  }

  push(item: T): void {
    if (this.closed) {
      dropped.inc({ source: this.o.source });
      return;
    }
    const size = this.o.bytes(item);
    const entry: Entry<T> = { item, size, spooled: false };
    this.queue.push(entry);
    this.bytesHeld += size;
    if (this.bytesHeld > this.maxBytes) this.dropOldest();
    if (this.spool && (this.failedSince !== null || this.slow)) {
      this.toSpill.push(entry);
      this.spillSoon();
    }
    this.gauges();
    this.kick();
  }

  /** Pushes during an outage go to disk together, once per turn of the event loop (not a write each). */
  private spillSoon(): void {
    if (!this.spool || this.spillScheduled) return;
    this.spillScheduled = true;
    setImmediate(() => {
      this.spillScheduled = false;
      const list = this.toSpill;
      this.toSpill = [];
      if (!this.closed) this.spill(list);
    });
  }

  /** Writes the held items of `list` (default: the whole queue) not on disk yet to the spool, in order. */
  private spill(list: readonly Entry<T>[] = this.queue): void {
    if (!this.spool || !this.o.spool) return;
    const frames: Buffer[] = [];
    const entries: Entry<T>[] = [];
    for (const e of list) {
      if (e.spooled || e.gone) continue;
      const f = this.o.spool.encode(e.item);
      if (f === null) continue;
      frames.push(f);
      entries.push(e);
    }
    if (this.spool.append(frames)) for (const e of entries) e.spooled = true;
  }

  /**
   * The spool becomes every held item that has a form on disk, in order (after some left the queue other
   * than by a send). All of them, not only those spooled before: one left out by a failed write would
   * otherwise be written later, after newer ones, and the file's order would no longer be the queue's.
   */
  private respool(): void {
    if (!this.spool || !this.o.spool) return;
    const frames: Buffer[] = [];
    const entries: Entry<T>[] = [];
    for (const e of this.queue) {
      const f = this.o.spool.encode(e.item);
      if (f === null) continue;
      frames.push(f);
      entries.push(e);
    }
    const ok = this.spool.rewrite(frames);
    for (const e of entries) e.spooled = ok;
  }

  /**
   * Drops the oldest waiting items (not the send under way) down to 90% of the bound, so a full outbox
   * drops in chunks rather than one splice per push; logged at most once a minute.
   */
  private dropOldest(): void {
    let n = 0;
    let freed = 0;
    const target = this.bytesHeld - this.maxBytes * 0.9;
    while (freed < target && this.inFlight + n < this.queue.length - 1) freed += this.queue[this.inFlight + n++]!.size;
    if (n === 0) return;
    const gone = this.queue.splice(this.inFlight, n);
    for (const e of gone) e.gone = true;
    this.bytesHeld -= freed;
    if (gone.some((e) => e.spooled)) this.respool();
    dropped.inc({ source: this.o.source }, n);
    M.errors.inc({ component: this.o.source, kind: 'outbox_full' });
    this.droppedUnlogged += n;
    if (Date.now() - this.droppedLoggedAt < 60_000) return;
    this.o.log?.error({ source: this.o.source, dropped: this.droppedUnlogged, heldBytes: this.bytesHeld, maxBytes: this.maxBytes }, 'outbox full while the bus does not take polls: the oldest waiting were dropped');
    this.droppedLoggedAt = Date.now();
    this.droppedUnlogged = 0;
  }

  private kick(): void {
    if (this.pumping || this.queue.length === 0) return;
    this.pumping = true;
    this.pumped = this.pump();
  }

  /** Resolves when everything pushed so far was taken (or dropped). */
  async idle(): Promise<void> {
    this.kick();
    while (this.pumping) {
      await this.pumped;
      this.kick();
    }
  }

  /**
   * Stops taking items and waits up to `timeoutMs` for the bus to take what is held; what it could not
   * is kept in the spool for the next start, or without one dropped, counted and logged. Returns how
   * many items were dropped.
   */
  async close(timeoutMs: number): Promise<number> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([this.idle(), timeout]);
    clearTimeout(timer);
    this.spill();
    const kept = this.queue.filter((e) => e.spooled).length;
    const left = this.queue.length - kept;
    if (kept > 0) this.o.log?.warn({ source: this.o.source, kept, spool: this.o.spool?.dir, waitedMs: timeoutMs }, 'shutdown: the bus did not take these in time; they are kept on disk and sent at the next start');
    if (left > 0) {
      dropped.inc({ source: this.o.source }, left);
      this.o.log?.error({ source: this.o.source, dropped: left, waitedMs: timeoutMs }, 'shutdown: the bus did not take these polls in time; they are lost');
    }
    this.queue = [];
    this.bytesHeld = 0;
    this.gauges();
    this.wake?.();
    // A send still under way may yet be taken: the spool then sends it once more at the next start.
    this.spool?.close();
    return left;
  }

  private gauges(): void {
    heldItems.set({ source: this.o.source }, this.queue.length);
    heldBytes.set({ source: this.o.source }, this.bytesHeld);
  }

  private async pump(): Promise<void> {
    try {
      await this.pumpLoop();
    } finally {
      this.pumping = false;
    }
  }

  private async pumpLoop(): Promise<void> {
    let backoff = this.o.retryMinMs ?? 200;
    while (this.queue.length > 0) {
      let batch: Entry<T>[] = [];
      try {
        if (this.failedSince !== null && this.o.recover) {
          // The items held now are recovered as one: pushes meanwhile append, and nothing of these is dropped.
          const taken = this.queue.length;
          this.inFlight = taken;
          this.replaceHead(taken, await this.o.recover(this.queue.slice(0, taken).map((e) => e.item)));
          if (this.queue.length === 0) {
            this.inFlight = 0;
            this.back();
            break;
          }
        }
        batch = this.queue.slice(0, this.nextBatch());
        this.inFlight = batch.length;
        await this.sendWatched(batch.map((e) => e.item));
      } catch (err) {
        this.inFlight = 0;
        if (!(await this.failed(err as Error, (batch.length > 0 ? batch : this.queue.slice(0, 1)).map((e) => e.item), backoff))) return;
        backoff = this.next(backoff);
        continue;
      }
      this.inFlight = 0;
      this.slow = false;
      if (this.queue[0] !== batch[0]) continue; // closed meanwhile: the queue was handed to the spool
      this.queue.splice(0, batch.length);
      for (const e of batch) {
        this.bytesHeld -= e.size;
        e.gone = true;
      }
      this.spool?.ack(batch.filter((e) => e.spooled).length);
      this.gauges();
      this.back();
      backoff = this.o.retryMinMs ?? 200;
    }
  }

  /** The send, with a spill to disk if it is not answered in SPILL_AFTER_MS. */
  private async sendWatched(items: T[]): Promise<void> {
    if (!this.spool) return this.o.send(items);
    const timer = setTimeout(() => {
      this.slow = true;
      if (!this.closed) this.spill();
    }, SPILL_AFTER_MS);
    try {
      await this.o.send(items);
    } finally {
      clearTimeout(timer);
    }
  }

  /** How many items the next send takes: up to maxBatch and maxBatchBytes (one at least), of the first item's lane. */
  private nextBatch(): number {
    const lane = this.o.lane;
    const first = lane ? lane(this.queue[0]!.item) : '';
    const max = this.o.maxBatch ?? 256;
    const maxBytes = this.o.maxBatchBytes ?? OUTBOX_MAX_BATCH_BYTES;
    let n = 1;
    let bytes = this.queue[0]!.size;
    while (n < this.queue.length && n < max && bytes + this.queue[n]!.size <= maxBytes && (!lane || lane(this.queue[n]!.item) === first)) bytes += this.queue[n++]!.size;
    return n;
  }

  private back(): void {
    if (this.failedSince === null) return;
    this.o.log?.warn({ source: this.o.source, afterMs: Date.now() - this.failedSince, held: this.queue.length }, 'the bus takes polls again; sending what was held');
    this.failedSince = null;
  }

  /** The first `taken` items become `kept` (recover() may have dropped some). */
  private replaceHead(taken: number, kept: T[]): void {
    if (kept.length === taken) return;
    const head = this.queue.slice(0, taken);
    const spooled = new Set(head.filter((e) => e.spooled).map((e) => e.item));
    for (const e of head) e.gone = true;
    const entries = kept.map((item) => ({ item, size: this.o.bytes(item), spooled: spooled.has(item) }));
    this.queue = [...entries, ...this.queue.slice(taken)];
    this.bytesHeld = this.queue.reduce((a, e) => a + e.size, 0);
    if (head.some((e) => e.spooled)) this.respool();
    this.gauges();
  }

  private next(backoff: number): number {
    return Math.min(this.o.retryMaxMs ?? 10_000, backoff * 2);
  }

  /** Counts and logs a failure, spools what is held, then waits out the backoff; false when closed meanwhile. */
  private async failed(err: Error, batch: readonly T[], backoff: number): Promise<boolean> {
    retries.inc({ source: this.o.source });
    M.errors.inc({ component: this.o.source, kind: 'produce' });
    const first = this.failedSince === null;
    this.failedSince ??= Date.now();
    this.spill();
    const ctx = { source: this.o.source, ...this.o.describe?.(batch), held: this.queue.length, heldBytes: this.bytesHeld, retryInMs: backoff, err: err.message };
    if (first) this.o.log?.error(ctx, 'the bus did not take polls; holding them and retrying');
    else this.o.log?.debug(ctx, 'still retrying');
    if (this.closed && this.queue.length === 0) return false;
    await new Promise<void>((r) => {
      const t = setTimeout(r, backoff);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
    this.wake = null;
    return this.queue.length > 0;
  }
}
