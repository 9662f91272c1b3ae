import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * ARTime, rewritten in TypeScript from the published description and source of ARTime (Mark Hampton,
 * NAB detector "ARTime"; Julia package ARTimeNAB.jl built on AdaptiveResonance.jl's DVFA). Facts
 * learned, code our own:
 *
 * 1. The series is downsampled: every `sstep` points become one value, the block's extreme on the
 *    side farther from a running level (spikes survive), unless it is within 10% of the block mean.
 * 2. That value is scaled to [0, 1] by the series range, quantised to `levels` steps, and snapped to
 *    the running median when within `chomp` of it (small wiggles around normal are not shapes).
 * 3. A feature vector of the last `window` values: their Haar wavelet coefficients (of the window
 *    min-max scaled, then the coefficients min-max scaled) and the raw values themselves.
 * 4. A dual-vigilance fuzzy ART memory (complement coding, fast learning, match = feature similarity³
 *    × "energy" similarity² of the newest value) classifies each vector: above the upper vigilance it
 *    resonates and teaches the category; between the vigilances it becomes a new category of a known
 *    cluster; below the lower vigilance it starts a new cluster - the anomaly candidate.
 * 5. Vigilance starts from a probe of the probation data, and adapts: the lower bound creeps up toward
 *    the worst recent similarity, or down when recent similarities fall below the upper bound; the
 *    upper bound follows the mean similarity (capped). Candidates are masked for a while after an
 *    anomaly and after a new cluster, unless clearly worse than the last anomaly.
 * 6. The probation period is buffered and learnt in one pass at its end (after the vigilance probe).
 *
 * Deviations, on purpose (streaming and bounded): NAB hands ARTime the file's min and max (look-ahead);
 * here the range comes from the probation data with a margin and grows when exceeded (the memory is
 * rescaled; clamping instead cost ~5 NAB points). The category memory is capped (the category
 * that resonates least, by recency and frequency, is replaced) and checkpointed deflated.
 * Candidates stay masked for 3 feature windows after a new cluster (1.5 in the original; measured
 * better on NAB). A count spanning several times its median is seen as log(1 + count / 2)
 * (logCounts, countKnee: decided from the probation, which has no look-ahead). The probation
 * length is a fixed warm-up count in production (NAB's harness passes its own value).
 */

export interface ArtimeParams {
  /** Points of probation (warm-up): learnt, never scored. Sets the downsampling and the horizons. */
  readonly probation: number;
  /** Feature window (downsampled values), a power of two. */
  readonly window: number;
  /** Feature windows per probation period (sets the downsampling step). */
  readonly windowsPerProbation: number;
  /** Quantisation steps of the scaled value. */
  readonly levels: number;
  /** Snap to the running median within this (fraction of the range). */
  readonly chomp: number;
  /** A block extreme within this fraction of the block mean is replaced by the mean. */
  readonly spikeMin: number;
  /** Vigilance used for the initial probe. */
  readonly initialRho: number;
  /** Cap on the upper vigilance. */
  readonly rhoUbCap: number;
  /** Categories kept (0 = unbounded, the original). */
  readonly maxCategories: number;
  /** Range: 'fixed' = given (benchmark oracle), 'probation' = from the probation data with `margin`. */
  readonly range: 'fixed' | 'probation';
  /** Margin added on each side of the probation range, as a fraction of it. */
  readonly margin: number;
  /** When the range is exceeded: 'clamp', or 'grow' (rescale the memory to the wider range). */
  readonly overflow: 'clamp' | 'grow';
  /** Margin beyond a value that grew the range, as a fraction of the old range (default: margin). */
  readonly growMargin?: number;
  /** Fixed range (range = 'fixed'). */
  readonly min?: number;
  readonly max?: number;
  /** Sign convention of the Haar detail coefficients (validation against the original). */
  readonly haarSign: 1 | -1;
  /** Report within the block, at the point that makes it anomalous (see peek); false = the original. */
  readonly early: boolean;
  /** Masking horizon after a reported anomaly, in feature windows (1.5 in the original, and when unset). */
  readonly maskFactor?: number;
  /**
   * Masking horizon after a new cluster (candidates stay masked until this long without one), in
   * feature windows (maskFactor when unset, as in the original). Longer here: a series that keeps
   * making new clusters is still settling, and its candidates were mostly false positives.
   */
  readonly catMaskFactor?: number;
  /** Eviction head start (downsampled steps) of a category that resonated over one only created. */
  readonly keep: number;
  /**
   * Head starts a category may bank, in keeps: each resonance moves its eviction rank `keep` past
   * the later of its rank and now, at most credit x keep ahead of now (1 = least recently resonating
   * first, with the head start). A category that resonates every day is the series' routine and
   * outlives one-off shapes; under plain recency a memory smaller than a day's shapes evicted the one
   * due next. The cap lets a routine that ended be forgotten.
   */
  readonly credit: number;
  /**
   * A count (every probation value a non-negative integer) whose 99th percentile is at least this
   * many times its median is seen as log(1 + count / countKnee) (0 = never). On a linear scale, one
   * burst of 10x stretches the range so far that the count's ordinary life is squeezed into a few
   * of the levels and its counting noise reads as ever-new patterns; on the log scale a doubling is
   * the same step at any level and an unusual zero still stands out. An event is the natural unit
   * of a count, so this needs no scale taken from the data; a gauge has no such unit and stays
   * linear, as does a count that stays within a narrow multiple of its median (a busy service's
   * daily rhythm), where the log would only magnify its quiet hours.
   */
  readonly logCounts: number;
  /**
   * Events below which a log-scaled count turns linear: ARTime sees log(1 + count / countKnee). At
   * 1 (log(1 + count)) the counting noise of a quiet hour (0 against 4 in a count of a few per poll)
   * is as tall as a tenfold burst and read as new shapes; a knee of a few events keeps that noise
   * low while a doubling above it is still one step.
   */
  readonly countKnee: number;
}

export const DEFAULT_ARTIME: ArtimeParams = {
  probation: 750,
  window: 8,
  windowsPerProbation: 13,
  levels: 80,
  chomp: 0.075,
  spikeMin: 0.1,
  initialRho: 0.8,
  rhoUbCap: 0.97,
  maxCategories: 48,
  range: 'probation',
  margin: 0.75,
  overflow: 'grow',
  growMargin: 0.2,
  haarSign: -1,
  early: false,
  keep: 100,
  credit: 4,
  maskFactor: 1.5,
  catMaskFactor: 3,
  logCounts: 2.5,
  countKnee: 2,
};

/** The probation's count grid: 4 bins per doubling of 1 + count, up to 2^40 (larger counts share the last bin). */
const COUNT_BINS = 160;

/** Julia's round(Int, x): ties to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface ArtimeState {
  /** Points seen, downsampled values made (1-based as in the original: next index). */
  i: number;
  dsi: number;
  /** Current block: points, sum, min, max. */
  bk: number;
  bs: number;
  bmin: number;
  bmax: number;
  /** Running level of block means. */
  ma: number;
  /** Range used for scaling. */
  lo: number;
  hi: number;
  /** Histogram of levels and the running-median walker. */
  bins: number[];
  med: number;
  below: number;
  above: number;
  /** Last `window` snapped values. */
  fw: number[];
  /** Probation: the raw downsampled values waiting for the range and the batch pass. */
  pb: number[];
  /** The current block was already reported by the early look. */
  rep: boolean;
  /** Point index (i) at which the range last grew; absent if it never has. */
  gi?: number;
  /** Probation: a value that is not a count (negative or fractional) was seen. */
  nci?: boolean;
  /** Probation: the counts on a log2 grid (4 bins per doubling of 1 + count), for the span test; dropped after it. */
  cq?: number[];
  /** The series is seen as log(1 + count / countKnee) (logCounts); absent: linear. */
  log?: boolean;
  /** ART memory (see Art); present in JSON only. */
  art?: ArtState;
}

export interface ArtState {
  dim: number;
  /** Categories in use. */
  nc: number;
  /**
   * The binary memory, deflated, base64: categories (complement coded, in grid units, bytes, nc x
   * 2 dim), each one's eviction rank (the step it was made, or past its last resonance by its
   * banked head starts; uint32 x nc), the ring of recent best matches (uint16 of 1/65535) and of
   * ub - match (int16 of 1/32767). Deflate halves it: categories share most of their bytes.
   */
  z?: string;
  /** The same parts, separately and not deflated (older checkpoints). */
  w?: string;
  used?: string;
  sim?: string;
  diff?: string;
  /** Heads of the two rings. */
  simH: number;
  diffH: number;
  lb: number;
  ub: number;
  /** Samples seen (train calls), and the running mean of the best match. */
  n: number;
  meanA: number;
  /** Anomaly similarity history: sum of all but the last, count, last. */
  hSum: number;
  hN: number;
  hLast: number;
  lastAnomaly: number;
  lastAnomalySim: number;
  lastRhoUpdate: number;
  maskAfterCat: boolean;
  noNewCat: number;
}

/** The downsampling step and horizons a probation length implies (as the original derives them). */
export function horizons(p: ArtimeParams): { probation: number; sstep: number; trend: number; mask: number; catMask: number } {
  const probation = p.probation - (p.probation % 2);
  const sstep = Math.max(1, Math.round(Math.floor(probation / (p.window * p.windowsPerProbation))));
  const trend = Math.floor(probation / sstep);
  return { probation, sstep, trend, mask: Math.floor(p.window * (p.maskFactor ?? 1.5)), catMask: Math.floor(p.window * (p.catMaskFactor ?? p.maskFactor ?? 1.5)) };
}

export interface ArtimeVerdict {
  /** Anomaly confidence in [0, 1] (0 on most points). */
  readonly score: number;
  /** True on points that completed a downsampled value. */
  readonly done: boolean;
  /** Best match of that value's feature vector against the memory (1 = familiar). */
  readonly similarity: number;
  /** True when the value started a new cluster (the candidate, before masking). */
  readonly novel: boolean;
}

const QUIET: ArtimeVerdict = { score: 0, done: false, similarity: 1, novel: false };

export class Artime {
  readonly s: ArtimeState;
  readonly h: ReturnType<typeof horizons>;
  private readonly art: Art;
  private readonly feat: Float64Array;
  private readonly tmp: Float64Array;

  constructor(readonly p: ArtimeParams = DEFAULT_ARTIME, state?: ArtimeState) {
    this.h = horizons(p);
    if ((p.window & (p.window - 1)) !== 0) throw new Error(`artime: window ${p.window} is not a power of two`);
    this.feat = new Float64Array(2 * p.window);
    this.tmp = new Float64Array(p.window);
    if (state) {
      const { art: _art, ...rest } = state;
      this.s = { ...rest, bins: state.bins.slice(), fw: state.fw.slice(), pb: state.pb.slice(), ...(state.cq ? { cq: state.cq.slice() } : {}), bmin: state.bmin ?? Infinity, bmax: state.bmax ?? -Infinity };
    } else {
      const fixed = p.range === 'fixed';
      this.s = {
        i: 1,
        dsi: 1,
        bk: 0,
        bs: 0,
        bmin: Infinity,
        bmax: -Infinity,
        ma: 0,
        lo: fixed ? p.min ?? 0 : 0,
        hi: fixed ? p.max ?? 1 : 1,
        bins: new Array(p.levels + 1).fill(0),
        med: 0,
        below: 0,
        above: 0,
        fw: new Array(p.window).fill(0),
        pb: [],
        rep: false,
      };
    }
    this.art = new Art(p, this.h, 2 * p.window, state?.art);
  }

  /** Scores and learns one raw value. */
  step(value: number): ArtimeVerdict {
    const s = this.s;
    const { sstep, trend } = this.h;
    s.bk++;
    s.bs += value;
    if (value < s.bmin) s.bmin = value;
    if (value > s.bmax) s.bmax = value;
    if (s.dsi <= trend && !s.nci) this.countValue(value);
    const i = s.i++;
    if (i % sstep !== 0) {
      if (!this.p.early || s.dsi <= trend || s.rep || (value !== s.bmax && value !== s.bmin)) return QUIET;
      const score = this.peek();
      if (score > 0) s.rep = true;
      return score > 0 ? { score, done: false, similarity: 0, novel: true } : QUIET;
    }
    const mean = s.bs / s.bk;
    if (s.dsi === 1) s.ma = mean;
    s.ma = (s.ma + mean) / 2;
    let ds = Math.abs(s.bmax - s.ma) < Math.abs(s.bmin - s.ma) ? s.bmin : s.bmax;
    if (Math.abs(ds - mean) < this.p.spikeMin * mean) ds = mean;
    s.bk = 0;
    s.bs = 0;
    s.bmin = Infinity;
    s.bmax = -Infinity;
    const dsi = s.dsi++;
    if (dsi <= trend) {
      // Probation: hold the values; at its end, fix the range and learn them in one pass.
      s.pb.push(ds);
      if (dsi === trend) this.endProbation();
      return { score: 0, done: true, similarity: 1, novel: false };
    }
    const v = this.art.detect(this.encode(this.scaled(ds), dsi), dsi);
    if (s.rep) {
      s.rep = false;
      // the block's anomaly was already reported early in the block
      if (v.score > 0) return { ...v, score: 0 };
    }
    return v;
  }

  /** Probation: is the series still a count, and where does this value fall on the count grid. */
  private countValue(value: number): void {
    const s = this.s;
    if (!(value >= 0 && Number.isInteger(value))) {
      s.nci = true;
      delete s.cq;
      return;
    }
    const cq = (s.cq ??= new Array<number>(COUNT_BINS).fill(0));
    cq[Math.min(COUNT_BINS - 1, Math.floor(4 * Math.log2(1 + value)))]!++;
  }

  /** The end of probation: a count spanning logCounts times its median or more is seen on the log scale from now on. */
  private chooseScale(): void {
    const s = this.s;
    const cq = s.cq;
    delete s.cq;
    if (s.nci || !cq || !(this.p.logCounts > 0)) return;
    const total = cq.reduce((a, b) => a + b, 0);
    // a bin's value: the middle of its doubling span (bin 0 holds exactly 0)
    const quantile = (q: number): number => {
      let acc = 0;
      for (let k = 0; k < cq.length; k++) if ((acc += cq[k]!) > q * total) return k === 0 ? 0 : 2 ** ((k + 0.5) / 4) - 1;
      return 0;
    };
    if (total > 0 && quantile(0.99) >= this.p.logCounts * quantile(0.5)) s.log = true;
  }

  /** A downsampled value on the series' scale (log(1 + count / countKnee), or as it is). */
  private scaled(ds: number): number {
    return this.s.log ? Math.log1p(ds / this.p.countKnee) : ds;
  }

  /** Whether the series is seen as log(1 + count / countKnee) (logCounts). */
  get logScale(): boolean {
    return this.s.log === true;
  }

  private endProbation(): void {
    const s = this.s;
    const p = this.p;
    this.chooseScale();
    if (s.log) s.pb = s.pb.map((v) => this.scaled(v));
    if (p.range === 'probation') {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of s.pb) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const pad = (hi - lo) * p.margin;
      s.lo = lo - pad;
      s.hi = hi + pad;
    }
    const n = s.pb.length;
    const feats: Float64Array[] = [];
    for (let k = 0; k < n; k++) feats.push(this.encode(s.pb[k]!, k + 1).slice());
    s.pb = [];
    this.art.probation(feats);
  }

  /** Scaled, quantised level of a downsampled value (0..levels). */
  private level(raw: number, commit: boolean): number {
    const s = this.s;
    const p = this.p;
    const L = p.levels;
    let x = raw - s.lo;
    if (s.hi - s.lo !== 0) x /= s.hi - s.lo;
    let level = roundEven(x * L);
    if (level < 0 || level > L) {
      if (commit && p.overflow === 'grow' && p.range !== 'fixed') {
        this.grow(raw);
        x = (raw - s.lo) / (s.hi - s.lo);
        level = roundEven(x * L);
      }
      level = Math.min(L, Math.max(0, level));
    }
    return level;
  }

  /** Scaling, quantisation, median snap and the feature vector of downsampled value number `dsi`. */
  private encode(raw: number, dsi: number): Float64Array {
    const s = this.s;
    const p = this.p;
    const L = p.levels;
    const level = this.level(raw, true);
    let ds = level / L;
    // a running median of the levels (a walker over the histogram, as the original)
    s.bins[level]!++;
    const medpos = Math.floor(dsi / 2);
    if (dsi === 1) s.med = level;
    if (s.med > level) s.below++;
    else if (s.med < level) s.above++;
    if (medpos < s.above) {
      s.below += s.bins[s.med]!;
      s.med++;
      while (s.bins[s.med] === 0) s.med++;
      s.above -= s.bins[s.med]!;
    } else if (medpos < s.below) {
      s.above += s.bins[s.med]!;
      s.med--;
      while (s.bins[s.med] === 0) s.med--;
      s.below -= s.bins[s.med]!;
    }
    const med = s.med / L;
    if (Math.abs(ds - med) < p.chomp) ds = med;
    s.fw.shift();
    s.fw.push(ds);
    return this.features(s.fw, dsi);
  }

  /** The feature vector of a window of snapped values: Haar coefficients (scaled twice) and the values. */
  private features(fw: readonly number[], dsi: number): Float64Array {
    const p = this.p;
    const W = p.window;
    const f = this.feat;
    f.fill(0);
    if (dsi >= W) {
      const t = this.tmp;
      let mn = Infinity;
      for (let k = 0; k < W; k++) if (fw[k]! < mn) mn = fw[k]!;
      let mx = -Infinity;
      for (let k = 0; k < W; k++) {
        t[k] = fw[k]! - mn;
        if (t[k]! > mx) mx = t[k]!;
      }
      if (mx !== 0) for (let k = 0; k < W; k++) t[k]! /= mx;
      haar(t, f, p.haarSign);
      let fmn = Infinity;
      for (let k = 0; k < W; k++) if (f[k]! < fmn) fmn = f[k]!;
      let fmx = -Infinity;
      for (let k = 0; k < W; k++) {
        f[k] = f[k]! - fmn;
        if (f[k]! > fmx) fmx = f[k]!;
      }
      if (fmx !== 0) for (let k = 0; k < W; k++) f[k]! /= fmx;
      for (let k = 0; k < W; k++) f[W + k] = fw[k]!;
    }
    return f;
  }

  /**
   * Early look (not in the original): the block so far, taken as if it ended now, is checked against
   * the memory without learning. A new extreme that would already be reported is reported at once
   * rather than up to sstep - 1 points later; the block's own report is then not repeated.
   */
  private peek(): number {
    const s = this.s;
    const mean = s.bs / s.bk;
    const ma = (s.ma + mean) / 2;
    let ds = Math.abs(s.bmax - ma) < Math.abs(s.bmin - ma) ? s.bmin : s.bmax;
    if (Math.abs(ds - mean) < this.p.spikeMin * mean) ds = mean;
    const L = this.p.levels;
    let v = this.level(this.scaled(ds), false) / L;
    const med = s.med / L;
    if (Math.abs(v - med) < this.p.chomp) v = med;
    // only a value beyond everything in the window (a spike or a step) is worth an early word
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of s.fw) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (v <= hi + this.p.chomp && v >= lo - this.p.chomp) return 0;
    const fw = s.fw.slice(1);
    fw.push(v);
    return this.art.peek(this.features(fw, s.dsi), s.dsi);
  }

  /** Widens the range to hold `raw` (with the margin), rescaling what depends on it. */
  private grow(raw: number): void {
    const s = this.s;
    const p = this.p;
    const span = s.hi - s.lo;
    const gm = p.growMargin ?? p.margin;
    const lo = Math.min(s.lo, raw - span * gm);
    const hi = Math.max(s.hi, raw + span * gm);
    const a = span / (hi - lo);
    const b = (s.lo - lo) / (hi - lo);
    const L = p.levels;
    // histogram and median move to the new levels
    const bins = new Array(L + 1).fill(0);
    for (let k = 0; k <= L; k++) if (s.bins[k]) bins[Math.min(L, Math.max(0, roundEven((k / L) * a * L + b * L)))] += s.bins[k]!;
    s.bins = bins;
    s.med = Math.min(L, Math.max(0, roundEven(s.med * a + b * L)));
    while (s.bins[s.med] === 0 && s.med > 0) s.med--;
    for (let k = 0; k < s.fw.length; k++) s.fw[k] = s.fw[k]! * a + b;
    this.art.rescaleRaw(p.window, a, b);
    s.gi = s.i;
    s.lo = lo;
    s.hi = hi;
  }

  /** Points since the range last grew (Infinity if it never has). */
  get sinceGrowth(): number {
    return this.s.gi === undefined ? Infinity : this.s.i - this.s.gi;
  }

  /** Categories in memory, and the current lower vigilance (for explanations). */
  get categories(): number {
    return this.art.categories;
  }

  get vigilance(): number {
    return this.art.s.lb;
  }

  toJSON(): ArtimeState {
    return { ...this.s, bins: this.s.bins.slice(), fw: this.s.fw.slice(), pb: this.s.pb.slice(), ...(this.s.cq ? { cq: this.s.cq.slice() } : {}), art: this.art.toJSON() };
  }
}

