import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IN_CI } from '../peers/util.js';
import { defaultNabDir, readWindows, readPublishedScores, readResultFile, readThresholds, listDataFiles } from '../../benchmarks/nab/corpus.js';
import { FULL_CORPUS, normaliseFor, rawFor, restNeeded, restOfCorpus } from '../../benchmarks/nab/full-corpus.js';
import { PROFILES, PROFILE_NAMES, type ProfileName, scoreFile, scoreCorpus, scaledSigmoid, probationLength, sweepFile, sweepThresholds, atThreshold } from '../../benchmarks/nab/scorer.js';

const NAB = defaultNabDir();
const have = existsSync(join(NAB, 'results')) && existsSync(join(NAB, 'labels', 'combined_windows.json'));

function needNab(t: { skip(msg: string): void }): boolean {
  if (have) return true;
  const msg = `NAB data not found at ${NAB} (<project root>/../shared/datasets/nab)`;
  if (IN_CI) assert.fail(msg + ': required in CI');
  t.skip(msg);
  return false;
}

// Synthetic rows, one per minute; windows are given as timestamps, as in NAB's labels.
const T0 = Date.UTC(2020, 0, 1);
const ts = (n: number) => Array.from({ length: n }, (_, i) => T0 + i * 60_000);
const at = (i: number) => T0 + i * 60_000;

test('scaled sigmoid: NAB anchor values', () => {
  assert.ok(Math.abs(scaledSigmoid(-1) - 0.9866142981514305) < 1e-12);
  assert.ok(Math.abs(scaledSigmoid(-0.5) - 0.8482836399575131) < 1e-12);
  assert.equal(scaledSigmoid(0), 0);
  assert.ok(Math.abs(scaledSigmoid(1) + 0.9866142981514305) < 1e-12);
  assert.equal(scaledSigmoid(3.01), -1);
});

test('probation: 15% of rows, capped at 750', () => {
  assert.equal(probationLength(4032), 604);
  assert.equal(probationLength(10320), 750);
  assert.equal(probationLength(1000), 150);
});

test('single file rules: windows by row, earliest detection best, FPs by distance after a window', () => {
  const cost = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 };
  const n = 8;
  const win: Array<[number, number]> = [[at(2), at(4)]];
  const noProbation = (scores: number[]) => {
    // probation of 8 rows is floor(1.2) = 1 row: row 0 is never scored
    const r = scoreFile({ key: 'f', timestamps: ts(n), scores }, win, cost, 0.5);
    return r;
  };
  const curve = (x: number) => -Math.tanh(2.5 * x); // equals 2·sigmoid(−5x) − 1
  const cases: number[][] = [[], [2], [3], [4], [5], [7], [2, 3, 4], [1, 2, 7]];
  for (const active of cases) {
    const scores = Array.from({ length: n }, (_, i) => (active.includes(i) ? 1 : 0));
    let expected = -1;
    for (const i of active) if (i >= 2 && i <= 4) expected = Math.max(expected, curve(-(5 - i) / 3) / curve(-1));
    for (const i of active) {
      if (i < 2 && i >= 1) expected -= 0.11;
      else if (i > 4) expected += 0.11 * curve((i - 4) / 2);
    }
    const r = noProbation(scores);
    assert.ok(Math.abs(r.score - expected) < 1e-12, `active ${JSON.stringify(active)}: ${r.score} vs ${expected}`);
  }
});

test('threshold semantics: score >= threshold detects; an absent threshold uses the next higher one', () => {
  const cost = PROFILES.standard;
  const n = 100;
  const scores = new Array(n).fill(0.1);
  scores[50] = 0.7; // inside the window
  scores[80] = 0.6; // a false positive after it
  const win: Array<[number, number]> = [[at(45), at(55)]];
  const s = sweepFile('f', ts(n), scores, win, cost);
  const sweep = sweepThresholds([s], cost);
  assert.deepEqual(sweep.map((x) => x.threshold), [1.1, 0.7, 0.6, 0.1]);
  assert.equal(atThreshold(sweep, 0.7).tp, 1);
  assert.equal(atThreshold(sweep, 0.65).fp, 0); // next higher evaluated = 0.7
  assert.equal(atThreshold(sweep, 0.6).fp, 1);
  assert.equal(atThreshold(sweep, 1.1).score, -1); // nothing detected: one FN
});

test('normalisation: null detector 0, perfect detector 100, on a synthetic corpus', () => {
  const n = 200;
  const windows: Record<string, Array<[number, number]>> = { a: [[at(100), at(120)]], b: [[at(60), at(70)], [at(150), at(160)]], c: [] };
  const perfectScores = (k: string) => {
    const s = new Array(n).fill(0);
    for (const [a] of windows[k]!) s[(a - T0) / 60_000] = 1;
    return s;
  };
  for (const p of PROFILE_NAMES) {
    const perfect = scoreCorpus(['a', 'b', 'c'].map((k) => ({ key: k, timestamps: ts(n), scores: perfectScores(k) })), windows, p);
    assert.ok(Math.abs(perfect.normalised - 100) < 1e-9, `${p} perfect ${perfect.normalised}`);
    const nul = scoreCorpus(['a', 'b', 'c'].map((k) => ({ key: k, timestamps: ts(n), scores: new Array(n).fill(0.5) })), windows, p);
    assert.ok(Math.abs(nul.normalised) < 1e-9, `${p} null ${nul.normalised}`);
  }
});

