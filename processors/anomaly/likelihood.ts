/**
 * Anomaly likelihood (after Numenta's): how unusual the recent raw scores are under the running
 * distribution of the series' own raw scores. A series that is always noisy learns that large raw
 * scores are normal for it, so one corpus-wide level means the same on every series.
 */

/** Upper tail of the standard normal, Q(z) = P(Z > z) (Abramowitz–Stegun 7.1.26 on erfc). */
export function normalTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? 0.5 * erfc : 1 - 0.5 * erfc;
}

export interface LikelihoodParams {
  /** Raw scores averaged over this many recent points (bursts outweigh single blips). */
  readonly shortWindow: number;
  /** Smoothing of the long-run mean and variance of that average. */
  readonly alpha: number;
  /** Standard deviation floor, so a series that was perfectly quiet does not make every blip certain. */
  readonly minStd: number;
}

export const DEFAULT_LIKELIHOOD: LikelihoodParams = { shortWindow: 4, alpha: 0.002, minStd: 0.03 };

export interface LikelihoodState {
  n: number;
  mean: number;
  var: number;
  recent: number[];
}

export class Likelihood {
  s: LikelihoodState;
  constructor(readonly p: LikelihoodParams = DEFAULT_LIKELIHOOD, state?: LikelihoodState) {
    this.s = state ?? { n: 0, mean: 0, var: 0, recent: [] };
  }

  /** Tail probability of the recent average raw score; 0.5 until a distribution exists. */
  update(raw: number): number {
    const s = this.s;
    s.recent.push(raw);
    if (s.recent.length > this.p.shortWindow) s.recent.shift();
    let avg = 0;
    for (const r of s.recent) avg += r;
    avg /= s.recent.length;
    let tail = 0.5;
    if (s.n > 10) {
      const std = Math.max(Math.sqrt(s.var), this.p.minStd);
      tail = normalTail((avg - s.mean) / std);
    }
    const a = Math.max(this.p.alpha, 1 / (s.n + 1));
    const d = avg - s.mean;
    s.mean += a * d;
    s.var = (1 - a) * (s.var + a * d * d);
    s.n++;
    return tail;
  }
}

/** −log10 of a tail probability scaled to [0,1] (1 = p of 1e-10 or less): keeps resolution near 1. */
export function logScore(tail: number): number {
  const v = -Math.log10(Math.max(tail, 1e-300)) / 10;
  return v > 1 ? 1 : v < 0 ? 0 : v;
}
