/**
 * NAB harness: runs Noctua's anomaly detector over a NAB-layout folder, writes NAB-format results
 * (timestamp,value,anomaly_score,label per file) and NAB's per-file score files at the corpus threshold
 * (noctua_<profile>_scores.csv, the columns of the published detectors' own), scores them with
 * benchmarks/nab/scorer.ts and prints the three profile scores, per-category scores, and the shipped
 * detectors' figures beside ours.
 *
 *   node dist/benchmarks/nab/run.js [--data DIR] [--labels FILE] [--results DIR] [--out DIR] [--no-learned] [--split] [--warmup nab|N] [--robust N] [--unseen N]
 *
 * --unseen N also scores ours and the published ARTime on N seeded corpora of each kind in unseen.ts
 * (series of kinds the shipped files lack, written before any detector ran on them): a score on data
 * the detector was not tuned on, with its reference from the same run.
 *
 * --robust N also scores N - 1 random settings of the ARTime layer around the defaults (seeded) and
 * prints the mean and spread with the defaults': how much of the figure is a well-chosen point.
 *
 * Defaults: <project root>/../shared/datasets/nab. The last line is one JSON object {"bench":"nab",...}.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultNabDir, listDataFiles, readDataFile, readWindows, readResultFile, readThresholds, resultPath, formatTimestamp, type DataFile, type WindowMap } from './corpus.js';
import { FULL_CORPUS, restOfCorpus, restNeeded } from './full-corpus.js';
import { scoreCorpus, PROFILE_NAMES, PROFILES, normalise, nullRaw, type ProfileName, type FileInput, type FileScore } from './scorer.js';
import { detectSeries, DETECTOR_NAME } from './detect.js';
import { scoreUnseen, UNSEEN_KINDS } from './unseen.js';
import { DEFAULT_PARAMS, type DetectorParams } from '../../processors/anomaly/detector.js';
import type { ArtimeParams } from '../../processors/anomaly/artime.js';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    labels: { type: 'string' },
    results: { type: 'string' },
    out: { type: 'string' },
    'no-learned': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    /** ARTime warm-up: 'nab' (the file's probationary period, as NAB tells a detector) or a fixed count of points. */
    warmup: { type: 'string', default: 'nab' },
    /** Also score two halves of the files (alternate files within each category): tuning on one half, reporting the other. */
    split: { type: 'boolean', default: false },
    /** Also score this many settings of the ARTime layer (the defaults and random ones around them). */
    robust: { type: 'string', default: '0' },
    /** Also score labelled synthetic corpora of kinds the shipped files lack (unseen.ts), this many seeds each. */
    unseen: { type: 'string', default: '0' },
  },
});

const nab = defaultNabDir();
const dataDir = args.data ?? join(nab, 'data');
const labelsFile = args.labels ?? join(dataDir, '..', 'labels', 'combined_windows.json');
const resultsDir = args.results ?? join(dataDir, '..', 'results');
const outDir = args.out ?? join(process.cwd(), 'benchmarks', 'results', 'nab');
const warmup: 'nab' | number = args.warmup === 'nab' ? 'nab' : Number(args.warmup);
/** Files per unseen corpus. */
const UNSEEN_FILES = 16;
const log = (s: string) => {
  if (!args.quiet) process.stdout.write(s + '\n');
};

/** A table row: a name, then one figure per profile. */
const fmtRow = (name: string, xs: readonly number[]) => `${name.padEnd(22)}${xs.map((x) => x.toFixed(2).padStart(12)).join('')}`;
const PROFILE_HEADER = `${'detector'.padEnd(22)}${['standard', 'low_FP', 'low_FN'].map((h) => h.padStart(12)).join('')}`;

function category(key: string): string {
  return key.split('/')[0] ?? '';
}

function inWindowLabels(f: DataFile, windows: WindowMap): Uint8Array {
  const lab = new Uint8Array(f.timestamps.length);
  for (const [a, b] of windows[f.key] ?? []) for (let i = 0; i < lab.length; i++) if (f.timestamps[i]! >= a && f.timestamps[i]! <= b) lab[i] = 1;
  return lab;
}