/** Full-depth orthonormal Haar transform of t (length a power of two) into out[0..n): [s, dN, ..., d1]. */
function haar(t: Float64Array, out: Float64Array, sign: 1 | -1): void {
  const n = t.length;
  const a = new Float64Array(t);
  const R = Math.SQRT1_2;
  let len = n;
  while (len > 1) {
    const half = len >> 1;
    const s = new Float64Array(half);
    for (let k = 0; k < half; k++) {
      s[k] = (a[2 * k]! + a[2 * k + 1]!) * R;
      out[half + k] = sign * (a[2 * k]! - a[2 * k + 1]!) * R;
    }
    a.set(s);
    len = half;
  }
  out[0] = a[0]!;
}

/** Grid of the feature values: 240 steps holds the 80 levels exactly and fits a byte. */
const Q = 240;
const SIM_Q = 65535;
const DIFF_Q = 32767;

function bytesOf<T extends ArrayBufferView>(a: T, bytes = a.byteLength): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, bytes);
}

function unb64(s: string | undefined): Buffer {
  return Buffer.from(s ?? '', 'base64');
}

/** Dual-vigilance fuzzy ART with ARTime's vigilance adaptation and masking, on a byte grid. */
export class Art {
  readonly s: Omit<ArtState, 'z' | 'w' | 'used' | 'sim' | 'diff'>;
  private w: Uint8Array;
  private used: Uint32Array;
  private readonly sim: Uint16Array;
  private readonly diff: Int16Array;
  private readonly x: Uint8Array;
  private M: Float64Array;
  private readonly cap: number;

