/**
 * DDSketch (Masson, Rim, Lee, VLDB 2019): a quantile sketch with a RELATIVE-error guarantee that
 * merges exactly. Every value v > 0 falls in bucket i = ceil(log_gamma(v)) with
 * gamma = (1 + alpha) / (1 - alpha); the bucket is reported as 2 * gamma^i / (gamma + 1), which is
 * within alpha * |x| of every x in the bucket. Negative values use a mirrored store; values with
 * |v| < MIN_INDEXABLE count as zero (reported as 0).
 *
 * Guarantee (as long as no bucket collapse happened, i.e. fewer than maxBins distinct buckets per
 * sign): quantile(q) returns x' with |x' - x| <= alpha * |x| where x is the exact lower q-quantile
 * of the inserted values, sorted[floor(q * (n - 1))]. Merging two sketches gives bucket-for-bucket
 * the sketch of the union, so the same bound holds after any number of merges: this is why rollups
 * of 1 min re-aggregate into 5 min and 1 h without drifting. With alpha = 0.01 a value range of
 * 1 .. 1e12 needs ~1,400 buckets; the default maxBins of 2048 collapses only beyond that, merging
 * the LOWEST buckets (high quantiles keep their guarantee, which is what p95/p99 are for).
 *
 * Storage is two sorted parallel arrays per sign (bucket index, count): a 1-minute window of a
 * 5-second poll holds at most 12 buckets, so this is far smaller than a dense array or a Map.
 */

export const DEFAULT_ALPHA = 0.01;
export const DEFAULT_MAX_BINS = 2048;
const MIN_INDEXABLE = 1e-12;

/** Serialised form: short keys because rollups carry one sketch per row. */
export interface SketchJSON {
  /** relative accuracy */
  a: number;
  /** positive store: bucket indexes (sorted ascending) and counts */
  pi?: number[];
  pc?: number[];
  /** negative store (indexes of |v|) */
  ni?: number[];
  nc?: number[];
  /** count of zeros */
  z?: number;
}

class Store {
  idx: number[] = [];
  cnt: number[] = [];

  add(i: number, c: number): void {
    const idx = this.idx;
    const n = idx.length;
    // Fast paths: consecutive samples of a series usually hit the last or an existing bucket.
    if (n === 0 || i > idx[n - 1]!) {
      idx.push(i);
      this.cnt.push(c);
      return;
    }
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = idx[mid]!;
      if (v === i) {
        this.cnt[mid]! += c;
        return;
      }
      if (v < i) lo = mid + 1;
      else hi = mid - 1;
    }
    idx.splice(lo, 0, i);
    this.cnt.splice(lo, 0, c);
  }

  total(): number {
    let t = 0;
    for (const c of this.cnt) t += c;
    return t;
  }

  /** Folds the lowest buckets into one so at most maxBins remain. */
  collapse(maxBins: number): void {
    const n = this.idx.length;
    if (n <= maxBins) return;
    const fold = n - maxBins + 1;
    let c = 0;
    for (let k = 0; k < fold; k++) c += this.cnt[k]!;
    const keepIdx = this.idx[fold - 1]!;
    this.idx.splice(0, fold, keepIdx);
    this.cnt.splice(0, fold, c);
  }

  merge(o: Store): void {
    if (o.idx.length === 0) return;
    if (this.idx.length === 0) {
      this.idx = o.idx.slice();
      this.cnt = o.cnt.slice();
      return;
    }
    const ri: number[] = [];
    const rc: number[] = [];
    let a = 0;
    let b = 0;
    while (a < this.idx.length || b < o.idx.length) {
      const ia = a < this.idx.length ? this.idx[a]! : Infinity;
      const ib = b < o.idx.length ? o.idx[b]! : Infinity;
      if (ia === ib) {
        ri.push(ia);
        rc.push(this.cnt[a++]! + o.cnt[b++]!);
      } else if (ia < ib) {
        ri.push(ia);
        rc.push(this.cnt[a++]!);
      } else {
        ri.push(ib);
        rc.push(o.cnt[b++]!);
      }
    }
    this.idx = ri;
    this.cnt = rc;
  }
}

export class DDSketch {
  readonly alpha: number;
  private readonly gamma: number;
  private readonly invLogGamma: number;
  private readonly maxBins: number;
  private pos: Store = new Store();
  private neg: Store | null = null;
  private zero = 0;
  private n = 0;

  constructor(alpha = DEFAULT_ALPHA, maxBins = DEFAULT_MAX_BINS) {
    if (!(alpha > 0 && alpha < 1)) throw new RangeError(`DDSketch alpha must be in (0, 1), got ${alpha}`);
    this.alpha = alpha;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.invLogGamma = 1 / Math.log(this.gamma);
    this.maxBins = maxBins;
  }

  get count(): number {
    return this.n;
  }

