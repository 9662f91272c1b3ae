import type { Labels, Sample } from '../core/types.js';
import { seriesKey } from '../core/series.js';
import { counter } from '../core/metrics.js';
import { DDSketch, DEFAULT_ALPHA, DEFAULT_MAX_BINS, MIN_INDEXABLE, bucketIndex, invLogGammaOf, type SketchJSON } from './sketch.js';

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

/**
 * Mergeable aggregate of one series in one window, packed in ONE array of doubles (V8 stores them
 * unboxed, 8 bytes each) because state per series is what limits how many series an instance holds:
 *   [count, sum, min, max, firstTs, first, lastTs, last, revision, zeroCount, nPos, nNeg, spec, start, ...bins, ...free]
 * Bins are DDSketch buckets (alpha 1%, see sketch.ts), positive ones first then negative ones, each
 * encoded as (bucketIndex + BIAS) * 2^32 + count, so sorting by code sorts by bucket index.
 * The first/last ties keep the first arrival for `first` and the latest for `last`: deterministic by input order.
 */
export type Cell = number[];
const C_COUNT = 0, C_SUM = 1, C_MIN = 2, C_MAX = 3, C_FTS = 4, C_FIRST = 5, C_LTS = 6, C_LAST = 7, C_REV = 8, C_ZERO = 9, C_NPOS = 10, C_NNEG = 11, C_SPEC = 12, C_START = 13, C_BINS = 14;
const SHIFT = 4294967296;
const BIAS = 1048576;
const ALPHA = DEFAULT_ALPHA;
const INV_LOG_GAMMA = invLogGammaOf(ALPHA);
const MAX_BINS = DEFAULT_MAX_BINS;

function newCell(spec: number, start: number): Cell {
  // A literal of doubles: PACKED_DOUBLE_ELEMENTS, 14 header slots and 2 free bucket slots.
  return [0, 0, Infinity, -Infinity, Infinity, NaN, -Infinity, NaN, 0, 0, 0, 0, spec, start, NaN, NaN];
}

/** Adds a sample; returns the cell, or a larger copy when a new bucket had to be inserted. */
function cellAdd(c: Cell, ts: number, v: number, bucket: number): Cell {
  c[C_COUNT]!++;
  c[C_SUM]! += v;
  if (v < c[C_MIN]!) c[C_MIN] = v;
  if (v > c[C_MAX]!) c[C_MAX] = v;
  if (ts < c[C_FTS]!) {
    c[C_FTS] = ts;
    c[C_FIRST] = v;
  }
  if (ts >= c[C_LTS]!) {
    c[C_LTS] = ts;
    c[C_LAST] = v;
  }
  if (v > MIN_INDEXABLE) return binAdd(c, C_BINS, C_BINS + c[C_NPOS]!, bucket, true, 1);
  if (v < -MIN_INDEXABLE) return binAdd(c, C_BINS + c[C_NPOS]!, C_BINS + c[C_NPOS]! + c[C_NNEG]!, bucket, false, 1);
  c[C_ZERO]!++;
  return c;
}

function binAdd(c: Cell, lo: number, hi: number, idx: number, positive: boolean, count: number): Cell {
  const key = idx + BIAS;
  let a = lo;
  let b = hi - 1;
  while (a <= b) {
    const mid = (a + b) >>> 1;
    const k = Math.floor(c[mid]! / SHIFT);
    if (k === key) {
      c[mid]! += count;
      return c;
    }
    if (k < key) a = mid + 1;
    else b = mid - 1;
  }
  // Insert at `a`. Free slots trail the buckets; when none is left the cell grows by a quarter
  // (at least 2 slots): a copy on every new bucket was most of the garbage the operator made.
  const used = C_BINS + c[C_NPOS]! + c[C_NNEG]!;
  let n = c;
  if (used === c.length) {
    n = new Array<number>(c.length + Math.max(2, (used - C_BINS) >> 2)).fill(NaN);
    for (let i = 0; i < a; i++) n[i] = c[i]!;
  }
  for (let i = used; i > a; i--) n[i] = c[i - 1]!;
  n[a] = key * SHIFT + count;
  if (positive) n[C_NPOS]!++;
  else n[C_NNEG]!++;
  const bins = positive ? n[C_NPOS]! : n[C_NNEG]!;
  return bins > MAX_BINS ? collapse(n, positive) : n;
}

/** Folds the two lowest buckets of one sign (rare: needs > 2048 distinct buckets in one window). */
function collapse(c: Cell, positive: boolean): Cell {
  const lo = positive ? C_BINS : C_BINS + c[C_NPOS]!;
  const merged = Math.floor(c[lo + 1]! / SHIFT) * SHIFT + (c[lo]! % SHIFT) + (c[lo + 1]! % SHIFT);
  const n = [...c.slice(0, lo), merged, ...c.slice(lo + 2), NaN];
  if (positive) n[C_NPOS]!--;
  else n[C_NNEG]!--;
  return n;
}

