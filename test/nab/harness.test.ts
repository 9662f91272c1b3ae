import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unseenCorpus } from '../../benchmarks/nab/unseen.js';
import { formatTimestamp } from '../../benchmarks/nab/corpus.js';
import { normalise, PROFILES, PROFILE_NAMES } from '../../benchmarks/nab/scorer.js';
import { tempDir } from '../peers/util.js';

const RUN = fileURLToPath(new URL('../../benchmarks/nab/run.js', import.meta.url));

test('harness: any NAB-layout folder (--data, --labels) gives NAB-format results and per-file score files that add up to the printed scores', { timeout: 120_000 }, async () => {
  const dir = tempDir('nab-harness');
  try {
    // two categories of a seeded labelled corpus (its windows after the probation), in NAB's layout and label format
    const labels: Record<string, string[][]> = {};
    for (const [kind, cat] of [['road', 'realRoad'], ['requests', 'realRequests']] as const) {
      const c = unseenCorpus(kind, 5, 2);
      for (const f of c.files) {
        const key = `${cat}/${f.key.split('/').pop()}`;
        mkdirSync(join(dir.path, 'data', cat), { recursive: true });
        writeFileSync(join(dir.path, 'data', key), 'timestamp,value\n' + f.timestamps.map((t, i) => `${formatTimestamp(t)},${f.values[i]}`).join('\n') + '\n');
        labels[key] = c.windows[f.key]!.map(([a, b]) => [`${formatTimestamp(a)}.000000`, `${formatTimestamp(b)}.000000`]);
      }
    }
    mkdirSync(join(dir.path, 'labels'));
    writeFileSync(join(dir.path, 'labels', 'windows.json'), JSON.stringify(labels));
    // a published detector with results for one of the four files only (NAB's results lack files a user adds): an
    // ideal one, at each window's first row; it is compared with ours on that file, not dropped, not scored on the rest
    const [only] = Object.keys(labels);
    const rows = readFileSync(join(dir.path, 'data', only!), 'utf8').trim().split('\n').slice(1);
    const starts = new Set(labels[only!]!.map(([a]) => a!.slice(0, 19)));
    mkdirSync(join(dir.path, 'results', 'ARTime', dirname(only!)), { recursive: true });
    writeFileSync(join(dir.path, 'results', 'ARTime', dirname(only!), `ARTime_${only!.split('/')[1]}`), 'timestamp,value,anomaly_score,label\n' + rows.map((r) => `${r},${starts.has(r.slice(0, 19)) ? 1 : 0},0`).join('\n') + '\n');
    const out = join(dir.path, 'out');
    const { stdout } = await promisify(execFile)(process.execPath, [RUN, '--data', join(dir.path, 'data'), '--labels', join(dir.path, 'labels', 'windows.json'), '--results', join(dir.path, 'results'), '--out', out, '--quiet'], { maxBuffer: 16 * 1024 * 1024 });
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.equal(summary.bench, 'nab');
    assert.equal(summary.files, 4);
    assert.ok(!('rest_of_full_corpus' in summary), 'no published full-corpus reference for a folder that is not part of NAB');
    assert.ok(!('ARTime' in summary), 'a detector without results for every file is not scored on the corpus');
    const some = (summary.published_on_some_files as Record<string, { files: number; noctua: number[]; published: number[] }>).ARTime!;
    assert.equal(some.files, 1);
    assert.ok(some.published.every((x) => x > 98), `the ideal detector on its one file: ${some.published}`);
    assert.ok(some.noctua.every((x) => x <= 100.01) && some.noctua.some((x) => x !== summary.standard), `ours on that file alone: ${some.noctua}`);
    const windows = Object.values(labels).reduce((a, w) => a + w.length, 0);
    for (const key of Object.keys(labels)) {
      const rows = readFileSync(join(out, 'noctua', dirname(key), `noctua_${key.split('/')[1]}`), 'utf8').trim().split('\n');
      assert.equal(rows[0], 'timestamp,value,anomaly_score,label', key);
      assert.ok(rows.slice(1).every((r) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,[-\d.e]+,[\d.e-]+,[01]$/.test(r)), key);
      assert.ok(rows.slice(1).some((r) => r.endsWith(',1')), `${key}: labelled rows`);
    }
    for (const profile of PROFILE_NAMES) {
      const { fnWeight, tpWeight } = PROFILES[profile];
      const lines = readFileSync(join(out, 'noctua', `noctua_${profile}_scores.csv`), 'utf8').trim().split('\n');
      assert.equal(lines[0], 'Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count');
      assert.deepEqual(lines.slice(1).map((l) => l.split(',')[2]).sort(), Object.keys(labels).sort());
      assert.ok(lines.slice(1).every((l) => Number(l.split(',')[3]) === summary[`${profile}_threshold`]), 'at the corpus threshold');
      const raw = lines.slice(1).reduce((a, l) => a + Number(l.split(',')[4]), 0);
      assert.equal(Number(normalise(raw, -windows * fnWeight, windows * tpWeight).toFixed(2)), summary[profile], profile);
    }
  } finally {
    dir.remove();
  }
});
