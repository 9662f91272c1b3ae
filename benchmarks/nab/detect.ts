import { SeriesDetector, DEFAULT_PARAMS, type DetectorParams } from '../../processors/anomaly/detector.js';
import { FamilyModel, WINDOW, initBackend, newWindowState, normalise, pushWindow, learnedSurprise } from '../../processors/anomaly/learned.js';
import type { DataFile } from './corpus.js';
import { probationLength } from './scorer.js';

export const DETECTOR_NAME = 'noctua';

export interface DetectOptions {
  readonly learned: boolean;
  readonly params?: DetectorParams;
  readonly seed?: number;
  /**
   * Warm-up of the ARTime layer: 'nab' = NAB's probationary period of the file (a NAB detector is
   * told it), or a fixed count of points (what production does; the default there is 750).
   */
  readonly warmup?: 'nab' | number;
}

/** Experiments only: NOCTUA_ANOMALY_PARAMS='{"zScale":5}' overrides defaults (shallow, one level deep). */
export function paramsFromEnv(base: DetectorParams = DEFAULT_PARAMS): DetectorParams {
  const raw = process.env.NOCTUA_ANOMALY_PARAMS;
  if (!raw) return base;
  const o = JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(o)) out[k] = v && typeof v === 'object' ? { ...(base as unknown as Record<string, object>)[k], ...v } : v;
  return out as unknown as DetectorParams;
}

/**
 * ARTime exactly as NAB ran it, in our implementation (which reproduces its published results on the
 * shipped files) for the series `values`: their whole range given (NAB's look-ahead), unbounded
 * memory, the original masks, none of our extra rules. The reference beside our figures wherever a
 * same-run ARTime is due.
 */
export function publishedArtimeParams(values: ArrayLike<number>): DetectorParams {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  return {
    ...DEFAULT_PARAMS,
    excursionMin: 0,
    incidentMasks: 0,
    grownFactor: 1,
    changeLevel: 0,
    flatline: { ...DEFAULT_PARAMS.flatline, factor: 0 },
    flatLevel: 0,
    silence: { ...DEFAULT_PARAMS.silence, factor: 0 },
    noveltyFloor: 1,
    artime: { ...DEFAULT_PARAMS.artime, range: 'fixed', min, max, maxCategories: 0, catMaskFactor: 1.5, logCounts: 0 },
  };
}

/** One model per family (here: per NAB category), shared by the family's series, in file order. */
const families = new Map<string, FamilyModel>();
const CHUNK = 256;

/**
 * Runs one series through a fresh detector, one point at a time, as the stream would. With the
 * learned layer, each chunk of points is predicted in one batch by the model version trained on
 * points before the chunk; training (awaited here, for reproducible figures) happens between chunks.
 */
export async function detectSeries(f: DataFile, opts: DetectOptions): Promise<{ scores: Float64Array; trainMs: number; stateBytes: number }> {
  const n = f.values.length;
  const base = opts.params ?? paramsFromEnv();
  const warmup = opts.warmup ?? 'nab';
  const params = { ...base, artime: { ...base.artime, probation: warmup === 'nab' ? probationLength(n) : warmup } };
  const d = new SeriesDetector(params);
  const scores = new Float64Array(n);
  if (!opts.learned || params.learnedWeight <= 0) {
    for (let i = 0; i < n; i++) scores[i] = d.step(f.timestamps[i]!, f.values[i]!).score;
    return { scores, trainMs: 0, stateBytes: Buffer.byteLength(JSON.stringify(d)) };
  }
  await initBackend();
  const family = f.key.split('/')[0] ?? 'default';
  let model = families.get(family);
  if (!model) families.set(family, (model = new FamilyModel({ family, seed: opts.seed ?? 42 })));
  const ws = newWindowState();
  const windows = new Float32Array(CHUNK * WINDOW);
  const targets = new Float32Array(CHUNK);
  const has = new Uint8Array(CHUNK);
  let trainMs = 0;
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    for (let i = start; i < end; i++) {
      const k = i - start;
      has[k] = ws.buf.length === WINDOW ? 1 : 0;
      if (has[k]) windows.set(ws.buf, k * WINDOW);
      targets[k] = normalise(ws, f.values[i]!);
      pushWindow(ws, f.values[i]!);
    }
    const pred = model.predict(windows, end - start);
    let due = false;
    for (let i = start; i < end; i++) {
      const k = i - start;
      const learned = has[k] ? learnedSurprise(pred[k]!, targets[k]!) : undefined;
      scores[i] = d.step(f.timestamps[i]!, f.values[i]!, learned).score;
      if (has[k]) due = model.observe(windows.subarray(k * WINDOW, (k + 1) * WINDOW), targets[k]!) || due;
    }
    if (due) {
      await model.train();
      trainMs += model.lastTrainMs;
    }
  }
  return { scores, trainMs, stateBytes: Buffer.byteLength(JSON.stringify(d)) };
}