function writeResults(f: DataFile, scores: ArrayLike<number>, labels: Uint8Array): void {
  const path = join(outDir, DETECTOR_NAME, dirname(f.key), `${DETECTOR_NAME}_${basename(f.key)}`);
  mkdirSync(dirname(path), { recursive: true });
  let s = 'timestamp,value,anomaly_score,label\n';
  for (let i = 0; i < f.timestamps.length; i++) s += `${formatTimestamp(f.timestamps[i]!)},${f.values[i]},${scores[i]},${labels[i]}\n`;
  writeFileSync(path, s);
}

interface Summary {
  profile: ProfileName;
  score: number;
  raw: number;
  threshold: number;
  perCategory: Record<string, number>;
  perFile: FileScore[];
}

/** NAB's per-file score file (`<detector>_<profile>_scores.csv`, its columns), at the corpus threshold: per file against the published detectors' own. */
function writeScores(s: Summary): void {
  const path = join(outDir, DETECTOR_NAME, `${DETECTOR_NAME}_${s.profile}_scores.csv`);
  let out = 'Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n';
  for (const f of s.perFile) out += `${DETECTOR_NAME},${s.profile},${f.key},${s.threshold},${f.score},${f.tp},${f.tn},${f.fp},${f.fn},${f.rows}\n`;
  writeFileSync(path, out);
}

function summarise(files: FileInput[], windows: WindowMap): Summary[] {
  return PROFILE_NAMES.map((profile) => {
    const r = scoreCorpus(files, windows, profile);
    const perCategory: Record<string, number> = {};
    const cats = [...new Set(files.map((f) => category(f.key)))].sort();
    for (const c of cats) {
      const inCat = files.filter((f) => category(f.key) === c);
      const raw = r.perFile.filter((f) => category(f.key) === c).reduce((a, f) => a + f.score, 0);
      const nWin = inCat.reduce((a, f) => a + (windows[f.key]?.length ?? 0), 0);
      // A category without windows has no normalised score: its raw score is the cost of its false positives.
      perCategory[c] = nWin === 0 ? raw : normalise(raw, nullRaw(inCat, windows, PROFILES[profile]), nWin * PROFILES[profile].tpWeight);
    }
    return { profile, score: r.normalised, raw: r.raw, threshold: r.threshold, perCategory, perFile: r.perFile };
  });
}