  constructor(readonly p: ArtimeParams, readonly h: ReturnType<typeof horizons>, dim: number, state?: ArtState) {
    this.cap = p.maxCategories > 0 ? p.maxCategories + 1 : Infinity;
    const D2 = 2 * dim;
    this.x = new Uint8Array(D2);
    this.M = new Float64Array(16);
    this.sim = new Uint16Array(Math.floor(h.trend / 2) + 1);
    this.diff = new Int16Array(h.trend + 1);
    if (state) {
      const { z, w, used, sim, diff, ...rest } = state;
      this.s = { ...rest };
      let wb: Buffer, ub: Buffer, sb: Buffer, db: Buffer;
      if (z !== undefined) {
        const all = inflateRawSync(unb64(z));
        const cuts = [state.nc * D2, state.nc * 4, this.sim.byteLength, this.diff.byteLength];
        if (all.length !== cuts.reduce((a, b) => a + b, 0)) throw new Error(`artime memory: ${all.length} bytes, expected ${cuts.reduce((a, b) => a + b, 0)} for ${state.nc} categories`);
        let at = 0;
        [wb, ub, sb, db] = cuts.map((n) => all.subarray(at, (at += n))) as [Buffer, Buffer, Buffer, Buffer];
      } else [wb, ub, sb, db] = [unb64(w), unb64(used), unb64(sim), unb64(diff)];
      const room = Math.max(16, state.nc);
      this.w = new Uint8Array(room * D2);
      this.w.set(wb.subarray(0, Math.min(wb.length, room * D2)));
      this.used = new Uint32Array(room);
      this.used.set(new Uint32Array(ub.buffer.slice(ub.byteOffset, ub.byteOffset + Math.min(ub.length, room * 4))));
      this.sim.set(new Uint16Array(sb.buffer.slice(sb.byteOffset, sb.byteOffset + this.sim.byteLength)));
      this.diff.set(new Int16Array(db.buffer.slice(db.byteOffset, db.byteOffset + this.diff.byteLength)));
    } else {
      this.s = { dim, nc: 0, lb: 0, ub: 0, n: 0, meanA: 0, simH: 0, diffH: 0, hSum: 0, hN: 0, hLast: 0, lastAnomaly: 0, lastAnomalySim: 0, lastRhoUpdate: 0, maskAfterCat: false, noNewCat: 0 };
      this.w = new Uint8Array(16 * D2);
      this.used = new Uint32Array(16);
      this.sim.fill(SIM_Q);
    }
  }

