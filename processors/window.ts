import type { Labels, Sample } from '../core/types.js';
import { labelsText } from '../core/series.js';
import { counter } from '../core/metrics.js';
import { Reader, Writer } from '../core/codec.js';
import { DEFAULT_ALPHA, DEFAULT_MAX_BINS, MIN_INDEXABLE, bucketIndex, invLogGammaOf, type SketchJSON } from './sketch.js';

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
 * Pure: no I/O, no clock. State round-trips through checkpoint / fromJSON.
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

/*
 * State layout. Every series gets a SLOT (a small integer) for as long as a window holds it. A pane
 * (one window instance: one spec, one start) keeps its aggregates in columns indexed by slot, one
 * Float64Array of NF doubles per slot:
 *   [count, sum, min, max, firstTs, first, lastTs, last, zeroCount]
 * and the sketch buckets of each slot in a small sorted array of doubles, each bucket encoded as
 * (bucketIndex + BIAS [+ NEG for negative values]) * 2^32 + count, so sorting by code sorts positive
 * buckets by index, then negative ones by index. State per series is what limits how many series one
 * instance holds; typed columns cost 8 bytes a field and nothing per object.
 *
 * Cascade: a tumbling window whose size is a multiple of a finer tumbling window's is built from the
 * finer one (Flink's pre-aggregation, ClickHouse's AggregatingMergeTree): a sample updates only the
 * finest window, and when that window is emitted its aggregate and sketch merge into the coarser one.
 * Sketches merge exactly; a sum merged in pieces may differ from the sample-by-sample sum in the last
 * bits, and every run (replay, restore) merges the same pieces in the same order. A sample that is
 * late for a finer window that was already merged goes to the coarser windows directly, so each
 * window holds exactly the samples it would hold on its own.
 */
const NF = 9;
const F_COUNT = 0, F_SUM = 1, F_MIN = 2, F_MAX = 3, F_FTS = 4, F_FIRST = 5, F_LTS = 6, F_LAST = 7, F_ZERO = 8;
const SHIFT = 4294967296;
const BIAS = 524288;
const NEG = 1048576;
const ALPHA = DEFAULT_ALPHA;
const GAMMA = (1 + ALPHA) / (1 - ALPHA);
const INV_LOG_GAMMA = invLogGammaOf(ALPHA);
const MAX_BINS = DEFAULT_MAX_BINS;

/** The bucket code of a value (count 0), or -1 for a value counted as zero. */
function codeOf(v: number): number {
  if (v > MIN_INDEXABLE) return (bucketIndex(v, INV_LOG_GAMMA) + BIAS) * SHIFT;
  if (v < -MIN_INDEXABLE) return (bucketIndex(-v, INV_LOG_GAMMA) + BIAS + NEG) * SHIFT;
  return -1;
}

/** Keeps at most MAX_BINS buckets per sign by folding the lowest ones (DDSketch's collapse). */
function collapse(arr: number[]): void {
  let np = 0;
  while (np < arr.length && arr[np]! < (NEG + 0) * SHIFT) np++;
  const fold = (lo: number, n: number) => {
    if (n <= MAX_BINS) return;
    const k = n - MAX_BINS + 1;
    let c = 0;
    for (let i = lo; i < lo + k; i++) c += arr[i]! % SHIFT;
    const keep = arr[lo + k - 1]! - (arr[lo + k - 1]! % SHIFT) + c;
    arr.splice(lo, k, keep);
  };
  fold(np, arr.length - np);
  fold(0, np);
}

const keyOf = (x: number): number => x - (x % SHIFT);

/**
 * The sketch buckets of one pane: for each slot a sorted range of codes inside ONE Float64Array.
 * Typed-array memory lies outside the JS heap, so the buckets of thousands of series cost the
 * garbage collector nothing to trace or promote (per-series JS arrays were a fifth of the run
 * time in GC). Ranges grow by relocating to the end with twice the capacity; the arena compacts
 * itself when more than half of it is abandoned ranges. Slot index: [offset, length, capacity].
 */
class BinArena {
  a = new Float64Array(64);
  private top = 0;
  private live = 0;
  private x: Int32Array;

  constructor(slots: number) {
    this.x = new Int32Array(Math.max(8, slots) * 3);
  }

  length(slot: number): number {
    const i = slot * 3;
    return i < this.x.length ? this.x[i + 1]! : 0;
  }

  offset(slot: number): number {
    return this.x[slot * 3]!;
  }

