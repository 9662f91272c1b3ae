import type { Labels, Sample } from '../core/types.js';
import { seriesKey } from '../core/series.js';
import { counter } from '../core/metrics.js';
import { DDSketch, type SketchJSON } from './sketch.js';

/**
 * Event-time windows per series: tumbling (hop = size) and hopping (hop < size), aligned to the
 * epoch, so a 1 h window is a UTC hour and a 1 min window starts at :00 of a UTC minute.
 *
 * Watermark (Flink's model): each INPUT CHANNEL (the runner uses the device: one poll = one
 * message, so a device's samples arrive in its own order) has watermark = max event time seen on it
 * minus the allowed delay of its source. The operator watermark is the minimum over ACTIVE channels.
 * A channel is idle once its max event time is more than `idleTimeoutMs` behind the newest event
 * time seen by the operator; idle channels stop holding the watermark back (a device that went quiet
 * does not keep every window open). The idle test uses EVENT time, never the wall clock, so the
 * output depends only on the order of input messages: a replay, a restart from a checkpoint or a
 * different batching gives the same rollups row by row. The price: a partition that receives nothing
 * at all does not close its windows until its next message (documented in processors/README.md).
 *
 * Lateness: a window is emitted ('final') when the watermark passes its end. A sample that arrives
 * for an emitted window while watermark < end + allowedLateness updates it and a 'correction' record
 * (revision + 1) follows; later samples go to the late-data output and are counted.
 *
 * Pure: no I/O, no clock. State round-trips through toJSON / fromJSON.
 */

export interface WindowSpec {
  /** Name carried on every result (e.g. `1m`); also the rollup resolution. */
  readonly name: string;
  readonly sizeMs: number;
  /** Hop (slide); equal to size for tumbling windows. */
  readonly hopMs: number;
  readonly allowedLatenessMs: number;
}

export interface WindowOptions {
  readonly windows: readonly WindowSpec[];
  /** Allowed delay (out-of-orderness) per source name; the watermark trails the newest event by this. */
  readonly delayMs?: Readonly<Record<string, number>>;
  readonly defaultDelayMs: number;
  /** A channel this far (event time) behind the newest event is idle and no longer holds the watermark. */
  readonly idleTimeoutMs: number;
}

export interface Aggregates {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly avg: number;
  /** Value with the earliest event time in the window, and that time. */
  readonly first: number;
  readonly firstTs: number;
  /** Value with the latest event time in the window, and that time. */
  readonly last: number;
  readonly lastTs: number;
  /** Per-second change from first to last (a counter's rate, a gauge's slope); null below 2 distinct times. */
  readonly rate: number | null;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

export interface WindowResult {
  readonly kind: 'final' | 'correction';
  readonly window: string;
  readonly sizeMs: number;
  readonly key: string;
  readonly metric: string;
  readonly labels: Labels;
  readonly start: number;
  readonly end: number;
  /** 0 for the final result, 1, 2, ... for each correction; storage keeps the highest. */
  readonly revision: number;
  readonly agg: Aggregates;
  /** The mergeable sketch, so coarser rollups and queries re-aggregate quantiles correctly. */
  readonly sketch: SketchJSON;
}

export interface LateSample {
  readonly window: string;
  readonly key: string;
  readonly sample: Sample;
  readonly channel: string;
  /** Operator watermark when the sample arrived; the window ended at or before watermark - allowed lateness. */
  readonly watermark: number;
  readonly windowEnd: number;
}

const lateTotal = counter('noctua_window_late_samples_total', 'Samples beyond allowed lateness, sent to the late-data output', ['window']);
const correctionsTotal = counter('noctua_window_corrections_total', 'Correction records for windows updated within allowed lateness', ['window']);
const rejectedTotal = counter('noctua_window_rejected_samples_total', 'Samples rejected by the window operator', ['reason']);

/** Mergeable aggregate of one series in one window. */
export class Agg {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  firstTs = Infinity;
  first = NaN;
  lastTs = -Infinity;
  last = NaN;
  rev = 0;
  readonly sk: DDSketch;

  constructor(
    readonly key: string,
    readonly metric: string,
    readonly labels: Labels,
    sk?: DDSketch,
  ) {
    this.sk = sk ?? new DDSketch();
  }