function cellSketch(c: Cell): SketchJSON {
  const j: SketchJSON = { a: ALPHA };
  const np = c[C_NPOS]!;
  if (np > 0) {
    j.pi = [];
    j.pc = [];
    for (let i = C_BINS; i < C_BINS + np; i++) {
      j.pi.push(Math.floor(c[i]! / SHIFT) - BIAS);
      j.pc.push(c[i]! % SHIFT);
    }
  }
  if (c[C_NNEG]! > 0) {
    j.ni = [];
    j.nc = [];
    for (let i = C_BINS + np; i < C_BINS + np + c[C_NNEG]!; i++) {
      j.ni.push(Math.floor(c[i]! / SHIFT) - BIAS);
      j.nc.push(c[i]! % SHIFT);
    }
  }
  if (c[C_ZERO]! > 0) j.z = c[C_ZERO]!;
  return j;
}

function cellResult(c: Cell, sk: DDSketch): Aggregates {
  const dt = c[C_LTS]! - c[C_FTS]!;
  return {
    count: c[C_COUNT]!,
    sum: c[C_SUM]!,
    min: c[C_MIN]!,
    max: c[C_MAX]!,
    avg: c[C_SUM]! / c[C_COUNT]!,
    first: c[C_FIRST]!,
    firstTs: c[C_FTS]!,
    last: c[C_LAST]!,
    lastTs: c[C_LTS]!,
    rate: dt > 0 ? ((c[C_LAST]! - c[C_FIRST]!) * 1000) / dt : null,
    p50: sk.quantile(0.5),
    p95: sk.quantile(0.95),
    p99: sk.quantile(0.99),
  };
}

function cellToJSON(c: Cell): AggJSON {
  return [c[C_COUNT]!, c[C_SUM]!, c[C_MIN]!, c[C_MAX]!, c[C_FTS]!, c[C_FIRST]!, c[C_LTS]!, c[C_LAST]!, c[C_REV]!, cellSketch(c)];
}

function cellFromJSON(j: AggJSON, spec: number, start: number): Cell {
  const sk = j[9];
  let c = newCell(spec, start);
  for (let i = 0; i < 9; i++) c[i] = j[i] as number;
  // JSON has no Infinity/NaN: an empty field came back as null.
  if (c[C_MIN] === null) c[C_MIN] = Infinity;
  if (c[C_MAX] === null) c[C_MAX] = -Infinity;
  if (sk.pi) for (let i = 0; i < sk.pi.length; i++) c = binAdd(c, C_BINS, C_BINS + c[C_NPOS]!, sk.pi[i]!, true, sk.pc![i]!);
  if (sk.ni) for (let i = 0; i < sk.ni.length; i++) c = binAdd(c, C_BINS + c[C_NPOS]!, C_BINS + c[C_NPOS]! + c[C_NNEG]!, sk.ni[i]!, false, sk.nc![i]!);
  c[C_ZERO] = sk.z ?? 0;
  return c;
}

type AggJSON = [number, number, number, number, number, number, number, number, number, SketchJSON];

/** One window instance (one spec, one start): the series that have a cell in it, in arrival order. */
interface Pane {
  readonly start: number;
  readonly end: number;
  emitted: boolean;
  readonly members: SeriesState[];
}

/**
 * A series and its open window cells (all specs): one Map lookup per sample finds every cell the
 * sample updates. `key` is a flat copy (a key built by concatenation is a rope of ~11 nodes).
 */
interface SeriesState {
  readonly key: string;
  readonly metric: string;
  readonly labels: Labels;
  readonly cells: Cell[];
}