  private ensureSlot(slot: number): void {
    if (slot * 3 < this.x.length) return;
    let n = this.x.length;
    while (n <= slot * 3) n *= 2;
    const x = new Int32Array(n);
    x.set(this.x);
    this.x = x;
  }

  /** Room for k codes; may compact (offsets move) or grow the array. */
  private alloc(k: number): number {
    if (this.top + k > this.a.length) {
      if (this.top - this.live > this.live) this.compact();
      if (this.top + k > this.a.length) {
        const a = new Float64Array(Math.max(this.a.length * 2, this.top + k));
        a.set(this.a.subarray(0, this.top));
        this.a = a;
      }
    }
    const o = this.top;
    this.top += k;
    this.live += k;
    return o;
  }

  private compact(): void {
    const a = new Float64Array(Math.max(64, this.live * 2));
    let top = 0;
    const x = this.x;
    for (let i = 0; i < x.length; i += 3) {
      const c = x[i + 2]!;
      if (c === 0) continue;
      a.set(this.a.subarray(x[i]!, x[i]! + x[i + 1]!), top);
      x[i] = top;
      top += c;
    }
    this.a = a;
    this.top = top;
  }

  /** Moves a slot's range to a new one of capacity `cap` (>= its length). */
  private relocate(slot: number, cap: number): number {
    const i = slot * 3;
    const no = this.alloc(cap);
    const o = this.x[i]!;
    const n = this.x[i + 1]!;
    this.a.copyWithin(no, o, o + n);
    this.live -= this.x[i + 2]!;
    this.x[i] = no;
    this.x[i + 2] = cap;
    return no;
  }

  /** Adds `count` to the bucket `code` of a slot. */
  add(slot: number, code: number, count: number): void {
    this.ensureSlot(slot);
    const i = slot * 3;
    let o = this.x[i]!;
    const n = this.x[i + 1]!;
    let a = this.a;
    let lo = 0;
    let hi = n - 1;
    // Consecutive samples of a series mostly hit the newest or an existing bucket: check the top first.
    if (hi >= 0 && a[o + hi]! < code) lo = n;
    else {
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const v = a[o + mid]!;
        if (v < code) lo = mid + 1;
        else if (v >= code + SHIFT) hi = mid - 1;
        else {
          a[o + mid] = v + count;
          return;
        }
      }
    }
    if (n === this.x[i + 2]!) {
      o = this.relocate(slot, n === 0 ? 2 : n * 2);
      a = this.a;
    }
    a.copyWithin(o + lo + 1, o + lo, o + n);
    a[o + lo] = code + count;
    this.x[i + 1] = n + 1;
    if (n + 1 > MAX_BINS) this.collapseSlot(slot);
  }

  /** Merges slot `os` of `other` (a finer window's buckets) into `slot`. */
  mergeFrom(slot: number, other: BinArena, os: number): void {
    const on = other.length(os);
    if (on === 0) return;
    this.ensureSlot(slot);
    const i = slot * 3;
    const b = other.a;
    const bo = other.offset(os);
    let n = this.x[i + 1]!;
    let o = this.x[i]!;
    // Merged length first, then an in-place merge from the back (no temporary arrays).
    let m = 0;
    for (let p = 0, q = 0; p < n || q < on; m++) {
      const ka = p < n ? keyOf(this.a[o + p]!) : Infinity;
      const kb = q < on ? keyOf(b[bo + q]!) : Infinity;
      if (ka <= kb) p++;
      if (kb <= ka) q++;
    }
    if (m > this.x[i + 2]!) o = this.relocate(slot, m + (m >> 1));
    const a = this.a;
    let p = n - 1;
    let q = on - 1;
    for (let k = m - 1; q >= 0; k--) {
      const vb = b[bo + q]!;
      const ka = p >= 0 ? keyOf(a[o + p]!) : -Infinity;
      const kb = keyOf(vb);
      if (ka > kb) a[o + k] = a[o + p--]!;
      else if (ka === kb) a[o + k] = a[o + p--]! + (vb % SHIFT), q--;
      else a[o + k] = vb, q--;
    }
    n = m;
    this.x[i + 1] = n;
    if (n > MAX_BINS) this.collapseSlot(slot);
  }

  /** A slot's codes as a new array (checkpoints, rare collapses). */
  codes(slot: number): number[] {
    const n = this.length(slot);
    const o = n > 0 ? this.offset(slot) : 0;
    return Array.from(this.a.subarray(o, o + n));
  }

  /** Sets a slot's codes (sorted) from an array. */
  set(slot: number, codes: readonly number[]): void {
    this.ensureSlot(slot);
    const i = slot * 3;
    let o = this.x[i]!;
    if (codes.length > this.x[i + 2]!) o = this.relocate(slot, codes.length);
    this.a.set(codes, o);
    this.x[i + 1] = codes.length;
  }

  private collapseSlot(slot: number): void {
    const c = this.codes(slot);
    collapse(c);
    this.set(slot, c);
  }
}

