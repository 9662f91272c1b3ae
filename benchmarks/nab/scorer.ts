/**
 * NAB's published scoring rules (Numenta Anomaly Benchmark v1.1, the sweeper-based scorer), written
 * afresh in TypeScript: anomaly windows, probationary period, the scaled sigmoid, the three cost
 * profiles, one corpus-wide threshold per profile chosen by an exhaustive sweep, and normalisation
 * so that the null detector scores 0 and a perfect one 100.
 *
 * Scoring depends on row index, not elapsed time: a window is the rows from the one whose timestamp
 * equals its start to the one whose timestamp equals its end.
 */

export type ProfileName = 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';
export const PROFILE_NAMES: readonly ProfileName[] = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'];

export interface CostMatrix {
  readonly tpWeight: number;
  readonly fpWeight: number;
  readonly fnWeight: number;
}

/** NAB's config/profiles.json. */
export const PROFILES: Readonly<Record<ProfileName, CostMatrix>> = {
  standard: { tpWeight: 1.0, fpWeight: 0.11, fnWeight: 1.0 },
  reward_low_FP_rate: { tpWeight: 1.0, fpWeight: 0.22, fnWeight: 1.0 },
  reward_low_FN_rate: { tpWeight: 1.0, fpWeight: 0.11, fnWeight: 2.0 },
};

export const PROBATION_PERCENT = 0.15;

/** Rows with index below this are not scored at all. */
export function probationLength(rows: number, percent = PROBATION_PERCENT): number {
  return Math.min(Math.floor(percent * rows), percent * 5000);
}

/** 2·sigmoid(-5x) − 1, and −1 past three window widths after a window. */
export function scaledSigmoid(x: number): number {
  if (x > 3.0) return -1.0;
  return 2 / (1 + Math.exp(5 * x)) - 1.0;
}

const MAX_TP = scaledSigmoid(-1.0);

/** Marks a row that is in the probationary period (never scored). */
export const PROBATION = -2;
/** Marks a scored row outside every window. */
export const OUTSIDE = -1;

/** One file prepared for scoring under one profile: per-row weight and window membership. */
export interface SweptFile {
  readonly key: string;
  /** Anomaly score per row. */
  readonly scores: ArrayLike<number>;
  /** NAB's per-row "sweep score": what a detection on that row is worth. */
  readonly weights: Float64Array;
  /** Window index within the file, OUTSIDE, or PROBATION. */
  readonly windowOf: Int32Array;
  /** Labelled windows of the file; those without a scored row count for nothing. */
  readonly windowCount: number;
}

export class ScoringError extends Error {}

/**
 * Per-row weights, as NAB's sweeper computes them: inside a window, S(−(end−i+1)/width)·tp/S(−1);
 * outside before any window ended, −fp; after a window ended at e with width W, S(|e−i|/(W−1))·fp.
 */