function findCell(st: SeriesState, k: number, start: number): number {
  const cs = st.cells;
  for (let i = cs.length - 1; i >= 0; i--) {
    const c = cs[i]!;
    if (c[C_START] === start && c[C_SPEC] === k) return i;
  }
  return -1;
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

/**
 * A flat copy of a string. Keys built by concatenation are rope (cons) strings: ~11 nodes of 32 B
 * per series key if kept as is, i.e. a third of the state of a series.
 */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
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
  /** Cells of emitted windows updated by the current message: `${spec}|${start}|${key}` -> where. */
  private readonly dirty = new Map<string, [number, Pane, SeriesState]>();
  private readonly series = new Map<string, SeriesState>();
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

  /** Distinct series with at least one open window. */
  get seriesCount(): number {
    return this.series.size;
  }

  /** Number of (series, window) aggregates held: the state size. */
  get openAggregates(): number {
    let n = 0;
    for (const ps of this.panes) for (const p of ps) n += p.members.length;
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
      let st = this.series.get(key);
      if (st === undefined) {
        st = { key: flat(key), metric: s.metric, labels: s.labels, cells: [] };
        this.series.set(st.key, st);
      }
      // The sketch bucket is the same for every window spec: one logarithm per sample.
      const v = s.value;
      const bucket = v > MIN_INDEXABLE ? bucketIndex(v, INV_LOG_GAMMA) : v < -MIN_INDEXABLE ? bucketIndex(-v, INV_LOG_GAMMA) : 0;
      for (let k = 0; k < this.specs.length; k++) this.assign(k, st, s, channel, bucket);
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

  private assign(k: number, st: SeriesState, s: Sample, channel: string, bucket: number): void {
    const spec = this.specs[k]!;
    const ts = s.ts;
    const hop = spec.hopMs;
    // Last window containing ts starts at floor(ts / hop) * hop; earlier ones step back by hop.
    let start = Math.floor(ts / hop) * hop;
    const firstStart = start - spec.sizeMs + hop;
    for (; start >= firstStart; start -= hop) {
      const end = start + spec.sizeMs;
      const closed = end <= this.wm;
      if (closed && end + spec.allowedLatenessMs <= this.wm) {
        this.lateOut.push({ window: spec.name, key: st.key, sample: s, channel, watermark: this.wm, windowEnd: end });
        lateTotal.inc({ window: spec.name });
        continue;
      }
      let i = findCell(st, k, start);
      let pane: Pane | null = null;
      if (i < 0) {
        pane = this.paneFor(k, start, end);
        pane.members.push(st);
        i = st.cells.length;
        st.cells.push(newCell(k, start));
      }
      const cell = st.cells[i]!;
      const next = cellAdd(cell, ts, s.value, bucket);
      if (next !== cell) st.cells[i] = next;
      if (closed) {
        pane ??= this.paneFor(k, start, end);
        if (pane.emitted) this.dirty.set(`${k}|${start}|${st.key}`, [k, pane, st]);
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
        const np: Pane = { start, end, emitted: false, members: [] };
        ps.splice(i + 1, 0, np);
        return np;
      }
    }
    const np: Pane = { start, end, emitted: false, members: [] };
    ps.unshift(np);
    return np;
  }

  private flushCorrections(): void {
    if (this.dirty.size === 0) return;
    for (const [k, pane, st] of this.dirty.values()) {
      const spec = this.specs[k]!;
      const cell = st.cells[findCell(st, k, pane.start)]!;
      cell[C_REV]!++;
      correctionsTotal.inc({ window: spec.name });
      this.results.push(this.resultOf(spec, pane, st, cell, 'correction'));
    }
    this.dirty.clear();
  }

  private resultOf(spec: WindowSpec, pane: Pane, m: SeriesState, cell: Cell, kind: 'final' | 'correction'): WindowResult {
    const sketch = cellSketch(cell);
    return {
      kind,
      window: spec.name,
      sizeMs: spec.sizeMs,
      key: m.key,
      metric: m.metric,
      labels: m.labels,
      start: pane.start,
      end: pane.end,
      revision: cell[C_REV]!,
      agg: cellResult(cell, DDSketch.fromJSON(sketch)),
      sketch,
    };
  }

  /** Drops the cells of a purged pane; a series without cells is forgotten. */
  private release(k: number, p: Pane): void {
    for (const st of p.members) {
      const i = findCell(st, k, p.start);
      if (i >= 0) st.cells.splice(i, 1);
      if (st.cells.length === 0) this.series.delete(st.key);
    }
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
          for (const st of p.members) this.results.push(this.resultOf(spec, p, st, st.cells[findCell(st, k, p.start)]!, 'final'));
        }
        if (p.end + spec.allowedLatenessMs <= wm) drop++;
      }
      // Panes are purged in start order; with equal lateness an older pane never outlives a newer one.
      if (drop > 0) {
        for (let i = 0; i < drop; i++) this.release(k, ps[i]!);
        ps.splice(0, drop);
      }
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
        for (const st of p.members) {
          let i = seriesIdx.get(st.key);
          if (i === undefined) {
            i = series.length;
            series.push([st.key, st.metric, st.labels]);
            seriesIdx.set(st.key, i);
          }
          rows.push([i, cellToJSON(st.cells[findCell(st, k, p.start)]!)]);
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
        const members: SeriesState[] = [];
        for (const [i, aj] of rows) {
          const s = j.series[i];
          if (!s) throw new Error(`window state: series index ${i} out of range in window ${spec.name}`);
          let st = op.series.get(s[0]);
          if (!st) op.series.set(s[0], (st = { key: s[0], metric: s[1], labels: s[2], cells: [] }));
          st.cells.push(cellFromJSON(aj, k, start));
          members.push(st);
        }
        op.panes[k]!.push({ start, end: start + spec.sizeMs, emitted, members });
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