async function main(): Promise<void> {
  if (!existsSync(dataDir)) throw new Error(`NAB data folder not found: ${dataDir} (pass --data DIR)`);
  const windows = readWindows(labelsFile);
  const keys = listDataFiles(dataDir);
  const ours: FileInput[] = [];
  const t0 = performance.now();
  let points = 0;
  let trainMs = 0;
  let maxState = 0;
  for (const key of keys) {
    const f = readDataFile(dataDir, key);
    const r = await detectSeries(f, { learned: !args['no-learned'], warmup });
    trainMs += r.trainMs;
    maxState = Math.max(maxState, r.stateBytes);
    points += f.values.length;
    writeResults(f, r.scores, inWindowLabels(f, windows));
    ours.push({ key, timestamps: f.timestamps, scores: r.scores });
  }
  const runMs = performance.now() - t0;
  const mine = summarise(ours, windows);
  for (const s of mine) writeScores(s);
  log(`Noctua (${DETECTOR_NAME}) on ${keys.length} files, ${points} points in ${(runMs / 1000).toFixed(1)} s; largest detector state ${maxState} B (JSON); results in ${join(outDir, DETECTOR_NAME)}`);
  const others: Record<string, Summary[]> = {};
  /** Published detectors with a result for every file here: the halves and the full-corpus figures take only these. */
  const otherFiles: Record<string, FileInput[]> = {};
  /** Published detectors with results for some files only (a folder holding files NAB's results lack): compared on those. */
  const partial: Array<{ det: string; theirs: Summary[]; ours: Summary[]; files: number }> = [];
  for (const det of ['numenta', 'contextOSE', 'ARTime']) {
    if (!existsSync(join(resultsDir, det))) continue;
    const have = keys.filter((k) => existsSync(resultPath(resultsDir, det, k)));
    try {
      const files = have.map((k) => readResultFile(resultsDir, det, k));
      if (have.length === keys.length) {
        otherFiles[det] = files;
        others[det] = summarise(files, windows);
      } else if (have.length > 0) {
        const same = new Set(have);
        partial.push({ det, theirs: summarise(files, windows), ours: summarise(ours.filter((f) => same.has(f.key)), windows), files: have.length });
      } else log(`(${det}: no published result for any file here)`);
    } catch (err) {
      log(`(${det}: published results not usable here: ${(err as Error).message})`);
    }
  }
  const row = (name: string, s: Summary[]) => fmtRow(name, s.map((x) => x.score));
  const published = (d: string) => (d === 'contextOSE' ? 'CAD OSE' : d) + ' (published)';
  log(`\nNAB scores on this corpus (null = 0, perfect = 100), threshold swept per profile`);
  log(PROFILE_HEADER);
  log(row('noctua', mine));
  for (const [d, s] of Object.entries(others)) log(row(published(d), s));
  for (const p of partial) {
    log(`on the ${p.files} of ${keys.length} files ${p.det} has published results for (each swept for its own threshold):`);
    log(row('  noctua', p.ours));
    log(row('  ' + published(p.det), p.theirs));
  }
  log(`\nper category, standard profile (raw score for categories without windows)`);
  const cats = Object.keys(mine[0]!.perCategory);
  log(`${'detector'.padEnd(22)}${cats.map((c) => c.slice(0, 20).padStart(22)).join('')}`);
  log(`${'noctua'.padEnd(22)}${cats.map((c) => mine[0]!.perCategory[c]!.toFixed(2).padStart(22)).join('')}`);
  for (const [d, s] of Object.entries(others)) log(`${d.padEnd(22)}${cats.map((c) => (s[0]!.perCategory[c] ?? NaN).toFixed(2).padStart(22)).join('')}`);
  const rest = restOfFullCorpus(keys, windows, mine, otherFiles);
  const out: Record<string, unknown> = {
    bench: 'nab',
    detector: DETECTOR_NAME,
    files: keys.length,
    points,
    seconds: Number((runMs / 1000).toFixed(2)),
    training_ms: Math.round(trainMs),
    max_state_bytes: maxState,
  };
  for (const s of mine) {
    out[s.profile] = Number(s.score.toFixed(2));
    out[`${s.profile}_threshold`] = s.threshold;
  }
  out.per_category_standard = Object.fromEntries(Object.entries(mine[0]!.perCategory).map(([k, v]) => [k, Number(v.toFixed(2))]));
  for (const [d, s] of Object.entries(others)) out[d] = Object.fromEntries(s.map((x) => [x.profile, Number(x.score.toFixed(2))]));
  const figures = (s: Summary[]) => s.map((x) => Number(x.score.toFixed(2)));
  if (partial.length) out.published_on_some_files = Object.fromEntries(partial.map((p) => [p.det, { files: p.files, noctua: figures(p.ours), published: figures(p.theirs) }]));
  if (rest) out.rest_of_full_corpus = rest;
  if (args.split) {
    // Stratified halves; "B at A threshold" scores B at the threshold swept on A (held out in both
    // senses). The published detectors' results go through the same protocol, for a reference.
    const seen: Record<string, number> = {};
    const half = (k: string) => ((seen[category(k)] = (seen[category(k)] ?? 0) + 1) % 2 === 1 ? 'A' : 'B');
    const tag = new Map(ours.map((f) => [f.key, half(f.key)]));
    const splitRows = (files: FileInput[]): Array<[string, number[]]> => {
      const A = files.filter((f) => tag.get(f.key) === 'A');
      const B = files.filter((f) => tag.get(f.key) === 'B');
      const swept = (xs: FileInput[]) => PROFILE_NAMES.map((p) => scoreCorpus(xs, windows, p).normalised);
      const cross = (tr: FileInput[], te: FileInput[]) => PROFILE_NAMES.map((p) => scoreCorpus(te, windows, p, scoreCorpus(tr, windows, p).threshold).normalised);
      return [['half A (own threshold)', swept(A)], ['half B (own threshold)', swept(B)], ['B at A threshold', cross(A, B)], ['A at B threshold', cross(B, A)]];
    };
    const rows = splitRows(ours);
    const nA = ours.filter((f) => tag.get(f.key) === 'A').length;
    log(`\nhalves (alternate files within each category: ${nA} in A, ${ours.length - nA} in B)`);
    for (const [name, v] of rows) log(fmtRow(name, v));
    out.split = Object.fromEntries(rows.map(([name, v]) => [name, v.map((x) => Number(x.toFixed(2)))]));
    const refs: Record<string, unknown> = {};
    for (const [d, files] of Object.entries(otherFiles)) {
      const r = splitRows(files);
      log(`${d} (published), same protocol:`);
      for (const [name, v] of r) log(fmtRow('  ' + name, v));
      refs[d] = Object.fromEntries(r.map(([name, v]) => [name, v.map((x) => Number(x.toFixed(2)))]));
    }
    out.split_reference = refs;
  }
  const settings = Number(args.robust);
  if (settings > 1) out.robust = await robustness(keys, windows, settings, mine.map((x) => x.score));
  const seeds = Number(args.unseen);
  if (seeds > 0) out.unseen = await unseen(seeds, mine.map((x) => x.threshold));
  process.stdout.write(JSON.stringify(out) + '\n');
}