function sketchOf(bins: BinArena, slot: number, zero: number): SketchJSON {
  const j: SketchJSON = { a: ALPHA };
  const n = bins.length(slot);
  if (n > 0) {
    const a = bins.a;
    const o = bins.offset(slot);
    let np = 0;
    while (np < n && a[o + np]! < NEG * SHIFT) np++;
    if (np > 0) {
      const pi = new Array<number>(np);
      const pc = new Array<number>(np);
      for (let k = 0; k < np; k++) {
        const x = a[o + k]!;
        pi[k] = Math.floor(x / SHIFT) - BIAS;
        pc[k] = x % SHIFT;
      }
      j.pi = pi;
      j.pc = pc;
    }
    if (np < n) {
      const ni = new Array<number>(n - np);
      const nc = new Array<number>(n - np);
      for (let k = np; k < n; k++) {
        const x = a[o + k]!;
        ni[k - np] = Math.floor(x / SHIFT) - BIAS - NEG;
        nc[k - np] = x % SHIFT;
      }
      j.ni = ni;
      j.nc = nc;
    }
  }
  if (zero > 0) j.z = zero;
  return j;
}

function bucketValue(i: number): number {
  return (2 * Math.pow(GAMMA, i)) / (GAMMA + 1);
}

/** DDSketch's lower q-quantile over the sketch's buckets (the same walk as DDSketch.quantile). */
function quantileOf(j: SketchJSON, n: number, q: number): number {
  if (n === 0) return NaN;
  const rank = q * (n - 1);
  let seen = 0;
  if (j.ni) {
    for (let k = j.ni.length - 1; k >= 0; k--) {
      seen += j.nc![k]!;
      if (seen > rank) return -bucketValue(j.ni[k]!);
    }
  }
  seen += j.z ?? 0;
  if (seen > rank) return 0;
  if (j.pi) {
    for (let k = 0; k < j.pi.length; k++) {
      seen += j.pc![k]!;
      if (seen > rank) return bucketValue(j.pi[k]!);
    }
    return bucketValue(j.pi[j.pi.length - 1]!);
  }
  return 0;
}

type AggJSON = [number, number, number, number, number, number, number, number, number, SketchJSON];

/** One window instance (one spec, one start) with its columns by slot and its members in arrival order. */
interface Pane {
  readonly spec: number;
  readonly start: number;
  readonly end: number;
  emitted: boolean;
  /** Its content was merged into the coarser windows (or goes to them directly): never merge it again. */
  mergedUp: boolean;
  f: Float64Array;
  readonly bins: BinArena;
  readonly members: number[];
  /** Revision per slot, for the few cells that got corrections. */
  rev: Map<number, number> | null;
}

interface Channel {
  maxTs: number;
  readonly source: string;
}

export interface WindowStateJSON {
  v: 1 | 2 | 3;
  wm: number;
  newest: number;
  channels: [string, number, string][];
  /** Series table: [key, metric, labels]; panes refer to it by index. */
  series: [string, string, Labels][];
  /**
   * v1: per spec (by name) panes as [start, emitted, rows]; v2: [start, emitted, rows, mergedUp];
   * v3: [start, emitted, attachment, mergedUp], the rows binary in the snapshot's attachment of that
   * index (paneRows): numbers written as numbers, not text, for the bulk of a processor's state.
   */
  panes: Record<string, ([number, boolean, [number, AggJSON][]] | [number, boolean, [number, AggJSON][] | number, boolean])[]>;
  /** v2: the cascade the state was built with (`fine>coarse` pairs), so a changed one is detected. */
  cascade?: string;
}

/**
 * Series identity from (metric, labels), built once per label set: decoded batches carry one labels
 * object per interface, new in every message. The label text is built once per labels object and
 * leads to a shared entry whose key strings (one per metric) are the SAME flat string instances in
 * every batch, so downstream Map lookups hit cached hashes and compare pointers.
 * Each series has ONE ref, which also caches its slot in the window operator.
 */
/** A series as the window operator knows it: its key and, while a window holds it, its slot (else -1). */
export interface SeriesRef {
  readonly key: string;
  slot: number;
  /** Owned by the threshold operator: its rule entry for this series, valid while rulesGen is its generation. */
  rules: unknown;
  rulesGen: number;
}

