/** Draws for the benchmarks' synthetic series, from a seeded uniform source (processors/anomaly/learned.ts `rng`). */
export type Uniform = () => number;

/** Standard normal (Box-Muller). */
export function gauss(r: Uniform): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** Poisson count of mean `lambda` (normal approximation above 50). */
export function poisson(lambda: number, r: Uniform): number {
  if (lambda > 50) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gauss(r)));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= r();
  } while (p > l);
  return k - 1;
}

/** Gamma of shape k >= 1 and scale 1 (Marsaglia-Tsang). */
export function gamma(k: number, r: Uniform): number {
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = gauss(r);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = r();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Uniform in [a, b). */
export const between = (a: number, b: number, r: Uniform): number => a + (b - a) * r();

/** Log-uniform in [a, b): as likely 10-30 as 100-300. */
export const logBetween = (a: number, b: number, r: Uniform): number => Math.exp(between(Math.log(a), Math.log(b), r));