const DETECTORS = ['numenta', 'ARTime', 'contextOSE', 'randomCutForest', 'windowedGaussian', 'null'];

for (const det of DETECTORS) {
  test(`reproduces NAB's published per-file scores of ${det} at its published thresholds (1e-6)`, (t) => {
    if (!needNab(t)) return;
    const windows = readWindows(join(NAB, 'labels', 'combined_windows.json'));
    const thresholds = readThresholds(NAB);
    const resultsDir = join(NAB, 'results');
    assert.ok(readdirSync(join(resultsDir, det)).length > 0);
    let checked = 0;
    for (const profile of PROFILE_NAMES) {
      const published = readPublishedScores(resultsDir, det, profile);
      assert.ok(published.length >= 41, `${det} ${profile}: ${published.length} rows`);
      const threshold = thresholds[det]![profile]!.threshold;
      for (const p of published) {
        const r = readResultFile(resultsDir, det, p.key);
        const ours = scoreFile(r, windows[p.key] ?? [], PROFILES[profile], threshold);
        assert.ok(Math.abs(ours.score - p.score) <= 1e-6, `${det} ${profile} ${p.key}: ours ${ours.score}, published ${p.score}`);
        assert.deepEqual([ours.tp, ours.tn, ours.fp, ours.fn], [p.tp, p.tn, p.fp, p.fn], `${det} ${profile} ${p.key} counts`);
        // Total_Count is the file's rows in older NAB releases and the scored rows in newer ones.
        assert.ok([ours.rows, ours.tp + ours.tn + ours.fp + ours.fn].includes(p.total), `${det} ${profile} ${p.key} total ${p.total}`);
        checked++;
      }
    }
    assert.equal(checked, 3 * 41);
  });
}

test('corpus sweep: numenta subset best thresholds score at least the published thresholds', (t) => {
  if (!needNab(t)) return;
  const windows = readWindows(join(NAB, 'labels', 'combined_windows.json'));
  const thresholds = readThresholds(NAB);
  const keys = listDataFiles(join(NAB, 'data'));
  const files = keys.map((k) => readResultFile(join(NAB, 'results'), 'numenta', k));
  for (const p of PROFILE_NAMES) {
    const swept = scoreCorpus(files, windows, p);
    const fixed = scoreCorpus(files, windows, p, thresholds.numenta![p]!.threshold);
    assert.ok(swept.raw >= fixed.raw - 1e-12, `${p}: sweep ${swept.raw} < fixed ${fixed.raw}`);
    const sumPerFile = fixed.perFile.reduce((a, f) => a + f.score, 0);
    assert.ok(Math.abs(sumPerFile - fixed.raw) < 1e-9, `${p}: corpus raw is the sum of per-file scores`);
    assert.ok(swept.normalised > 0 && swept.normalised < 100);
  }
});

test('full corpus: normalisation and its inverse, and what the rest must give adds up to the target', () => {
  for (const p of PROFILE_NAMES) {
    const c = PROFILES[p];
    assert.ok(Math.abs(normaliseFor(rawFor(73.2, 116, c), 116, c) - 73.2) < 1e-9);
    assert.equal(normaliseFor(-116 * c.fnWeight, 116, c), 0);
    assert.equal(normaliseFor(116 * c.tpWeight, 116, c), 100);
    // here 69 windows at some raw score; the rest giving exactly what is needed makes the full corpus the target
    const here = 20;
    const need = restNeeded(74.9, here, 69, c);
    const full = normaliseFor(here + rawFor(need, 116 - 69, c), 116, c);
    assert.ok(Math.abs(full - 74.9) < 1e-9, `${p}: ${full}`);
  }
});

test('full corpus: the published raw scores give the published scoreboard with 116 windows', (t) => {
  if (!needNab(t)) return;
  const th = readThresholds(NAB);
  // NAB's scoreboard (v1.1): standard ARTime 74.9, numenta 70.1, CAD OSE 69.9; CAD OSE low-FP 67.0
  const want: Array<[string, ProfileName, number]> = [['ARTime', 'standard', 74.9], ['numenta', 'standard', 70.1], ['contextOSE', 'standard', 69.9], ['contextOSE', 'reward_low_FP_rate', 67.0]];
  for (const [d, p, score] of want) assert.equal(Number(normaliseFor(th[d]![p]!.score, FULL_CORPUS.windows, PROFILES[p]).toFixed(1)), score, `${d} ${p}`);
  // the rest of the corpus, for a detector whose files here are all shipped: full = here + rest
  const windows = readWindows(join(NAB, 'labels', 'combined_windows.json'));
  const keys = listDataFiles(join(NAB, 'data'));
  const hereWindows = keys.reduce((a, k) => a + (windows[k]?.length ?? 0), 0);
  const files = keys.map((k) => readResultFile(join(NAB, 'results'), 'ARTime', k));
  const here = scoreCorpus(files, windows, 'standard', th.ARTime!.standard!.threshold);
  const r = restOfCorpus(th.ARTime!.standard!.score, here.raw, hereWindows, PROFILES.standard);
  const back = normaliseFor(here.raw + rawFor(r.rest, FULL_CORPUS.windows - hereWindows, PROFILES.standard), FULL_CORPUS.windows, PROFILES.standard);
  assert.ok(Math.abs(back - r.full) < 1e-9);
  assert.ok(r.rest > 0 && r.rest < 100, `ARTime on the rest: ${r.rest}`);
});