export function sweepFile(key: string, timestamps: ArrayLike<number>, scores: ArrayLike<number>, windows: ReadonlyArray<readonly [number, number]>, cost: CostMatrix): SweptFile {
  const n = timestamps.length;
  if (scores.length !== n) throw new ScoringError(`${key}: ${n} timestamps but ${scores.length} anomaly scores`);
  const index = new Map<number, number>();
  for (let i = 0; i < n; i++) if (!index.has(timestamps[i]!)) index.set(timestamps[i]!, i);
  const limits = windows.map(([a, b], w) => {
    const s = index.get(a);
    const e = index.get(b);
    if (s === undefined || e === undefined) throw new ScoringError(`${key}: window ${w} [${new Date(a).toISOString()}, ${new Date(b).toISOString()}] has a bound that is not a row timestamp`);
    return [s, e] as const;
  });
  const probation = probationLength(n);
  const weights = new Float64Array(n);
  const windowOf = new Int32Array(n);
  let next = 0; // next window to enter
  let cur = -1; // window we are in
  let curEnd = 0;
  let curWidth = 0;
  let prevEnd = -1;
  let prevWidth = 0;
  for (let i = 0; i < n; i++) {
    if (next < limits.length && timestamps[i] === windows[next]![0]) {
      cur = next++;
      curEnd = limits[cur]![1];
      curWidth = curEnd - limits[cur]![0] + 1;
    }
    let w: number;
    if (cur >= 0) {
      w = (scaledSigmoid(-(curEnd - i + 1) / curWidth) * cost.tpWeight) / MAX_TP;
    } else if (prevEnd < 0) {
      w = -1.0 * cost.fpWeight;
    } else {
      // A one-row window followed by rows divides by zero in NAB; Infinity > 3 gives its −1 here.
      w = scaledSigmoid(Math.abs(prevEnd - i) / (prevWidth - 1)) * cost.fpWeight;
    }
    weights[i] = w;
    if (i < probation) windowOf[i] = PROBATION;
    else {
      windowOf[i] = cur >= 0 ? cur : OUTSIDE;
    }
    if (cur >= 0 && timestamps[i] === windows[cur]![1]) {
      prevEnd = i;
      prevWidth = curWidth;
      cur = -1;
    }
  }
  return { key, scores, weights, windowOf, windowCount: windows.length };
}

export interface ThresholdScore {
  readonly threshold: number;
  readonly score: number;
  readonly tp: number;
  readonly tn: number;
  readonly fp: number;
  readonly fn: number;
}

/**
 * Scores at every distinct anomaly score of the pooled scored rows, highest first; the first entry
 * (threshold 1.1) detects nothing. A row is a detection when its anomaly score >= the threshold.
 * Each window counts once: the best weight of its detected rows, or −fnWeight when none.
 */
export function sweepThresholds(files: readonly SweptFile[], cost: CostMatrix): ThresholdScore[] {
  let total = 0;
  for (const f of files) for (let i = 0; i < f.windowOf.length; i++) if (f.windowOf[i] !== PROBATION) total++;
  const score = new Float64Array(total);
  const weight = new Float64Array(total);
  const win = new Int32Array(total); // global window id or -1
  let k = 0;
  let windowBase = 0;
  let tn = 0;
  let fn = 0;
  for (const f of files) {
    for (let i = 0; i < f.windowOf.length; i++) {
      const w = f.windowOf[i]!;
      if (w === PROBATION) continue;
      score[k] = f.scores[i]!;
      weight[k] = f.weights[i]!;
      win[k] = w >= 0 ? windowBase + w : -1;
      if (w >= 0) fn++;
      else tn++;
      k++;
    }
    windowBase += f.windowCount;
  }
  const order = Array.from({ length: total }, (_, i) => i);
  order.sort((a, b) => score[b]! - score[a]!);
  const best = new Map<number, number>();
  const windowsScored = new Set<number>();
  for (let i = 0; i < total; i++) if (win[i]! >= 0) windowsScored.add(win[i]!);
  let windowSum = -cost.fnWeight * windowsScored.size;
  let fpSum = 0;
  let tp = 0;
  let fp = 0;
  const out: ThresholdScore[] = [];
  let cur = 1.1;
  for (const j of order) {
    const s = score[j]!;
    if (s !== cur) {
      out.push({ threshold: cur, score: fpSum + windowSum, tp, tn, fp, fn });
      cur = s;
    }
    const w = win[j]!;
    if (w >= 0) {
      tp++;
      fn--;
      const old = best.get(w) ?? -cost.fnWeight;
      if (weight[j]! > old) {
        best.set(w, weight[j]!);
        windowSum += weight[j]! - old;
      }
    } else {
      fp++;
      tn--;
      fpSum += weight[j]!;
    }
  }
  out.push({ threshold: cur, score: fpSum + windowSum, tp, tn, fp, fn });
  return out;
}

