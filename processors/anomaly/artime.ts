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
 * here the range comes from the probation data with a margin and, optionally, grows when exceeded.
 * The category memory is capped (least recently resonating replaced). The probation length is a fixed
 * warm-up count in production (NAB's harness passes its own value).
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
  /** Fixed range (range = 'fixed'). */
  readonly min?: number;
  readonly max?: number;
  /** Sign convention of the Haar detail coefficients (validation against the original). */
  readonly haarSign: 1 | -1;
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
  maxCategories: 0,
  range: 'probation',
  margin: 0.5,
  overflow: 'clamp',
  haarSign: -1,
};

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
  /** ART memory (see Art). */
  art: ArtState;
}

export interface ArtState {
  dim: number;
  /** Categories, complement coded, flattened. */
  w: number[];
  /** Last step each category resonated or was made. */
  used: number[];
  lb: number;
  ub: number;
  /** Samples seen (train calls), and the running mean of the best match. */
  n: number;
  meanA: number;
  /** Ring buffers of recent best matches, and of ub - match; heads. */
  sim: number[];
  simH: number;
  diff: number[];
  diffH: number;
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
export function horizons(p: ArtimeParams): { probation: number; sstep: number; trend: number; mask: number } {
  const probation = p.probation - (p.probation % 2);
  const sstep = Math.max(1, Math.round(Math.floor(probation / (p.window * p.windowsPerProbation))));
  const trend = Math.floor(probation / sstep);
  return { probation, sstep, trend, mask: Math.floor(p.window * 1.5) };
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
      this.s = { ...state, bins: state.bins.slice(), fw: state.fw.slice(), pb: state.pb.slice(), bmin: state.bmin ?? Infinity, bmax: state.bmax ?? -Infinity };
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
        art: undefined as unknown as ArtState,
      };
    }
    this.art = new Art(p, this.h, 2 * p.window, state?.art);
    this.s.art = this.art.s;
  }

  /** Scores and learns one raw value. */
  step(value: number): ArtimeVerdict {
    const s = this.s;
    const { sstep, trend } = this.h;
    s.bk++;
    s.bs += value;
    if (value < s.bmin) s.bmin = value;
    if (value > s.bmax) s.bmax = value;
    const i = s.i++;
    if (i % sstep !== 0) return QUIET;
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
    return this.detect(this.encode(ds, dsi), dsi);
  }

  private endProbation(): void {
    const s = this.s;
    const p = this.p;
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

  /** Scaling, quantisation, median snap and the feature vector of downsampled value number `dsi`. */
  private encode(raw: number, dsi: number): Float64Array {
    const s = this.s;
    const p = this.p;
    const L = p.levels;
    const W = p.window;
    let x = raw - s.lo;
    if (s.hi - s.lo !== 0) x /= s.hi - s.lo;
    let level = roundEven(x * L);
    if (level < 0 || level > L) {
      if (p.overflow === 'grow' && p.range !== 'fixed') {
        this.grow(raw);
        x = (raw - s.lo) / (s.hi - s.lo);
        level = roundEven(x * L);
      }
      level = Math.min(L, Math.max(0, level));
    }
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
    const f = this.feat;
    f.fill(0);
    if (dsi >= W) {
      const t = this.tmp;
      let mn = Infinity;
      for (let k = 0; k < W; k++) if (s.fw[k]! < mn) mn = s.fw[k]!;
      let mx = -Infinity;
      for (let k = 0; k < W; k++) {
        t[k] = s.fw[k]! - mn;
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
      for (let k = 0; k < W; k++) f[W + k] = s.fw[k]!;
    }
    return f;
  }

  /** Widens the range to hold `raw` (with the margin), rescaling what depends on it. */
  private grow(raw: number): void {
    const s = this.s;
    const p = this.p;
    const span = s.hi - s.lo;
    const lo = Math.min(s.lo, raw - span * p.margin);
    const hi = Math.max(s.hi, raw + span * p.margin);
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
    s.lo = lo;
    s.hi = hi;
  }

  private detect(f: Float64Array, dsi: number): ArtimeVerdict {
    return this.art.detect(f, dsi);
  }

  toJSON(): ArtimeState {
    return { ...this.s, bins: this.s.bins.slice(), fw: this.s.fw.slice(), pb: this.s.pb.slice(), art: this.art.toJSON() };
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

/** Dual-vigilance fuzzy ART with ARTime's vigilance adaptation and masking. */
class Art {
  readonly s: ArtState;
  private readonly x: Float64Array;
  private M: Float64Array;
  private Me: Float64Array;
  private readonly cap: number;

  constructor(readonly p: ArtimeParams, readonly h: ReturnType<typeof horizons>, dim: number, state?: ArtState) {
    this.cap = p.maxCategories > 0 ? p.maxCategories : Infinity;
    this.x = new Float64Array(2 * dim);
    this.M = new Float64Array(0);
    this.Me = new Float64Array(0);
    if (state) this.s = { ...state, w: state.w.slice(), used: state.used.slice(), sim: state.sim.slice(), diff: state.diff.slice() };
    else
      this.s = {
        dim,
        w: [],
        used: [],
        lb: 0,
        ub: 0,
        n: 0,
        meanA: 0,
        sim: new Array(Math.floor(h.trend / 2) + 1).fill(1),
        simH: 0,
        diff: new Array(h.trend + 1).fill(0),
        diffH: 0,
        hSum: 0,
        hN: 0,
        hLast: 0,
        lastAnomaly: 0,
        lastAnomalySim: 0,
        lastRhoUpdate: 0,
        maskAfterCat: false,
        noNewCat: 0,
      };
  }

  get categories(): number {
    return this.s.used.length;
  }

  /** Rescales the raw-value half of every category after the range grew: v' = a v + b. */
  rescaleRaw(window: number, a: number, b: number): void {
    const D = this.s.dim;
    const w = this.s.w;
    for (let j = 0; j < this.s.used.length; j++) {
      const o = j * 2 * D;
      for (let k = window; k < D; k++) {
        // lower bound u and complement of the upper bound (1 - v)
        w[o + k] = w[o + k]! * a + b;
        w[o + D + k] = 1 - ((1 - w[o + D + k]!) * a + b);
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
    const norms = xs.map((v) => Math.hypot(...v));
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
            for (let k = 0; k < xs[i]!.length; k++) dot += xs[i]![k]! * xs[j]![k]!;
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

  /**
   * One DVFA step. Returns the best match A, its energy similarity Ae, and whether the sample
   * started a new cluster (`novel`). The first sample ever only creates the uncommitted category.
   */
  train(f: Float64Array, learn: boolean): { A: number; Ae: number; novel: boolean } {
    const s = this.s;
    const D = s.dim;
    const x = this.x;
    for (let k = 0; k < D; k++) {
      x[k] = f[k]!;
      x[D + k] = 1 - f[k]!;
    }
    s.n++;
    if (s.used.length === 0) {
      // the original starts with an all-ones category (matches nothing well) and skips the sample
      for (let k = 0; k < 2 * D; k++) s.w.push(1);
      s.used.push(s.n);
      return { A: 0, Ae: 0, novel: false };
    }
    const nc = s.used.length;
    const w = s.w;
    let best = -1;
    let bestM = -1;
    let bestE = 0;
    let nan = false;
    if (this.M.length < nc) {
      this.M = new Float64Array(Math.max(16, nc * 2));
      this.Me = new Float64Array(this.M.length);
    }
    const M = this.M;
    const E = this.Me;
    for (let j = 0; j < nc; j++) {
      const o = j * 2 * D;
      let num = 0;
      let den = 0;
      for (let k = 0; k < 2 * D; k++) {
        const wk = w[o + k]!;
        const xk = x[k]!;
        num += xk < wk ? xk : wk;
        den += wk;
      }
      if (den === 0) den = 0.001;
      const fs = num / den;
      const wl = w[o + D - 1]!;
      const wc = w[o + 2 * D - 1]!;
      const es = (Math.min(x[D - 1]!, wl) + Math.min(x[2 * D - 1]!, wc)) / (wl + wc);
      const m = fs * fs * fs * es * es;
      M[j] = m;
      E[j] = es;
      if (Number.isNaN(m)) nan = true;
      else if (m > bestM) {
        bestM = m;
        best = j;
        bestE = es;
      }
    }
    // A category spanning the whole range of the newest value has no energy (0/0): in the original it
    // sorts first and stops the search, so nothing matches.
    const A = nan || bestM <= 0 ? 0 : bestM;
    const Ae = nan || bestM <= 0 ? 0 : bestE;
    if (!learn) return { A, Ae, novel: true };
    if (!nan && best >= 0 && bestM >= s.ub) {
      // resonance: every category above the upper vigilance learns (fast learning: w = min(x, w))
      for (let j = 0; j < nc; j++) {
        if (M[j]! >= s.ub) {
          const o = j * 2 * D;
          for (let k = 0; k < 2 * D; k++) if (x[k]! < w[o + k]!) w[o + k] = x[k]!;
          s.used[j] = s.n;
        }
      }
      return { A, Ae, novel: false };
    }
    const novel = nan || best < 0 || bestM < s.lb;
    this.commit(x);
    return { A, Ae, novel };
  }

  private commit(x: Float64Array): void {
    const s = this.s;
    const D2 = 2 * s.dim;
    if (s.used.length < this.cap) {
      for (let k = 0; k < D2; k++) s.w.push(x[k]!);
      s.used.push(s.n);
      return;
    }
    // full: replace the category that resonated longest ago (never the first, uncommitted one)
    let slot = 1;
    for (let j = 2; j < s.used.length; j++) if (s.used[j]! < s.used[slot]!) slot = j;
    for (let k = 0; k < D2; k++) s.w[slot * D2 + k] = x[k]!;
    s.used[slot] = s.n;
  }

  detect(f: Float64Array, i: number): ArtimeVerdict {
    const s = this.s;
    const { trend, mask } = this.h;
    const updateAfterAnomaly = i - s.lastAnomaly === mask;
    const updateForTrend = i - s.lastRhoUpdate >= Math.floor(trend / 2);
    const maskAfterAnomaly = i - s.lastAnomaly <= mask;
    if (i > trend + mask && s.maskAfterCat && s.noNewCat >= mask) s.maskAfterCat = false;
    const r = this.train(f, i >= this.p.window);
    const newCluster = i < this.p.window || r.novel;
    s.noNewCat = newCluster ? 0 : s.noNewCat + 1;
    const A = r.A;
    s.meanA += (A - s.meanA) / s.n;
    s.sim[s.simH] = A;
    s.simH = (s.simH + 1) % s.sim.length;
    s.diff[s.diffH] = s.ub - A;
    s.diffH = (s.diffH + 1) % s.diff.length;
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
    for (const v of s.sim) if (v < minSim) minSim = v;
    const ub = Math.min(this.p.rhoUbCap, s.meanA);
    const prev = s.lb;
    let lb: number;
    if (prev <= minSim) lb = prev + (minSim - prev) * 0.19;
    else {
      let decr = 0;
      if (i > trend * 2) {
        let acc = 0;
        let cnt = 0;
        for (const d of s.diff)
          if (d > 0.05) {
            acc += Math.min(0.37, d);
            cnt++;
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
    return { ...this.s, w: this.s.w.slice(), used: this.s.used.slice(), sim: this.s.sim.slice(), diff: this.s.diff.slice() };
  }
}