interface LabelSetEntry {
  readonly text: string;
  readonly refs: Map<string, SeriesRef>;
  gen: number;
  dropped: boolean;
}

const BY_OBJECT_MAX = 4096;

export class SeriesKeys {
  /**
   * Labels object -> entry. A plain Map (identity hash) cleared when it grows past BY_OBJECT_MAX:
   * decoded batches bring new labels objects every message, and WeakMap inserts (ephemeron tables)
   * cost more than the whole rest of the lookup.
   */
  private byObject = new Map<Labels, LabelSetEntry>();
  private byText = new Map<string, LabelSetEntry>();
  private objects = 0;
  private gen = 0;
  // Consecutive samples of a batch share one labels object (an interface): skip the WeakMap for them.
  private lastLabels: Labels | null = null;
  private lastEntry: LabelSetEntry | null = null;

  ref(metric: string, labels: Labels): SeriesRef {
    let e = labels === this.lastLabels ? this.lastEntry! : this.byObject.get(labels);
    if (e === undefined || e.dropped) {
      const text = labelsText(labels);
      e = this.byText.get(text);
      if (e === undefined) {
        e = { text, refs: new Map(), gen: this.gen, dropped: false };
        this.byText.set(text, e);
      }
      if (this.byObject.size >= BY_OBJECT_MAX) this.byObject.clear();
      this.byObject.set(labels, e);
      if (++this.objects % 65_536 === 0) this.sweep();
    }
    e.gen = this.gen;
    this.lastLabels = labels;
    this.lastEntry = e;
    let r = e.refs.get(metric);
    if (r === undefined) {
      r = { key: flat(metric + e.text), slot: -1, rules: undefined, rulesGen: -1 };
      e.refs.set(metric, r);
    }
    return r;
  }