  get categories(): number {
    return Math.max(0, this.s.nc - 1);
  }

  /** Rescales the raw-value half of every category after the range grew: v' = a v + b. */
  rescaleRaw(window: number, a: number, b: number): void {
    const D = this.s.dim;
    const w = this.w;
    for (let j = 1; j < this.s.nc; j++) {
      const o = j * 2 * D;
      for (let k = window; k < D; k++) {
        // lower bound u and complement of the upper bound (1 - v), in grid units
        w[o + k] = Math.min(Q, Math.max(0, Math.round(w[o + k]! * a + b * Q)));
        w[o + D + k] = Math.min(Q, Math.max(0, Math.round(Q - ((Q - w[o + D + k]!) * a + b * Q))));
      }
    }
  }

  /** The end of probation: probe the vigilance on the buffered vectors, then learn them in order. */
  probation(feats: Float64Array[]): void {
    const W = this.p.window;
    const trend = this.h.trend;
    const rho = this.probe(feats.slice(W - 1, trend), trend);
    this.s.lb = rho;
    this.s.ub = rho;
    for (let k = 0; k < feats.length; k++) this.detect(feats[k]!, k + 1);
  }

  /** ARTime's initial vigilance: learn the probation vectors least typical first at initialRho, mean late match. */
  private probe(xs: Float64Array[], trend: number): number {
    const n = xs.length;
    const q = xs.map((v) => Float64Array.from(v, (f) => Math.round(f * Q) / Q));
    const norms = q.map((v) => Math.hypot(...v));
    const sum = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let sim = 1;
        if (i !== j) {
          const a = norms[i]!;
          const b = norms[j]!;
          if (a === 0) sim = 1 - b;
          else if (b === 0) sim = 1 - a;
          else {
            let dot = 0;
            for (let k = 0; k < q[i]!.length; k++) dot += q[i]![k]! * q[j]![k]!;
            sim = dot / (a * b);
          }
        }
        sum[i]! += sim;
      }
    }
    const order = [...Array(n).keys()].sort((a, b) => sum[a]! - sum[b]! || a - b);
    const probe = new Art({ ...this.p, maxCategories: 0 }, this.h, this.s.dim);
    probe.s.lb = this.p.initialRho;
    probe.s.ub = this.p.initialRho;
    const A: number[] = [];
    for (const k of order) A.push(probe.train(xs[k]!, true).A);
    const from = Math.floor(trend / 2) - 1;
    let acc = 0;
    let cnt = 0;
    for (let k = from; k < A.length; k++) {
      acc += A[k]!;
      cnt++;
    }
    return cnt > 0 ? acc / cnt : this.p.initialRho;
  }

  /** Scores f against the memory without learning: best match and its energy similarity. */
  match(f: Float64Array): { A: number; Ae: number } {
    this.load(f);
    const r = this.activate();
    return { A: r.A, Ae: r.Ae };
  }

  private load(f: Float64Array): void {
    const D = this.s.dim;
    const x = this.x;
    for (let k = 0; k < D; k++) {
      const v = Math.min(Q, Math.max(0, Math.round(f[k]! * Q)));
      x[k] = v;
      x[D + k] = Q - v;
    }
  }

  /** Match of the loaded sample against every category (M), and the best. */
  private activate(): { A: number; Ae: number; best: number; nan: boolean } {
    const s = this.s;
    const D = s.dim;
    const D2 = 2 * D;
    const x = this.x;
    const w = this.w;
    const nc = s.nc;
    if (this.M.length < nc) this.M = new Float64Array(nc * 2);
    const M = this.M;
    let best = -1;
    let bestM = -1;
    let bestE = 0;
    let nan = false;
    const xl = x[D - 1]!;
    const xc = x[D2 - 1]!;
    for (let j = 0; j < nc; j++) {
      const o = j * D2;
      let num = 0;
      let den = 0;
      for (let k = 0; k < D2; k++) {
        const wk = w[o + k]!;
        const xk = x[k]!;
        num += xk < wk ? xk : wk;
        den += wk;
      }
      const fs = den === 0 ? num / (0.001 * Q) : num / den;
      const wl = w[o + D - 1]!;
      const wc = w[o + D2 - 1]!;
      const eden = wl + wc;
      if (eden === 0) {
        // a category spanning the whole range of the newest value has no energy (0/0): in the
        // original it sorts first and stops the search, so nothing matches
        nan = true;
        M[j] = NaN;
        continue;
      }
      const es = ((xl < wl ? xl : wl) + (xc < wc ? xc : wc)) / eden;
      const m = fs * fs * fs * es * es;
      M[j] = m;
      if (m > bestM) {
        bestM = m;
        best = j;
        bestE = es;
      }
    }
    const none = nan || bestM <= 0;
    return { A: none ? 0 : bestM, Ae: none ? 0 : bestE, best, nan };
  }

  /**
   * One DVFA step. Returns the best match A, its energy similarity Ae, and whether the sample
   * started a new cluster (`novel`). The first sample ever only creates the uncommitted category.
   */
  train(f: Float64Array, learn: boolean): { A: number; Ae: number; novel: boolean } {
    const s = this.s;
    const D2 = 2 * s.dim;
    this.load(f);
    s.n++;
    if (s.nc === 0) {
      // the original starts with an all-ones category (matches nothing well) and skips the sample
      this.w.fill(Q, 0, D2);
      this.used[0] = s.n;
      s.nc = 1;
      return { A: 0, Ae: 0, novel: false };
    }
    const r = this.activate();
    if (!learn) return { A: r.A, Ae: r.Ae, novel: true };
    const M = this.M;
    if (!r.nan && r.best >= 0 && r.A >= s.ub) {
      // resonance: every category above the upper vigilance learns (fast learning: w = min(x, w))
      const x = this.x;
      const w = this.w;
      for (let j = 0; j < s.nc; j++) {
        if (M[j]! >= s.ub) {
          const o = j * D2;
          for (let k = 0; k < D2; k++) if (x[k]! < w[o + k]!) w[o + k] = x[k]!;
          this.used[j] = Math.min(s.n + this.p.credit * this.p.keep, Math.max(this.used[j]!, s.n) + this.p.keep);
        }
      }
      return { A: r.A, Ae: r.Ae, novel: false };
    }
    const novel = r.nan || r.best < 0 || r.A < s.lb;
    this.commit();
    return { A: r.A, Ae: r.Ae, novel };
  }

  /** Stores the loaded sample as a category; when full, over the one of lowest eviction rank (see `credit`). */
  private commit(): void {
    const s = this.s;
    const D2 = 2 * s.dim;
    let slot = s.nc;
    if (s.nc < this.cap) {
      if ((s.nc + 1) * D2 > this.w.length) {
        const w = new Uint8Array(this.w.length * 2);
        w.set(this.w);
        this.w = w;
        const u = new Uint32Array(this.used.length * 2);
        u.set(this.used);
        this.used = u;
      }
      s.nc++;
    } else {
      // never the first, uncommitted one
      slot = 1;
      for (let j = 2; j < s.nc; j++) if (this.used[j]! < this.used[slot]!) slot = j;
    }
    this.w.set(this.x, slot * D2);
    this.used[slot] = s.n;
  }

  /** Would f be reported now (a new cluster, not masked)? Confidence if so, else 0. No state changes. */
  peek(f: Float64Array, i: number): number {
    const s = this.s;
    if (i <= this.h.trend || i < this.p.window) return 0;
    const r = this.match(f);
    if (!(r.A < s.lb) && !(r.A === 0)) return 0;
    const maskAfterAnomaly = i - s.lastAnomaly <= this.h.mask;
    let maskAfterCat = s.maskAfterCat;
    if (i > this.h.trend + this.h.catMask && maskAfterCat && s.noNewCat >= this.h.catMask) maskAfterCat = false;
    const belowLast = r.A < s.lastAnomalySim * (maskAfterAnomaly ? 0.9 : 0.7);
    return !(maskAfterCat || maskAfterAnomaly) || belowLast ? this.confidence(r.A, r.Ae) : 0;
  }

  detect(f: Float64Array, i: number): ArtimeVerdict {
    const s = this.s;
    const { trend, mask, catMask } = this.h;
    const updateAfterAnomaly = i - s.lastAnomaly === mask;
    const updateForTrend = i - s.lastRhoUpdate >= Math.floor(trend / 2);
    const maskAfterAnomaly = i - s.lastAnomaly <= mask;
    if (i > trend + catMask && s.maskAfterCat && s.noNewCat >= catMask) s.maskAfterCat = false;
    const r = this.train(f, i >= this.p.window);
    const newCluster = i < this.p.window || r.novel;
    s.noNewCat = newCluster ? 0 : s.noNewCat + 1;
    const A = r.A;
    s.meanA += (A - s.meanA) / s.n;
    this.sim[s.simH] = Math.round(A * SIM_Q);
    s.simH = (s.simH + 1) % this.sim.length;
    this.diff[s.diffH] = Math.round(Math.max(-1, Math.min(1, s.ub - A)) * DIFF_Q);
    s.diffH = (s.diffH + 1) % this.diff.length;
    if (i - s.lastAnomaly < mask && s.hN > 0 && A < s.hLast) s.hLast = A;
    const masking = s.maskAfterCat || maskAfterAnomaly;
    const belowLast = A < s.lastAnomalySim * (maskAfterAnomaly ? 0.9 : 0.7);
    let score = 0;
    if (i > trend && newCluster && (!masking || belowLast)) {
      score = this.confidence(A, r.Ae);
      if (s.hN > 0) s.hSum += s.hLast;
      s.hN++;
      s.hLast = A;
      s.lastAnomalySim = A;
      s.lastAnomaly = i;
    }
    s.maskAfterCat = newCluster || s.maskAfterCat;
    if (i > trend && (updateAfterAnomaly || updateForTrend)) {
      this.adapt(i);
      s.lastRhoUpdate = i;
      s.maskAfterCat = true;
    }
    return { score, done: true, similarity: A, novel: newCluster };
  }

  private adapt(i: number): void {
    const s = this.s;
    const trend = this.h.trend;
    let minSim = Infinity;
    for (const v of this.sim) if (v / SIM_Q < minSim) minSim = v / SIM_Q;
    const ub = Math.min(this.p.rhoUbCap, s.meanA);
    const prev = s.lb;
    let lb: number;
    if (prev <= minSim) lb = prev + (minSim - prev) * 0.19;
    else {
      let decr = 0;
      if (i > trend * 2) {
        let acc = 0;
        let cnt = 0;
        for (const q of this.diff) {
          const d = q / DIFF_Q;
          if (d > 0.05) {
            acc += Math.min(0.37, d);
            cnt++;
          }
        }
        if (cnt > 0) decr = acc / cnt;
      }
      decr = Math.max(0.01, decr);
      lb = prev - decr / 2;
      if (s.hN > 0) lb = Math.max((s.hSum + s.hLast) / s.hN, lb);
    }
    s.lb = Math.min(ub, lb);
    s.ub = ub;
  }

  private confidence(A: number, Ae: number): number {
    const fs = Math.min(0.999, A);
    const ub = (1 - fs - (1 - this.s.ub)) / (1 - fs);
    const lb = (1 - fs - (1 - this.s.lb)) / (1 - fs);
    const c = Math.min(1, ub * 0.35 + lb * 0.65 + (1 - Ae) * 1.5);
    return Math.round(c * 1e6) / 1e6;
  }

  toJSON(): ArtState {
    const D2 = 2 * this.s.dim;
    const parts = [bytesOf(this.w, this.s.nc * D2), bytesOf(this.used, this.s.nc * 4), bytesOf(this.sim), bytesOf(this.diff)];
    return { ...this.s, z: deflateRawSync(Buffer.concat(parts)).toString('base64') };
  }
}
