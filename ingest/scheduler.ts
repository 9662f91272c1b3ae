/**
 * Periodic job scheduler shared by the polling sources (SNMP first; SSH and GNS3 reuse it).
 *
 * - Every job runs on its own interval, at a stable phase inside that interval derived from its id, so
 *   10,000 targets on a 60 s interval start ~170 per second instead of 10,000 at :00, and a restart
 *   keeps each target on the same slot (rates stay evenly spaced).
 * - A global concurrency limit bounds the polls in flight; waiting ones queue in due order.
 * - A job whose previous run has not finished is not started twice: the slot is skipped ('overrun').
 *   A queued run whose next slot has already come is dropped ('stale'): late data is worth less than
 *   the next fresh poll. A run that starts more than `lateAfterMs` after its slot is reported late.
 */

export interface Job {
  readonly id: string;
  readonly intervalMs: number;
  run(): Promise<void>;
}

export type SkipReason = 'overrun' | 'stale';

export interface SchedulerOptions {
  /** Runs in flight at once, across all jobs. */
  readonly concurrency: number;
  /** A run starting later than this after its slot counts as late. Default: min(10% of interval, 5 s). */
  readonly lateAfterMs?: (intervalMs: number) => number;
  readonly onLate?: (id: string, delayMs: number) => void;
  readonly onSkip?: (id: string, reason: SkipReason) => void;
  /** A run that threw (jobs should catch their own errors; this is the last line of defence). */
  readonly onError?: (id: string, err: unknown) => void;
  readonly now?: () => number;
}

interface Entry {
  job: Job;
  due: number;
  gen: number;
  running: boolean;
}

/** Stable phase (0 <= phase < intervalMs) of a job id: FNV-1a 32 of the id. */
export function phaseOf(id: string, intervalMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.max(1, Math.floor(intervalMs));
}

/** The first slot of a job strictly after `now`. */
export function nextSlot(id: string, intervalMs: number, now: number): number {
  const phase = phaseOf(id, intervalMs);
  let slot = Math.floor((now - phase) / intervalMs) * intervalMs + phase;
  if (slot <= now) slot += intervalMs;
  return slot;
}

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  /** Min-heap of [due, id, gen]; stale generations are dropped when popped. */
  private heap: Array<[number, string, number]> = [];
  private ready: Array<[Entry, number]> = [];
  private readyHead = 0;
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private started = false;
  private gen = 0;
  private idle: Array<() => void> = [];
  private readonly now: () => number;
  private readonly lateAfter: (intervalMs: number) => number;

  constructor(private readonly opts: SchedulerOptions) {
    if (!(opts.concurrency >= 1)) throw new Error(`scheduler concurrency must be >= 1, got ${opts.concurrency}`);
    this.now = opts.now ?? Date.now;
    this.lateAfter = opts.lateAfterMs ?? ((i) => Math.min(i * 0.1, 5000));
  }

  get size(): number {
    return this.entries.size;
  }
  get inFlight(): number {
    return this.active;
  }
  get queued(): number {
    return this.ready.length - this.readyHead;
  }
  has(id: string): boolean {
    return this.entries.has(id);
  }
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** Adds or replaces a job; its first run is at its next phase slot. */
  add(job: Job): void {
    if (!(job.intervalMs >= 1)) throw new Error(`job ${job.id}: interval must be >= 1 ms, got ${job.intervalMs}`);
    const old = this.entries.get(job.id);
    const e: Entry = { job, due: nextSlot(job.id, job.intervalMs, this.now()), gen: ++this.gen, running: old?.running ?? false };
    this.entries.set(job.id, e);
    this.push([e.due, job.id, e.gen]);
    if (this.started) this.arm();
  }

  remove(id: string): boolean {
    return this.entries.delete(id);
  }

  start(): void {
    this.started = true;
    this.arm();
  }

  /** Stops scheduling; resolves when the runs in flight have finished. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.ready = [];
    this.readyHead = 0;
    if (this.active > 0) await new Promise<void>((r) => this.idle.push(r));
  }

  private arm(): void {
    if (!this.started) return;
    const top = this.heap[0];
    if (!top) return;
    if (top[0] >= this.timerAt && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = top[0];
    this.timer = setTimeout(() => this.tick(), Math.max(0, top[0] - this.now()));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    for (;;) {
      const top = this.heap[0];
      if (!top || top[0] > now) break;
      this.pop();
      const e = this.entries.get(top[1]);
      if (!e || e.gen !== top[2]) continue;
      const due = e.due;
      if (e.running) this.opts.onSkip?.(e.job.id, 'overrun');
      else this.ready.push([e, due]);
      e.due = due + e.job.intervalMs;
      // A process stalled for several intervals resumes at its next slot, without a burst of catch-up.
      if (e.due <= now) e.due = nextSlot(e.job.id, e.job.intervalMs, now);
      this.push([e.due, e.job.id, e.gen]);
    }
    this.dispatch();
    this.arm();
  }

  private dispatch(): void {
    while (this.active < this.opts.concurrency && this.readyHead < this.ready.length) {
      const [e, due] = this.ready[this.readyHead++]!;
      if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.readyHead);
        this.readyHead = 0;
      }
      if (this.entries.get(e.job.id) !== e) continue; // removed or replaced while queued
      const now = this.now();
      const delay = now - due;
      if (delay >= e.job.intervalMs) {
        this.opts.onSkip?.(e.job.id, 'stale');
        continue;
      }
      if (delay > this.lateAfter(e.job.intervalMs)) this.opts.onLate?.(e.job.id, delay);
      this.runOne(e);
    }
  }

  private runOne(e: Entry): void {
    e.running = true;
    this.active++;
    const done = () => {
      e.running = false;
      const cur = this.entries.get(e.job.id);
      if (cur && cur !== e) cur.running = false;
      this.active--;
      if (this.started) this.dispatch();
      if (this.active === 0) for (const r of this.idle.splice(0)) r();
    };
    let p: Promise<void>;
    try {
      p = e.job.run();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(done, (err: unknown) => {
      this.opts.onError?.(e.job.id, err);
      done();
    });
  }

  private push(item: [number, string, number]): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]![0] <= item[0]) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = item;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]![0] < h[l]![0] ? r : l;
      if (h[c]![0] >= last[0]) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