/**
 * The entry NAB uses for a given threshold: the one evaluated at exactly that value or else the next
 * higher one evaluated (which detects exactly the rows scoring >= threshold). Below every score, all
 * rows are detections (NAB itself returns nothing there).
 */
export function atThreshold(sweep: readonly ThresholdScore[], threshold: number): ThresholdScore {
  let prev: ThresholdScore | undefined;
  for (const t of sweep) {
    if (t.threshold === threshold) return t;
    if (t.threshold < threshold) return prev ?? t;
    prev = t;
  }
  return sweep[sweep.length - 1]!;
}

/** The best-scoring entry of a sweep (the highest threshold among equals). */
export function bestThreshold(sweep: readonly ThresholdScore[]): ThresholdScore {
  let best = sweep[0]!;
  for (const t of sweep) if (t.score > best.score) best = t;
  return best;
}

export interface FileInput {
  readonly key: string;
  readonly timestamps: ArrayLike<number>;
  readonly scores: ArrayLike<number>;
}

export interface FileScore extends ThresholdScore {
  readonly key: string;
  /** Rows in the file, probation included (NAB's Total_Count). */
  readonly rows: number;
}

/** One file's score at a given threshold under one profile. */
export function scoreFile(input: FileInput, windows: ReadonlyArray<readonly [number, number]>, cost: CostMatrix, threshold: number): FileScore {
  const swept = sweepFile(input.key, input.timestamps, input.scores, windows, cost);
  const r = atThreshold(sweepThresholds([swept], cost), threshold);
  return { ...r, key: input.key, rows: input.timestamps.length };
}

export interface ProfileResult {
  readonly profile: ProfileName;
  readonly threshold: number;
  readonly raw: number;
  /** The null detector's raw score on the same corpus and profile. */
  readonly rawNull: number;
  readonly perfect: number;
  /** 100·(raw − null)/(perfect − null). */
  readonly normalised: number;
  readonly perFile: FileScore[];
}

/** Labelled windows of the corpus (every one counts toward the perfect score). */
export function windowsTotal(keys: readonly string[], windows: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>): number {
  let n = 0;
  for (const k of keys) n += windows[k]?.length ?? 0;
  return n;
}

export function normalise(raw: number, rawNull: number, perfect: number): number {
  return (100 * (raw - rawNull)) / (perfect - rawNull);
}

/** The null detector's raw score: a constant anomaly score, at its own best threshold. */
export function nullRaw(files: readonly FileInput[], windows: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>, cost: CostMatrix): number {
  const swept = files.map((f) => sweepFile(f.key, f.timestamps, new Float64Array(f.timestamps.length).fill(0.5), windows[f.key] ?? [], cost));
  return bestThreshold(sweepThresholds(swept, cost)).score;
}

/**
 * Scores a corpus under one profile: threshold by exhaustive sweep (or the given one), per-file
 * scores at that threshold, and the normalised corpus score.
 */
export function scoreCorpus(files: readonly FileInput[], windows: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>, profile: ProfileName, fixedThreshold?: number): ProfileResult {
  const cost = PROFILES[profile];
  const swept = files.map((f) => sweepFile(f.key, f.timestamps, f.scores, windows[f.key] ?? [], cost));
  const sweep = sweepThresholds(swept, cost);
  const chosen = fixedThreshold === undefined ? bestThreshold(sweep) : atThreshold(sweep, fixedThreshold);
  const threshold = fixedThreshold ?? chosen.threshold;
  const perFile = swept.map((s, i) => ({ ...atThreshold(sweepThresholds([s], cost), threshold), key: s.key, rows: files[i]!.timestamps.length }));
  const rawNull = nullRaw(files, windows, cost);
  const perfect = windowsTotal(files.map((f) => f.key), windows) * cost.tpWeight;
  return { profile, threshold, raw: chosen.score, rawNull, perfect, normalised: normalise(chosen.score, rawNull, perfect), perFile };
}
