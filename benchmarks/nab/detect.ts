import { SeriesDetector, DEFAULT_PARAMS, type DetectorParams } from '../../processors/anomaly/detector.js';
import type { DataFile } from './corpus.js';

export const DETECTOR_NAME = 'noctua';

export interface DetectOptions {
  readonly learned: boolean;
  readonly params?: DetectorParams;
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

/** Runs one series through a fresh detector, one point at a time, as the stream would. */
export async function detectSeries(f: DataFile, opts: DetectOptions): Promise<{ scores: Float64Array; trainMs: number }> {
  const d = new SeriesDetector(opts.params ?? paramsFromEnv());
  const scores = new Float64Array(f.values.length);
  for (let i = 0; i < f.values.length; i++) scores[i] = d.step(f.timestamps[i]!, f.values[i]!).score;
  return { scores, trainMs: 0 };
}