  add(ts: number, v: number): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    // Ties keep the first arrival for `first` and the latest arrival for `last`: deterministic by input order.
    if (ts < this.firstTs) {
      this.firstTs = ts;
      this.first = v;
    }
    if (ts >= this.lastTs) {
      this.lastTs = ts;
      this.last = v;
    }
    this.sk.add(v);
  }

  result(): Aggregates {
    const dt = this.lastTs - this.firstTs;
    return {
      count: this.count,
      sum: this.sum,
      min: this.min,
      max: this.max,
      avg: this.sum / this.count,
      first: this.first,
      firstTs: this.firstTs,
      last: this.last,
      lastTs: this.lastTs,
      rate: dt > 0 ? ((this.last - this.first) * 1000) / dt : null,
      p50: this.sk.quantile(0.5),
      p95: this.sk.quantile(0.95),
      p99: this.sk.quantile(0.99),
    };
  }

  toJSON(): AggJSON {
    return [this.count, this.sum, this.min, this.max, this.firstTs, this.first, this.lastTs, this.last, this.rev, this.sk.toJSON()];
  }

  static fromJSON(key: string, metric: string, labels: Labels, j: AggJSON): Agg {
    const a = new Agg(key, metric, labels, DDSketch.fromJSON(j[9]));
    [a.count, a.sum, a.min, a.max, a.firstTs, a.first, a.lastTs, a.last, a.rev] = j;
    return a;
  }
}

type AggJSON = [number, number, number, number, number, number, number, number, number, SketchJSON];

/** All series of one window instance (one spec, one start): windows close together, so they live together. */
interface Pane {
  readonly start: number;
  readonly end: number;
  emitted: boolean;
  readonly series: Map<string, Agg>;
}

interface Channel {
  maxTs: number;
  readonly source: string;
}

export interface WindowStateJSON {
  v: 1;
  wm: number;
  newest: number;
  channels: [string, number, string][];
  /** Series table: [key, metric, labels]; panes refer to it by index. */
  series: [string, string, Labels][];
  /** Per spec (by name): panes as [start, emitted, [[seriesIdx, agg]...]]. */
  panes: Record<string, [number, boolean, [number, AggJSON][]][]>;
}

/**
 * Series identity from (metric, labels) with a cache keyed by the labels object: decoded batches
 * share one labels object per interface, so the key string is built once per interface per batch
 * and the same string instance (with its cached hash) is used for every Map lookup.
 */
export class SeriesKeys {
  private cache = new WeakMap<Labels, Map<string, string>>();
  key(metric: string, labels: Labels): string {
    let m = this.cache.get(labels);
    if (m === undefined) {
      m = new Map();
      this.cache.set(labels, m);
    }
    let k = m.get(metric);
    if (k === undefined) {
      k = seriesKey(metric, labels);
      m.set(metric, k);
    }
    return k;
  }
}

export function validateWindowSpec(w: WindowSpec): void {
  if (!Number.isInteger(w.sizeMs) || w.sizeMs <= 0) throw new RangeError(`window ${w.name}: sizeMs must be a positive integer, got ${w.sizeMs}`);
  if (!Number.isInteger(w.hopMs) || w.hopMs <= 0 || w.hopMs > w.sizeMs) throw new RangeError(`window ${w.name}: hopMs must be in 1..sizeMs, got ${w.hopMs}`);
  if (w.sizeMs % w.hopMs !== 0) throw new RangeError(`window ${w.name}: sizeMs ${w.sizeMs} must be a multiple of hopMs ${w.hopMs}`);
  if (!(w.allowedLatenessMs >= 0)) throw new RangeError(`window ${w.name}: allowedLatenessMs must be >= 0`);
}

export class WindowOperator {
  private readonly specs: readonly WindowSpec[];
  /** Open panes per spec, ascending by start (few: current + those within allowed lateness). */
  private readonly panes: Pane[][];
  private readonly channels = new Map<string, Channel>();
  private wm = -Infinity;
  private newest = -Infinity;
  private results: WindowResult[] = [];
  private lateOut: LateSample[] = [];
  private readonly dirty = new Set<Agg>();
  private readonly dirtySpec = new Map<Agg, number>();
  readonly keys = new SeriesKeys();

  constructor(readonly opts: WindowOptions) {
    if (opts.windows.length === 0) throw new RangeError('window operator needs at least one window spec');
    const names = new Set<string>();
    for (const w of opts.windows) {
      validateWindowSpec(w);
      if (names.has(w.name)) throw new RangeError(`window name ${w.name} is used twice`);
      names.add(w.name);
    }
    this.specs = opts.windows;
    this.panes = opts.windows.map(() => []);
  }