  /** Adds a value; NaN and infinities are rejected by the caller (window operator counts them). */
  add(v: number, c = 1): void {
    if (v > MIN_INDEXABLE) {
      this.pos.add(Math.ceil(Math.log(v) * this.invLogGamma), c);
      if (this.pos.idx.length > this.maxBins) this.pos.collapse(this.maxBins);
    } else if (v < -MIN_INDEXABLE) {
      if (this.neg === null) this.neg = new Store();
      this.neg.add(Math.ceil(Math.log(-v) * this.invLogGamma), c);
      if (this.neg.idx.length > this.maxBins) this.neg.collapse(this.maxBins);
    } else {
      this.zero += c;
    }
    this.n += c;
  }

  /** Adds every bucket of `o` (same alpha required: buckets of different widths do not line up). */
  merge(o: DDSketch): void {
    if (o.alpha !== this.alpha) throw new RangeError(`cannot merge DDSketch alpha ${o.alpha} into alpha ${this.alpha}`);
    this.pos.merge(o.pos);
    this.pos.collapse(this.maxBins);
    if (o.neg) {
      if (!this.neg) this.neg = new Store();
      this.neg.merge(o.neg);
      this.neg.collapse(this.maxBins);
    }
    this.zero += o.zero;
    this.n += o.n;
  }

  private value(i: number): number {
    return (2 * Math.pow(this.gamma, i)) / (this.gamma + 1);
  }

  /** Lower q-quantile estimate (q in [0, 1]); NaN when empty. */
  quantile(q: number): number {
    if (this.n === 0 || !(q >= 0 && q <= 1)) return NaN;
    const rank = q * (this.n - 1);
    let seen = 0;
    if (this.neg) {
      // Most negative first: largest |v| index first.
      for (let k = this.neg.idx.length - 1; k >= 0; k--) {
        seen += this.neg.cnt[k]!;
        if (seen > rank) return -this.value(this.neg.idx[k]!);
      }
    }
    seen += this.zero;
    if (seen > rank) return 0;
    for (let k = 0; k < this.pos.idx.length; k++) {
      seen += this.pos.cnt[k]!;
      if (seen > rank) return this.value(this.pos.idx[k]!);
    }
    // Floating-point counts can leave rank == total: the top bucket answers.
    const top = this.pos.idx[this.pos.idx.length - 1];
    return top === undefined ? 0 : this.value(top);
  }

  /** Buckets in use (both signs); a proxy for the sketch's memory. */
  get bins(): number {
    return this.pos.idx.length + (this.neg ? this.neg.idx.length : 0);
  }

  clone(): DDSketch {
    return DDSketch.fromJSON(this.toJSON(), this.maxBins);
  }

  toJSON(): SketchJSON {
    const j: SketchJSON = { a: this.alpha };
    if (this.pos.idx.length > 0) {
      j.pi = this.pos.idx.slice();
      j.pc = this.pos.cnt.slice();
    }
    if (this.neg && this.neg.idx.length > 0) {
      j.ni = this.neg.idx.slice();
      j.nc = this.neg.cnt.slice();
    }
    if (this.zero > 0) j.z = this.zero;
    return j;
  }

  static fromJSON(j: SketchJSON, maxBins = DEFAULT_MAX_BINS): DDSketch {
    if (typeof j !== 'object' || j === null || typeof j.a !== 'number') throw new TypeError('sketch JSON needs a numeric alpha (a)');
    const s = new DDSketch(j.a, maxBins);
    const load = (idx: unknown, cnt: unknown, what: string): Store | null => {
      if (idx === undefined && cnt === undefined) return null;
      if (!Array.isArray(idx) || !Array.isArray(cnt) || idx.length !== cnt.length) throw new TypeError(`sketch ${what} store: index and count arrays must have equal length`);
      const st = new Store();
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k];
        const c = cnt[k];
        if (!Number.isInteger(i) || typeof c !== 'number' || !(c > 0)) throw new TypeError(`sketch ${what} store: bad bucket ${String(i)}=${String(c)}`);
        if (k > 0 && i <= idx[k - 1]) throw new TypeError(`sketch ${what} store: indexes must ascend`);
        s.n += c;
      }
      st.idx = (idx as number[]).slice();
      st.cnt = (cnt as number[]).slice();
      return st;
    };
    s.pos = load(j.pi, j.pc, 'positive') ?? new Store();
    s.neg = load(j.ni, j.nc, 'negative');
    if (j.z !== undefined) {
      if (typeof j.z !== 'number' || j.z < 0) throw new TypeError('sketch zero count must be a non-negative number');
      s.zero = j.z;
      s.n += j.z;
    }
    return s;
  }
}

/** Bucket index of |v| (> MIN_INDEXABLE) for a relative accuracy alpha; the same mapping DDSketch uses. */
export function bucketIndex(absV: number, invLogGamma: number): number {
  return Math.ceil(Math.log(absV) * invLogGamma);
}

export function invLogGammaOf(alpha: number): number {
  return 1 / Math.log((1 + alpha) / (1 - alpha));
}

export { MIN_INDEXABLE };

/** Merges any number of serialised sketches (rollup re-aggregation: 1 min -> 5 min -> 1 h). */
export function mergeSketches(parts: readonly SketchJSON[]): DDSketch {
  if (parts.length === 0) return new DDSketch();
  const out = DDSketch.fromJSON(parts[0]!);
  for (let k = 1; k < parts.length; k++) out.merge(DDSketch.fromJSON(parts[k]!));
  return out;
}