  /**
   * Forgets label sets not used for two sweeps and holding no slot. A dropped entry is never used
   * again (labels objects still mapped to it look the text up anew): one live ref per series, always.
   */
  private sweep(): void {
    this.gen++;
    for (const [text, e] of this.byText) {
      if (e.gen >= this.gen - 2) continue;
      let held = false;
      for (const r of e.refs.values()) if (r.slot >= 0) held = true;
      if (held) continue;
      e.dropped = true;
      this.byText.delete(text);
      if (this.lastEntry === e) this.lastLabels = this.lastEntry = null;
    }
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

/**
 * Which windows feed which: each tumbling spec takes its data from the largest finer tumbling spec
 * whose size divides its own (1m -> 5m -> 1h). Returns the coarser specs fed by each spec.
 */
export function cascadeOf(specs: readonly WindowSpec[]): number[][] {
  const parents: number[][] = specs.map(() => []);
  specs.forEach((p, pi) => {
    if (p.hopMs !== p.sizeMs) return;
    let child = -1;
    specs.forEach((c, ci) => {
      if (ci === pi || c.hopMs !== c.sizeMs || c.sizeMs >= p.sizeMs || p.sizeMs % c.sizeMs !== 0) return;
      if (child < 0 || c.sizeMs > specs[child]!.sizeMs) child = ci;
    });
    if (child >= 0) parents[child]!.push(pi);
  });
  return parents;
}

export class WindowOperator {
  private readonly specs: readonly WindowSpec[];
  /** Coarser specs each spec feeds; specs fed by none take samples directly (the roots). */
  private readonly parents: number[][];
  private readonly roots: number[];
  /** Specs in emission order: finer first, so a window merges up before its coarser one is emitted. */
  private readonly order: number[];
  private readonly cascadeId: string;
  /** Open panes per spec, ascending by start (few: current + those within allowed lateness). */
  private readonly panes: Pane[][];
  private readonly channels = new Map<string, Channel>();
  private wm = -Infinity;
  private newest = -Infinity;
  /** After a restore from state built without this cascade: windows starting before this go up directly. */
  private cascadeFrom = -Infinity;
  private results: WindowResult[] = [];
  private lateOut: LateSample[] = [];
  /** Cells of emitted windows updated by the current message, in first-update order. */
  private readonly dirty = new Map<Pane, Set<number>>();
  // The slot table: a series holds a slot while any pane holds it.
  private refOf: SeriesRef[] = [];
  private live = 0;
  private metricOf: string[] = [];
  private labelsOf: Labels[] = [];
  private refs: number[] = [];
  private free: number[] = [];
  private cap = 256;
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
    this.parents = cascadeOf(this.specs);
    const fed = new Set(this.parents.flat());
    this.roots = this.specs.map((_, k) => k).filter((k) => !fed.has(k));
    this.order = this.specs.map((_, k) => k).sort((a, b) => this.specs[a]!.sizeMs - this.specs[b]!.sizeMs || a - b);
    this.cascadeId = this.parents.flatMap((ps, k) => ps.map((p) => `${this.specs[k]!.name}>${this.specs[p]!.name}`)).join(',');
  }

  get watermark(): number {
    return this.wm;
  }

  /** Distinct series with at least one open window. */
  get seriesCount(): number {
    return this.live;
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

  /** The slot of a series, allocated on first use. SeriesKeys keeps one ref per series, so one slot per series. */
  private slotOf(ref: SeriesRef, metric: string, labels: Labels): number {
    if (ref.slot >= 0) return ref.slot;
    const slot = this.free.length > 0 ? this.free.pop()! : this.refOf.length;
    if (slot >= this.cap) this.cap *= 2;
    ref.slot = slot;
    this.live++;
    this.refOf[slot] = ref;
    this.metricOf[slot] = metric;
    this.labelsOf[slot] = labels;
    this.refs[slot] = 0;
    return slot;
  }

  private unref(slot: number): void {
    if (--this.refs[slot]! > 0) return;
    this.refOf[slot]!.slot = -1;
    this.refOf[slot] = NO_REF;
    this.live--;
    this.metricOf[slot] = '';
    this.labelsOf[slot] = EMPTY;
    this.free.push(slot);
  }

  /**
   * Processes one input message (one poll of one device) from `channel`. Samples are classified
   * against the watermark as it was BEFORE this message; the message then advances the watermark,
   * which may close windows. `refs` (from this.keys, one per sample) saves the identity lookup
   * when the caller already made it.
   */
  process(channel: string, source: string, samples: readonly Sample[], refs?: readonly SeriesRef[]): void {
    let maxTs = -Infinity;
    const roots = this.roots;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (!Number.isFinite(s.ts) || !Number.isFinite(s.value)) {
        rejectedTotal.inc({ reason: Number.isFinite(s.ts) ? 'non_finite_value' : 'non_finite_ts' });
        continue;
      }
      if (s.ts > maxTs) maxTs = s.ts;
      const ref = refs ? refs[i]! : this.keys.ref(s.metric, s.labels);
      const slot = ref.slot >= 0 ? ref.slot : this.slotOf(ref, s.metric, s.labels);
      // The sketch bucket is the same for every window: one logarithm per sample.
      const code = codeOf(s.value);
      for (let r = 0; r < roots.length; r++) this.assign(roots[r]!, slot, s, channel, code);
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

  private assign(k: number, slot: number, s: Sample, channel: string, code: number): void {
    const spec = this.specs[k]!;
    const hop = spec.hopMs;
    // Last window containing ts starts at floor(ts / hop) * hop; earlier ones step back by hop.
    let start = Math.floor(s.ts / hop) * hop;
    if (hop === spec.sizeMs) {
      this.assignOne(k, start, slot, s, channel, code);
      return;
    }
    const firstStart = start - spec.sizeMs + hop;
    for (; start >= firstStart; start -= hop) this.assignOne(k, start, slot, s, channel, code);
  }

  private assignOne(k: number, start: number, slot: number, s: Sample, channel: string, code: number): void {
    const spec = this.specs[k]!;
    const end = start + spec.sizeMs;
    const wm = this.wm;
    const closed = end <= wm;
    if (closed && end + spec.allowedLatenessMs <= wm) {
      this.lateOut.push({ window: spec.name, key: this.refOf[slot]!.key, sample: s, channel, watermark: wm, windowEnd: end });
      lateTotal.inc({ window: spec.name });
      // Too late for this window, maybe not for the coarser ones: they take it directly.
      for (const p of this.parents[k]!) this.assign(p, slot, s, channel, code);
      return;
    }
    const pane = this.paneFor(k, start, closed);
    add(pane, slot, s.ts, s.value, code, this.refs);
    if (closed && pane.emitted) {
      let d = this.dirty.get(pane);
      if (!d) this.dirty.set(pane, (d = new Set()));
      d.add(slot);
    }
    if (pane.mergedUp) for (const p of this.parents[k]!) this.assign(p, slot, s, channel, code);
  }

  private newPane(k: number, start: number, mergedUp: boolean): Pane {
    return { spec: k, start, end: start + this.specs[k]!.sizeMs, emitted: false, mergedUp, f: new Float64Array(this.cap * NF), bins: new BinArena(this.cap), members: [], rev: null };
  }

  private paneFor(k: number, start: number, closed: boolean): Pane {
    const ps = this.panes[k]!;
    // Most samples land in the newest pane: search from the end.
    let i = ps.length - 1;
    for (; i >= 0; i--) {
      const p = ps[i]!;
      if (p.start === start) return p;
      if (p.start < start) break;
    }
    // A window created after the watermark passed it is not merged up at emission: its samples go up directly.
    const np = this.newPane(k, start, closed || start < this.cascadeFrom);
    ps.splice(i + 1, 0, np);
    return np;
  }

  private flushCorrections(): void {
    if (this.dirty.size === 0) return;
    for (const [pane, slots] of this.dirty) {
      const spec = this.specs[pane.spec]!;
      for (const slot of slots) {
        pane.rev ??= new Map();
        pane.rev.set(slot, (pane.rev.get(slot) ?? 0) + 1);
        correctionsTotal.inc({ window: spec.name });
        this.results.push(this.resultOf(spec, pane, slot, 'correction'));
      }
    }
    this.dirty.clear();
  }

  private resultOf(spec: WindowSpec, pane: Pane, slot: number, kind: 'final' | 'correction'): WindowResult {
    const f = pane.f;
    const b = slot * NF;
    const n = f[b + F_COUNT]!;
    const sketch = sketchOf(pane.bins, slot, f[b + F_ZERO]!);
    const dt = f[b + F_LTS]! - f[b + F_FTS]!;
    return {
      kind,
      window: spec.name,
      sizeMs: spec.sizeMs,
      key: this.refOf[slot]!.key,
      metric: this.metricOf[slot]!,
      labels: this.labelsOf[slot]!,
      start: pane.start,
      end: pane.end,
      revision: pane.rev?.get(slot) ?? 0,
      agg: {
        count: n,
        sum: f[b + F_SUM]!,
        min: f[b + F_MIN]!,
        max: f[b + F_MAX]!,
        avg: f[b + F_SUM]! / n,
        first: f[b + F_FIRST]!,
        firstTs: f[b + F_FTS]!,
        last: f[b + F_LAST]!,
        lastTs: f[b + F_LTS]!,
        rate: dt > 0 ? ((f[b + F_LAST]! - f[b + F_FIRST]!) * 1000) / dt : null,
        p50: quantileOf(sketch, n, 0.5),
        p95: quantileOf(sketch, n, 0.95),
        p99: quantileOf(sketch, n, 0.99),
      },
      sketch,
    };
  }

  /** Merges every member of an emitted window into the coarser windows it feeds. */
  private mergeUp(pane: Pane): void {
    pane.mergedUp = true;
    for (const pk of this.parents[pane.spec]!) {
      const ps = this.specs[pk]!;
      const start = Math.floor(pane.start / ps.sizeMs) * ps.sizeMs;
      const parent = this.paneFor(pk, start, false);
      for (const slot of pane.members) merge(parent, slot, pane, this.refs);
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
    for (const k of this.order) {
      const spec = this.specs[k]!;
      const ps = this.panes[k]!;
      let drop = 0;
      for (const p of ps) {
        if (p.end > wm) break;
        if (!p.emitted) {
          p.emitted = true;
          for (const slot of p.members) this.results.push(this.resultOf(spec, p, slot, 'final'));
          if (!p.mergedUp) this.mergeUp(p);
        }
        if (p.end + spec.allowedLatenessMs <= wm) drop++;
      }
      // Panes are purged in start order; with equal lateness an older pane never outlives a newer one.
      if (drop > 0) {
        for (let i = 0; i < drop; i++) for (const slot of ps[i]!.members) this.unref(slot);
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

  /**
   * The state as a checkpoint (v3): JSON for the small parts, each pane's rows as one binary
   * attachment handed to `attach` (which returns its index). Per row: series index, the NF columns
   * as float64 (exact, infinities included), revision, sketch bucket codes as float64.
   */
  checkpoint(attach: (bytes: Uint8Array) => number): WindowStateJSON {
    const seriesIdx = new Map<number, number>();
    const series: [string, string, Labels][] = [];
    const panes: WindowStateJSON['panes'] = {};
    for (let k = 0; k < this.specs.length; k++) {
      panes[this.specs[k]!.name] = this.panes[k]!.map((p) => {
        const w = new Writer(16 + p.members.length * (NF * 8 + 16));
        w.varint(p.members.length);
        const f = p.f;
        const codes = p.bins;
        for (const slot of p.members) {
          let i = seriesIdx.get(slot);
          if (i === undefined) {
            i = series.length;
            series.push([this.refOf[slot]!.key, this.metricOf[slot]!, this.labelsOf[slot]!]);
            seriesIdx.set(slot, i);
          }
          w.varint(i);
          const b = slot * NF;
          for (let x = 0; x < NF; x++) w.f64(f[b + x]!);
          w.varint(p.rev?.get(slot) ?? 0);
          const n = codes.length(slot);
          w.varint(n);
          if (n > 0) {
            const a = codes.a;
            const o = codes.offset(slot);
            for (let x = 0; x < n; x++) w.f64(a[o + x]!);
          }
        }
        return [p.start, p.emitted, attach(w.bytes()), p.mergedUp];
      });
    }
    return {
      v: 3,
      wm: this.wm === -Infinity ? -1 : this.wm,
      newest: this.newest === -Infinity ? -1 : this.newest,
      channels: [...this.channels].map(([name, c]) => [name, c.maxTs, c.source]),
      series,
      panes,
      cascade: this.cascadeId,
    };
  }

  /**
   * Restores state. Specs missing from the checkpoint start empty; panes of specs no longer
   * configured are dropped (a configuration change, not data loss of the configured windows).
   * State written without this cascade (v1, or another window set) has every coarser window holding
   * its samples already: its finer windows are treated as merged up, and windows that started
   * before the restore send their samples up directly.
   */
  static fromJSON(opts: WindowOptions, j: WindowStateJSON, attachments: readonly Uint8Array[] = []): WindowOperator {
    if (typeof j !== 'object' || j === null || (j.v !== 1 && j.v !== 2 && j.v !== 3)) throw new Error('window state: not a v1, v2 or v3 checkpoint');
    const op = new WindowOperator(opts);
    // -1 marks "nothing seen yet": epoch ms of real samples are never negative.
    op.wm = j.wm < 0 ? -Infinity : j.wm;
    op.newest = j.newest < 0 ? -Infinity : j.newest;
    const sameCascade = (j.v === 2 || j.v === 3) && j.cascade === op.cascadeId;
    if (!sameCascade && op.newest > -Infinity) op.cascadeFrom = op.newest + 1;
    for (const [name, maxTs, source] of j.channels) op.channels.set(name, { maxTs, source });
    const slots = j.series.map((s, i) => {
      if (!Array.isArray(s) || typeof s[0] !== 'string') throw new Error(`window state: malformed series ${i}`);
      return -1;
    });
    for (let k = 0; k < op.specs.length; k++) {
      const spec = op.specs[k]!;
      const saved = j.panes[spec.name];
      if (!saved) continue;
      for (const row of saved) {
        const [start, emitted, rows] = row;
        const mergedUp = sameCascade ? row[3] === true : true;
        const pane = op.newPane(k, start, mergedUp);
        pane.emitted = emitted;
        if (typeof rows === 'number') {
          op.paneRows(pane, rows, attachments, j.series, slots);
          op.panes[k]!.push(pane);
          continue;
        }
        for (const [i, aj] of rows) {
          const slot = op.restoreMember(pane, i, j.series, slots, `window ${spec.name}`);
          const b = slot * NF;
          for (let x = 0; x < 8; x++) pane.f[b + x] = aj[x] as number;
          // JSON has no Infinity/NaN: an empty field came back as null.
          if (aj[2] === null) pane.f[b + F_MIN] = Infinity;
          if (aj[3] === null) pane.f[b + F_MAX] = -Infinity;
          if (aj[8] > 0) (pane.rev ??= new Map()).set(slot, aj[8]);
          const sk = aj[9];
          pane.f[b + F_ZERO] = sk.z ?? 0;
          const bins: number[] = [];
          if (sk.pi) for (let x = 0; x < sk.pi.length; x++) bins.push((sk.pi[x]! + BIAS) * SHIFT + sk.pc![x]!);
          if (sk.ni) for (let x = 0; x < sk.ni.length; x++) bins.push((sk.ni[x]! + BIAS + NEG) * SHIFT + sk.nc![x]!);
          if (bins.length > 0) pane.bins.set(slot, bins);
        }
        op.panes[k]!.push(pane);
      }
    }
    return op;
  }

  /** Makes series `i` of a checkpoint's table a member of `pane` (its slot, room for its row): the slot. */
  private restoreMember(pane: Pane, i: number, series: WindowStateJSON['series'], slots: number[], where: string): number {
    const s = series[i];
    if (!s) throw new Error(`window state: series index ${i} out of range in ${where}`);
    if (slots[i] === -1) slots[i] = this.slotOf(this.keys.ref(s[1], s[2]), s[1], s[2]);
    const slot = slots[i]!;
    if (slot * NF >= pane.f.length) grow(pane, slot);
    pane.members.push(slot);
    this.refs[slot]!++;
    return slot;
  }

  /** Restores one pane's rows from a v3 attachment (see checkpoint). */
  private paneRows(pane: Pane, at: number, attachments: readonly Uint8Array[], series: WindowStateJSON['series'], slots: number[]): void {
    const bytes = attachments[at];
    if (!bytes) throw new Error(`window state: pane rows attachment ${at} missing (${attachments.length} attached)`);
    const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const n = r.count('pane row', r.remaining);
    for (let k = 0; k < n; k++) {
      const slot = this.restoreMember(pane, r.varint(), series, slots, `attachment ${at}`);
      const b = slot * NF;
      for (let x = 0; x < NF; x++) pane.f[b + x] = r.f64();
      const rev = r.varint();
      if (rev > 0) (pane.rev ??= new Map()).set(slot, rev);
      const nb = r.count('sketch bucket', r.remaining / 8);
      if (nb > 0) {
        const codes = new Array<number>(nb);
        for (let x = 0; x < nb; x++) codes[x] = r.f64();
        pane.bins.set(slot, codes);
      }
    }
    if (r.remaining !== 0) throw new Error(`window state: ${r.remaining} trailing bytes in pane rows attachment ${at}`);
  }
}

const EMPTY: Labels = Object.freeze({});
const NO_REF: SeriesRef = Object.freeze({ key: '', slot: -1, rules: undefined, rulesGen: -1 }) as SeriesRef;

function grow(pane: Pane, slot: number): Float64Array {
  let n = pane.f.length || NF;
  while (n <= slot * NF) n *= 2;
  const f = new Float64Array(n);
  f.set(pane.f);
  pane.f = f;
  return f;
}

/** Adds one sample to a slot of a pane. */
function add(pane: Pane, slot: number, ts: number, v: number, code: number, refs: number[]): void {
  const b = slot * NF;
  const f = b < pane.f.length ? pane.f : grow(pane, slot);
  if (f[b] === 0) {
    pane.members.push(slot);
    refs[slot]!++;
    f[b] = 1;
    f[b + F_SUM] = v;
    f[b + F_MIN] = v;
    f[b + F_MAX] = v;
    f[b + F_FTS] = ts;
    f[b + F_FIRST] = v;
    f[b + F_LTS] = ts;
    f[b + F_LAST] = v;
    f[b + F_ZERO] = 0;
  } else {
    f[b]++;
    f[b + F_SUM] += v;
    if (v < f[b + F_MIN]!) f[b + F_MIN] = v;
    if (v > f[b + F_MAX]!) f[b + F_MAX] = v;
    // Ties keep the first arrival for `first` and the latest for `last`: deterministic by input order.
    if (ts < f[b + F_FTS]!) {
      f[b + F_FTS] = ts;
      f[b + F_FIRST] = v;
    }
    if (ts >= f[b + F_LTS]!) {
      f[b + F_LTS] = ts;
      f[b + F_LAST] = v;
    }
  }
  if (code < 0) {
    f[b + F_ZERO]++;
    return;
  }
  pane.bins.add(slot, code, 1);
}

/** Merges the cell of `slot` in `from` (a finer window) into the same slot of `to`. */
function merge(to: Pane, slot: number, from: Pane, refs: number[]): void {
  const b = slot * NF;
  const g = from.f;
  const f = b < to.f.length ? to.f : grow(to, slot);
  to.bins.mergeFrom(slot, from.bins, slot);
  if (f[b] === 0) {
    to.members.push(slot);
    refs[slot]!++;
    for (let x = 0; x < NF; x++) f[b + x] = g[b + x]!;
    return;
  }
  f[b] += g[b]!;
  f[b + F_SUM] += g[b + F_SUM]!;
  if (g[b + F_MIN]! < f[b + F_MIN]!) f[b + F_MIN] = g[b + F_MIN]!;
  if (g[b + F_MAX]! > f[b + F_MAX]!) f[b + F_MAX] = g[b + F_MAX]!;
  if (g[b + F_FTS]! < f[b + F_FTS]!) {
    f[b + F_FTS] = g[b + F_FTS]!;
    f[b + F_FIRST] = g[b + F_FIRST]!;
  }
  if (g[b + F_LTS]! >= f[b + F_LTS]!) {
    f[b + F_LTS] = g[b + F_LTS]!;
    f[b + F_LAST] = g[b + F_LAST]!;
  }
  f[b + F_ZERO] += g[b + F_ZERO]!;
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
