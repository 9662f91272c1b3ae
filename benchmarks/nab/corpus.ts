import type { ThresholdScore } from './scorer.js';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Reading a NAB-layout folder: `data/<category>/<name>.csv`, `labels/combined_windows.json`,
 * `results/<detector>/<category>/<detector>_<name>.csv`, `config/thresholds.json`.
 * File keys are the data-relative paths NAB uses everywhere, e.g. `realKnownCause/nyc_taxi.csv`.
 */

/** A NAB timestamp (`2014-07-01 00:00:00` or with `.000000`) as UTC epoch ms; NaN when malformed. */
export function parseTimestamp(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(s.trim());
  if (!m) return NaN;
  const ms = m[7] ? Math.round(Number('0.' + m[7]) * 1000) : 0;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms);
}

/** NAB's own text form of a timestamp, as written in results files. */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export interface Table {
  readonly header: string[];
  readonly rows: string[][];
}

/** A plain CSV (no quoted commas: NAB files have none). */
export function readCsv(path: string): Table {
  const text = readFileSync(path, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
  return { header, rows: lines.map((l) => l.split(',')) };
}

export interface DataFile {
  /** `category/name.csv` */
  readonly key: string;
  readonly timestamps: number[];
  readonly values: number[];
}

export function readDataFile(dataDir: string, key: string): DataFile {
  const path = join(dataDir, key);
  const t = readCsv(path);
  const ti = t.header.indexOf('timestamp');
  const vi = t.header.indexOf('value');
  if (ti < 0 || vi < 0) throw new Error(`${path}: expected columns timestamp,value, got ${t.header.join(',')}`);
  const timestamps: number[] = [];
  const values: number[] = [];
  t.rows.forEach((r, i) => {
    const ts = parseTimestamp(r[ti] ?? '');
    if (!Number.isFinite(ts)) throw new Error(`${path}: row ${i + 2}: bad timestamp ${JSON.stringify(r[ti])}`);
    timestamps.push(ts);
    values.push(Number(r[vi]));
  });
  return { key, timestamps, values };
}

/** Every `category/name.csv` below a data folder, sorted. */
export function listDataFiles(dataDir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.csv')) out.push(relative(dataDir, p).split('\\').join('/'));
    }
  };
  walk(dataDir);
  return out;
}

/** Windows per file key, as [startMs, endMs] pairs in file order. */
export type WindowMap = Record<string, Array<[number, number]>>;

export function readWindows(labelsFile: string): WindowMap {
  const raw = JSON.parse(readFileSync(labelsFile, 'utf8')) as Record<string, Array<[string, string]>>;
  const out: WindowMap = {};
  for (const [k, ws] of Object.entries(raw)) out[k] = ws.map(([a, b]) => [parseTimestamp(a), parseTimestamp(b)]);
  return out;
}

/** One detector's published or produced per-row scores for one file. */
export interface ResultFile {
  readonly key: string;
  readonly timestamps: number[];
  readonly scores: number[];
}

/** `results/<det>/<category>/<det>_<name>.csv` for a file key. */
export function resultPath(resultsDir: string, detector: string, key: string): string {
  return join(resultsDir, detector, dirname(key), `${detector}_${basename(key)}`);
}

export function readResultFile(resultsDir: string, detector: string, key: string): ResultFile {
  const path = resultPath(resultsDir, detector, key);
  const t = readCsv(path);
  const ti = t.header.indexOf('timestamp');
  const si = t.header.indexOf('anomaly_score');
  if (ti < 0 || si < 0) throw new Error(`${path}: expected timestamp and anomaly_score columns`);
  return {
    key,
    timestamps: t.rows.map((r) => parseTimestamp(r[ti]!)),
    scores: t.rows.map((r) => Number(r[si])),
  };
}

export interface PublishedFileScore extends ThresholdScore {
  readonly key: string;
  readonly total: number;
}

/** `results/<det>/<det>_<profile>_scores.csv`: NAB's per-file scores (the Totals row is dropped). */
export function readPublishedScores(resultsDir: string, detector: string, profile: string): PublishedFileScore[] {
  const t = readCsv(join(resultsDir, detector, `${detector}_${profile}_scores.csv`));
  const col = (n: string) => t.header.indexOf(n);
  return t.rows
    .filter((r) => r[col('File')] && r[col('File')] !== '' && r[0] !== 'Totals' && r[col('File')] !== 'Totals')
    .map((r) => ({
      key: r[col('File')]!,
      threshold: Number(r[col('Threshold')]),
      score: Number(r[col('Score')]),
      tp: Number(r[col('TP')]),
      tn: Number(r[col('TN')]),
      fp: Number(r[col('FP')]),
      fn: Number(r[col('FN')]),
      total: Number(r[col('Total_Count')]),
    }));
}

export type PublishedThresholds = Record<string, Record<string, { score: number; threshold: number }>>;

export function readThresholds(nabDir: string): PublishedThresholds {
  return JSON.parse(readFileSync(join(nabDir, 'config', 'thresholds.json'), 'utf8')) as PublishedThresholds;
}

/** `<project root>/../shared/datasets/nab`, found from this compiled file's place (dist/benchmarks/nab). */
export function defaultNabDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src: <root>/benchmarks/nab ; compiled: <root>/dist/benchmarks/nab
  for (const up of ['../../..', '../..']) {
    const root = join(here, up);
    if (existsSync(join(root, 'package.json'))) return join(root, '..', 'shared', 'datasets', 'nab');
  }
  return join(here, '../../../../shared/datasets/nab');
}