/**
 * When this folder is part of the full NAB corpus and NAB's published full-corpus raw scores are
 * beside it (config/thresholds.json): the published detectors' full-corpus scores and their scores on
 * the files not here, and the least ours must score on those files for the full corpus to beat the
 * best published score of each profile (full-corpus.ts says why that is a lower bound).
 */
function restOfFullCorpus(keys: string[], windows: WindowMap, mine: Summary[], otherFiles: Record<string, FileInput[]>): Record<string, unknown> | null {
  const hereWindows = keys.reduce((a, k) => a + (windows[k]?.length ?? 0), 0);
  const file = join(dataDir, '..', 'config', 'thresholds.json');
  if (keys.length >= FULL_CORPUS.files || hereWindows >= FULL_CORPUS.windows || !existsSync(file)) return null;
  const published = readThresholds(join(dataDir, '..'));
  const restFiles = FULL_CORPUS.files - keys.length;
  const restWindows = FULL_CORPUS.windows - hereWindows;
  log(`
the full NAB corpus (${FULL_CORPUS.files} files, ${FULL_CORPUS.windows} windows) and its ${restFiles} files (${restWindows} windows) not in this folder,`);
  log(`from NAB's published full-corpus raw scores less each detector's here at its published threshold`);
  log(PROFILE_HEADER);
  const refs: Record<string, { full: number[]; rest: number[] }> = {};
  for (const [d, files] of Object.entries(otherFiles)) {
    const pub = published[d];
    if (!pub || PROFILE_NAMES.some((p) => !pub[p])) continue;
    const r = PROFILE_NAMES.map((p) => restOfCorpus(pub[p]!.score, scoreCorpus(files, windows, p, pub[p]!.threshold).raw, hereWindows, PROFILES[p]));
    refs[d] = { full: r.map((x) => Number(x.full.toFixed(2))), rest: r.map((x) => Number(x.rest.toFixed(2))) };
    const name = d === 'contextOSE' ? 'CAD OSE' : d;
    log(fmtRow(`${name}, full corpus`, r.map((x) => x.full)));
    log(fmtRow(`${name}, the rest`, r.map((x) => x.rest)));
  }
  if (Object.keys(refs).length === 0) return null;
  const best = PROFILE_NAMES.map((_, j) => Math.max(...Object.values(refs).map((x) => x.full[j]!)));
  const need = PROFILE_NAMES.map((p, j) => restNeeded(best[j]!, mine[j]!.raw, hereWindows, PROFILES[p]));
  log(fmtRow('noctua must give', need));
  log(`  on the rest, at least, for the full corpus to reach the best published (${best.map((x) => x.toFixed(2)).join(' / ')}), given ${mine.map((x) => x.score.toFixed(2)).join(' / ')} here`);
  return { files: restFiles, windows: restWindows, reference: refs, best_published_full: best, noctua_needs_on_rest: need.map((x) => Number(x.toFixed(2))) };
}

