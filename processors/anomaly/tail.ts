/**
 * Calibration by extreme-value theory (streaming peaks over threshold, after Siffer et al., KDD
 * 2017): a running high quantile t of a surprise signal, and a generalised Pareto tail fitted by
 * moments to the excesses over it. A surprise u then has a tail probability P(U >= u), which means
 * the same on every series whatever the signal's own scale or noise: one corpus-wide level works.
 * O(1) per point, six numbers of state.
 */

export interface TailParams {
  /** Quantile above which excesses are modelled (0.98: the top 2%). */
  readonly q: number;
  /** Step of the quantile tracker, relative to the signal's mean level. */
  readonly quantileRate: number;
  /** Smoothing of the excess moments once enough excesses were seen. */
  readonly excessAlpha: number;
  /** Points before any probability below 1 is given. */
  readonly warmup: number;
}

export const DEFAULT_TAIL: TailParams = { q: 0.98, quantileRate: 0.05, excessAlpha: 0.02, warmup: 100 };

export interface TailState {
  n: number;
  /** Mean level of the signal (scales the quantile steps). */
  m: number;
  /** Threshold (running quantile). */
  t: number;
  /** Excesses seen, and their first two moments. */
  k: number;
  e1: number;
  e2: number;
}

export class Tail {
  readonly s: TailState;
  constructor(readonly p: TailParams = DEFAULT_TAIL, state?: TailState) {
    this.s = state ? { ...state } : { n: 0, m: 0, t: 0, k: 0, e1: 0, e2: 0 };
  }

  /** P(U >= u) under the fitted tail (1 below the threshold or while learning); then learns u. */
  update(u: number): number {
    const s = this.s;
    const p = this.p;
    let prob = 1;
    if (s.n >= p.warmup && s.k >= 5 && u > s.t) {
      const m = s.e1;
      const v = Math.max(s.e2 - m * m, 1e-12 * m * m + 1e-300);
      // method of moments for the generalised Pareto distribution
      let g = 0.5 * (1 - (m * m) / v);
      g = Math.max(-0.5, Math.min(0.5, g));
      const sigma = Math.max(0.5 * m * ((m * m) / v + 1), 1e-12);
      const e = u - s.t;
      const z = 1 + (g * e) / sigma;
      const surv = Math.abs(g) < 1e-6 ? Math.exp(-e / sigma) : z <= 0 ? 0 : Math.pow(z, -1 / g);
      prob = (1 - p.q) * surv;
    }
    // learn
    s.n++;
    const a = s.n < 50 ? 1 / s.n : 0.01;
    s.m += a * (Math.abs(u) - s.m);
    // from 0 upwards, fast at first: the threshold settles within the warm-up
    const step = p.quantileRate * Math.max(s.m, 1e-12) * (s.n < 4 * p.warmup ? 4 : 1);
    if (u > s.t) {
      const e = u - s.t;
      s.k++;
      const b = Math.max(1 / s.k, p.excessAlpha);
      s.e1 += b * (e - s.e1);
      s.e2 += b * (e * e - s.e2);
      s.t += step * p.q;
    } else s.t -= step * (1 - p.q);
    return prob;
  }
}

/** −log10 of a probability scaled to [0,1] (1 = 1e-`decades` or less). */
export function probScore(prob: number, decades: number): number {
  const v = -Math.log10(Math.max(prob, 1e-300)) / decades;
  return v > 1 ? 1 : v < 0 ? 0 : v;
}
