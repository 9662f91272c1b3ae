/**
 * Shape novelty (after ARTime's adaptive-resonance idea, written afresh and bounded): the series is
 * cut into blocks of `step` points, each block becomes one spike-preserving value, and the last
 * `width` of those form a pattern. A small memory of prototype patterns (least recently matched
 * replaced first) remembers what the series does; a pattern far from every prototype is novel. The
 * distance is measured in units of the series' own typical nearest-prototype distance, so one
 * corpus-wide level means the same on a noisy series and a clean one. Repeating patterns (daily
 * cycles, square waves, regular spikes) become familiar instead of alarming each time.
 *
 * State is bounded: prototypes are float32 (exact through a checkpoint as base64), a few numbers more.
 */

export interface ShapeParams {
  /** Raw points per block (one pattern value). */
  readonly step: number;
  /** Block values per pattern. */
  readonly width: number;
  /** Prototype patterns kept. */
  readonly protos: number;
  /** A pattern within this many typical distances of a prototype matches it. */
  readonly vigilance: number;
  /** Smoothing of the typical distance (per block), and how far a matched prototype moves. */
  readonly distAlpha: number;
  readonly learnRate: number;
  /** Floor of the typical distance, as a fraction of the range (quiet series are not hair-trigger). */
  readonly minDist: number;
  /** A pattern farther than this (fraction of the range, mean per element) never matches: prototypes stay sharp. */
  readonly maxMatch: number;
}

export const DEFAULT_SHAPE: ShapeParams = {
  step: 6,
  width: 8,
  protos: 24,
  vigilance: 3,
  distAlpha: 0.02,
  learnRate: 0.1,
  minDist: 0.01,
  maxMatch: 1,
};

export interface ShapeState {
  /** Blocks completed, points in the current block, and its sum, min, max. */
  blocks: number;
  k: number;
  sum: number;
  min: number;
  max: number;
  /** Smoothed block mean (reference for which extreme is the spike). */
  avg: number;
  /** Last `width` block values, oldest first. */
  win: number[];
  /** Range of raw values seen. */
  lo: number;
  hi: number;
  /** Prototypes used, their last match (block index), the typical nearest distance. */
  np: number;
  last: number[];
  typ: number;
  /** Prototype values in the series' own units, float32, base64 in JSON. */
  p: string;
}

export interface ShapeVerdict {
  /** Nearest distance over the typical one (0 when no pattern was completed at this point). */
  readonly ratio: number;
  /** True when this point completed a pattern. */
  readonly done: boolean;
}

const NONE: ShapeVerdict = { ratio: 0, done: false };

export class ShapeNovelty {
  readonly s: ShapeState;
  private readonly pv: Float32Array;
  private readonly x: Float32Array;

  constructor(readonly p: ShapeParams = DEFAULT_SHAPE, state?: ShapeState) {
    this.pv = new Float32Array(p.protos * p.width);
    this.x = new Float32Array(p.width);
    if (state) {
      this.s = { ...state, win: state.win.slice(), last: state.last.slice(), lo: state.lo ?? Infinity, hi: state.hi ?? -Infinity, min: state.min ?? Infinity, max: state.max ?? -Infinity };
      const buf = Buffer.from(state.p, 'base64');
      const src = new Float32Array(buf.buffer, buf.byteOffset, Math.min(this.pv.length, buf.byteLength >> 2));
      this.pv.set(src.slice());
    } else {
      this.s = { blocks: 0, k: 0, sum: 0, min: Infinity, max: -Infinity, avg: 0, win: [], lo: Infinity, hi: -Infinity, np: 0, last: [], typ: 0, p: '' };
    }
  }

  /** Scores and learns one raw value. */
  step(value: number): ShapeVerdict {
    const s = this.s;
    const p = this.p;
    if (value < s.lo) s.lo = value;
    if (value > s.hi) s.hi = value;
    s.k++;
    s.sum += value;
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    if (s.k < p.step) return NONE;
    const mean = s.sum / s.k;
    if (s.blocks === 0) s.avg = mean;
    // The block's value is its extreme on the side farther from the running level: spikes survive.
    const v = Math.abs(s.max - s.avg) >= Math.abs(s.min - s.avg) ? s.max : s.min;
    s.avg += 0.5 * (mean - s.avg);
    s.k = 0;
    s.sum = 0;
    s.min = Infinity;
    s.max = -Infinity;
    s.blocks++;
    s.win.push(v);
    if (s.win.length > p.width) s.win.shift();
    if (s.win.length < p.width) return NONE;
    const range = s.hi - s.lo;
    const W = p.width;
    for (let i = 0; i < W; i++) this.x[i] = s.win[i]!;
    // nearest prototype, mean absolute difference per element
    let best = -1;
    let bd = Infinity;
    for (let j = 0; j < s.np; j++) {
      let d = 0;
      const o = j * W;
      for (let i = 0; i < W; i++) d += Math.abs(this.x[i]! - this.pv[o + i]!);
      if (d < bd) {
        bd = d;
        best = j;
      }
    }
    bd = range > 0 ? bd / (W * range) : 0;
    const typ = Math.max(s.typ, p.minDist);
    const ratio = best < 0 ? 0 : bd / typ;
    if (best >= 0) {
      // the typical distance learns from every pattern, clipped so novelties do not teach it much
      const a = s.blocks < W + 20 ? 1 / Math.max(1, s.blocks - W) : p.distAlpha;
      s.typ += a * (Math.min(bd, p.vigilance * typ) - s.typ);
    }
    if (best >= 0 && ratio <= p.vigilance && bd <= p.maxMatch) {
      // resonance: the prototype learns the pattern; the typical distance learns from matches only
      const o = best * W;
      for (let i = 0; i < W; i++) this.pv[o + i]! += p.learnRate * (this.x[i]! - this.pv[o + i]!);
      s.last[best] = s.blocks;
    } else {
      // a new pattern: commit it, replacing the prototype matched longest ago when full
      let slot = s.np;
      if (s.np < p.protos) s.np++;
      else {
        slot = 0;
        for (let j = 1; j < s.np; j++) if (s.last[j]! < s.last[slot]!) slot = j;
      }
      this.pv.set(this.x, slot * W);
      s.last[slot] = s.blocks;
    }
    return { ratio, done: true };
  }

  toJSON(): ShapeState {
    return { ...this.s, win: this.s.win.slice(), last: this.s.last.slice(), p: Buffer.from(this.pv.buffer, this.pv.byteOffset, this.s.np * this.p.width * 4).toString('base64') };
  }
}