/** Ours and the published ARTime on corpora of kinds the shipped files lack (unseen.ts), at their own thresholds and at those chosen on NAB. */
async function unseen(seeds: number, ourThresholds: number[]): Promise<Record<string, unknown>> {
  const file = join(dataDir, '..', 'config', 'thresholds.json');
  const published = existsSync(file) ? readThresholds(join(dataDir, '..')).ARTime : undefined;
  const artime = published && PROFILE_NAMES.every((p) => published[p]) ? PROFILE_NAMES.map((p) => published[p]!.threshold) : null;
  const out: Record<string, unknown> = {};
  log(`\nkinds the shipped files lack (benchmarks/nab/unseen.ts; ${seeds} seeded corpora of ${UNSEEN_FILES} files each, written before any detector ran on them; the road corpus prompted the stuck-series rule; mentions, road and requests were looked at for counting the silence watch in the score, mentions and requests for the log scale of counts, those three for its knee; latency and sessions were written after every choice, and none has looked at them): ours beside ARTime as NAB ran it`);
  log(PROFILE_HEADER);
  for (const kind of UNSEEN_KINDS) {
    process.stderr.write(`unseen: ${kind} `);
    const r = await scoreUnseen(kind, seeds, UNSEEN_FILES, { ours: ourThresholds, artime });
    process.stderr.write('\n');
    log(`${kind}: ${r.files} files, ${r.windows} windows; mean of the corpora, each swept for its threshold`);
    log(fmtRow('  noctua', r.ours));
    log(fmtRow('  ARTime', r.artime));
    if (r.oursAtNab) log(fmtRow('  noctua, NAB threshold', r.oursAtNab));
    if (r.artimeAtNab) log(fmtRow('  ARTime, its NAB thr.', r.artimeAtNab));
    log(`  windows with a detection (standard), noctua / ARTime of all: ${Object.entries(r.caught).map(([k, [a, b, n]]) => `${k} ${a} / ${b} of ${n}`).join(', ')}`);
    const fix = (xs: number[] | null) => xs?.map((x) => Number(x.toFixed(2))) ?? null;
    out[kind] = { files: r.files, windows: r.windows, noctua: fix(r.ours), ARTime: fix(r.artime), noctua_at_nab_threshold: fix(r.oursAtNab), ARTime_at_nab_threshold: fix(r.artimeAtNab), caught: r.caught };
  }
  return { seeds, ...out };
}

/** Settings around the defaults, drawn by a seeded generator so runs compare. */
function randomSettings(n: number): Array<Partial<ArtimeParams>> {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const out: Array<Partial<ArtimeParams>> = [];
  for (let v = 1; v < n; v++) {
    out.push({ margin: 0.6 + 0.4 * rnd(), chomp: 0.06 + 0.03 * rnd(), initialRho: 0.78 + 0.08 * rnd(), growMargin: 0.1 + 0.2 * rnd(), maxCategories: [40, 48, 56][Math.floor(rnd() * 3)]! });
  }
  return out;
}

async function robustness(keys: string[], windows: WindowMap, n: number, defaults: number[]): Promise<Record<string, unknown>> {
  const data = keys.map((k) => readDataFile(dataDir, k));
  const all: number[][] = [defaults];
  const variants = randomSettings(n);
  process.stderr.write(`robustness: ${variants.length} more settings `);
  for (const v of variants) {
    const params: DetectorParams = { ...DEFAULT_PARAMS, artime: { ...DEFAULT_PARAMS.artime, ...v } };
    const files: FileInput[] = [];
    for (const f of data) files.push({ key: f.key, timestamps: f.timestamps, scores: (await detectSeries(f, { params, learned: false, warmup })).scores });
    all.push(PROFILE_NAMES.map((p) => scoreCorpus(files, windows, p).normalised));
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  const stat = (j: number) => {
    const xs = all.map((r) => r[j]!);
    const m = xs.reduce((a, x) => a + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
    return { mean: m, se: sd / Math.sqrt(xs.length), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const stats = PROFILE_NAMES.map((_, j) => stat(j));
  log(`\nrobustness: ${n} settings of the ARTime layer (defaults + ${n - 1} random: margin 0.6-1.0, snap 0.06-0.09, initial vigilance 0.78-0.86, growth margin 0.1-0.3, 40/48/56 categories)`);
  log(`${'mean ± s.e.'.padEnd(22)}${stats.map((x) => `${x.mean.toFixed(2)}±${x.se.toFixed(2)}`.padStart(12)).join('')}`);
  log(`${'min .. max'.padEnd(22)}${stats.map((x) => `${x.min.toFixed(1)}..${x.max.toFixed(1)}`.padStart(12)).join('')}`);
  return { settings: n, ...Object.fromEntries(PROFILE_NAMES.map((p, j) => [p, Object.fromEntries(Object.entries(stats[j]!).map(([k, v]) => [k, Number(v.toFixed(2))]))])) };
}

main().catch((err) => {
  process.stderr.write(`bench:nab failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