  get watermark(): number {
    return this.wm;
  }

  /** Number of (series, window) aggregates held: the state size. */
  get openAggregates(): number {
    let n = 0;
    for (const ps of this.panes) for (const p of ps) n += p.series.size;
    return n;
  }

  private delayOf(source: string): number {
    return this.opts.delayMs?.[source] ?? this.opts.defaultDelayMs;
  }

  /**
   * Processes one input message (one poll of one device) from `channel`. Samples are classified
   * against the watermark as it was BEFORE this message; the message then advances the watermark,
   * which may close windows.
   */
  process(channel: string, source: string, samples: readonly Sample[], keys?: readonly string[]): void {
    let maxTs = -Infinity;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (!Number.isFinite(s.ts) || !Number.isFinite(s.value)) {
        rejectedTotal.inc({ reason: Number.isFinite(s.ts) ? 'non_finite_value' : 'non_finite_ts' });
        continue;
      }
      if (s.ts > maxTs) maxTs = s.ts;
      const key = keys ? keys[i]! : this.keys.key(s.metric, s.labels);
      for (let k = 0; k < this.specs.length; k++) this.assign(k, key, s, channel);
    }
    this.flushCorrections();
    if (maxTs > -Infinity) {
      let ch = this.channels.get(channel);
      if (!ch) {
        ch = { maxTs, source };
        this.channels.set(channel, ch);
      } else if (maxTs > ch.maxTs) ch.maxTs = maxTs;
      if (maxTs > this.newest) this.newest = maxTs;
    }
    this.advance();
  }

  private assign(k: number, key: string, s: Sample, channel: string): void {
    const spec = this.specs[k]!;
    const ts = s.ts;
    const hop = spec.hopMs;
    // Last window containing ts starts at floor(ts / hop) * hop; earlier ones step back by hop.
    let start = Math.floor(ts / hop) * hop;
    const firstStart = start - spec.sizeMs + hop;
    for (; start >= firstStart; start -= hop) {
      const end = start + spec.sizeMs;
      if (end <= this.wm) {
        if (end + spec.allowedLatenessMs <= this.wm) {
          this.lateOut.push({ window: spec.name, key, sample: s, channel, watermark: this.wm, windowEnd: end });
          lateTotal.inc({ window: spec.name });
          continue;
        }
      }
      const pane = this.paneFor(k, start, end);
      let agg = pane.series.get(key);
      if (agg === undefined) {
        agg = new Agg(key, s.metric, s.labels);
        pane.series.set(key, agg);
      }
      agg.add(ts, s.value);
      if (pane.emitted && !this.dirty.has(agg)) {
        this.dirty.add(agg);
        this.dirtySpec.set(agg, k);
      }
    }
  }

  private paneFor(k: number, start: number, end: number): Pane {
    const ps = this.panes[k]!;
    // Most samples land in the newest pane: search from the end.
    for (let i = ps.length - 1; i >= 0; i--) {
      const p = ps[i]!;
      if (p.start === start) return p;
      if (p.start < start) {
        const np: Pane = { start, end, emitted: false, series: new Map() };
        ps.splice(i + 1, 0, np);
        return np;
      }
    }
    const np: Pane = { start, end, emitted: false, series: new Map() };
    ps.unshift(np);
    return np;
  }

  private flushCorrections(): void {
    if (this.dirty.size === 0) return;
    for (const agg of this.dirty) {
      const k = this.dirtySpec.get(agg)!;
      const spec = this.specs[k]!;
      const pane = this.panes[k]!.find((p) => p.series.get(agg.key) === agg)!;
      agg.rev++;
      correctionsTotal.inc({ window: spec.name });
      this.results.push(this.resultOf(spec, pane, agg, 'correction'));
    }
    this.dirty.clear();
    this.dirtySpec.clear();
  }

  private resultOf(spec: WindowSpec, pane: Pane, agg: Agg, kind: 'final' | 'correction'): WindowResult {
    return {
      kind,
      window: spec.name,
      sizeMs: spec.sizeMs,
      key: agg.key,
      metric: agg.metric,
      labels: agg.labels,
      start: pane.start,
      end: pane.end,
      revision: agg.rev,
      agg: agg.result(),
      sketch: agg.sk.toJSON(),
    };
  }

  /** Recomputes the watermark from active channels and emits/purges windows it passed. */
  private advance(): void {
    let wm = Infinity;
    const idleBefore = this.newest - this.opts.idleTimeoutMs;
    for (const ch of this.channels.values()) {
      if (ch.maxTs < idleBefore) continue;
      const w = ch.maxTs - this.delayOf(ch.source);
      if (w < wm) wm = w;
    }
    if (wm !== Infinity && wm > this.wm) this.wm = wm;
    wm = this.wm;
    // Runs even when the watermark did not move: a pane first created by a sample within allowed
    // lateness (its window had no data when the watermark passed) gets its final result now.
    for (let k = 0; k < this.specs.length; k++) {
      const spec = this.specs[k]!;
      const ps = this.panes[k]!;
      let drop = 0;
      for (const p of ps) {
        if (p.end > wm) break;
        if (!p.emitted) {
          p.emitted = true;
          for (const agg of p.series.values()) this.results.push(this.resultOf(spec, p, agg, 'final'));
        }
        if (p.end + spec.allowedLatenessMs <= wm) drop++;
      }
      // Panes are purged in start order; with equal lateness an older pane never outlives a newer one.
      if (drop > 0) ps.splice(0, drop);
    }
  }

  /** Results (finals and corrections) since the last call, in emission order. */
  drainResults(): WindowResult[] {
    const r = this.results;
    this.results = [];
    return r;
  }

  /** Samples beyond allowed lateness since the last call. */
  drainLate(): LateSample[] {
    const r = this.lateOut;
    this.lateOut = [];
    return r;
  }

  toJSON(): WindowStateJSON {
    const seriesIdx = new Map<string, number>();
    const series: [string, string, Labels][] = [];
    const panes: WindowStateJSON['panes'] = {};
    for (let k = 0; k < this.specs.length; k++) {
      panes[this.specs[k]!.name] = this.panes[k]!.map((p) => {
        const rows: [number, AggJSON][] = [];
        for (const agg of p.series.values()) {
          let i = seriesIdx.get(agg.key);
          if (i === undefined) {
            i = series.length;
            series.push([agg.key, agg.metric, agg.labels]);
            seriesIdx.set(agg.key, i);
          }
          rows.push([i, agg.toJSON()]);
        }
        return [p.start, p.emitted, rows];
      });
    }
    return {
      v: 1,
      wm: this.wm === -Infinity ? -1 : this.wm,
      newest: this.newest === -Infinity ? -1 : this.newest,
      channels: [...this.channels].map(([name, c]) => [name, c.maxTs, c.source]),
      series,
      panes,
    };
  }

  /**
   * Restores state. Specs missing from the checkpoint start empty; panes of specs no longer
   * configured are dropped (a configuration change, not data loss of the configured windows).
   */
  static fromJSON(opts: WindowOptions, j: WindowStateJSON): WindowOperator {
    if (typeof j !== 'object' || j === null || j.v !== 1) throw new Error('window state: not a v1 checkpoint');
    const op = new WindowOperator(opts);
    // -1 marks "nothing seen yet": epoch ms of real samples are never negative.
    op.wm = j.wm < 0 ? -Infinity : j.wm;
    op.newest = j.newest < 0 ? -Infinity : j.newest;
    for (const [name, maxTs, source] of j.channels) op.channels.set(name, { maxTs, source });
    for (let k = 0; k < op.specs.length; k++) {
      const spec = op.specs[k]!;
      const saved = j.panes[spec.name];
      if (!saved) continue;
      for (const [start, emitted, rows] of saved) {
        const series = new Map<string, Agg>();
        for (const [i, aj] of rows) {
          const s = j.series[i];
          if (!s) throw new Error(`window state: series index ${i} out of range in window ${spec.name}`);
          series.set(s[0], Agg.fromJSON(s[0], s[1], s[2], aj));
        }
        op.panes[k]!.push({ start, end: start + spec.sizeMs, emitted, series });
      }
    }
    return op;
  }
}

/** Parses `10s`, `1m`, `5m`, `1h`, `2d`, `500ms` or a number of ms. */
export function parseDuration(v: string | number, what = 'duration'): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${what}: ${v} is not a non-negative number of ms`);
    return v;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/.exec(v);
  if (!m) throw new RangeError(`${what}: "${v}" is not a duration like 30s, 5m, 1h, 2d`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 }[unit]!;
  return Math.round(n * mult);
}
