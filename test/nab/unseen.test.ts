import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unseenCorpus, UNSEEN_KINDS } from '../../benchmarks/nab/unseen.js';
import { probationLength } from '../../benchmarks/nab/scorer.js';

const LABELS: Record<string, string[]> = { mentions: ['burst', 'surge', 'gap'], road: ['jam', 'stuck', 'absurd'], requests: ['outage', 'crowd', 'bots'], latency: ['reroute', 'congestion', 'degradation'], sessions: ['disconnect', 'leak', 'cap'] };

/** The hour from point m differs from the hour before it by a quarter of that (counts: of at least 1). */
function moves(xs: readonly number[], m: number): boolean {
  const mean = (x: number, y: number) => xs.slice(x, y).reduce((s, v) => s + v, 0) / (y - x);
  const before = mean(m - 12, m);
  return Math.abs(mean(m, m + 12) - before) > 0.25 * Math.max(1, before);
}

test('unseen corpora: the same seed gives the same series, another seed others', () => {
  for (const kind of UNSEEN_KINDS) {
    const a = unseenCorpus(kind, 3, 4);
    const b = unseenCorpus(kind, 3, 4);
    const c = unseenCorpus(kind, 4, 4);
    assert.deepEqual(a, b, kind);
    assert.notDeepEqual(a.files.map((f) => f.values), c.files.map((f) => f.values), kind);
  }
});

test("unseen corpora: NAB's windows (10% of the file shared among its anomalies), after the probation, in time order, around a visible change", () => {
  for (const kind of UNSEEN_KINDS) {
    const c = unseenCorpus(kind, 1, 12);
    let changed = 0;
    let labelled = 0;
    let control = 0;
    let controlChanged = 0;
    for (const f of c.files) {
      const n = f.values.length;
      const ws = c.windows[f.key]!;
      assert.ok(ws.length >= 1 && ws.length <= 4, `${f.key}: ${ws.length} windows`);
      assert.equal(c.kinds[f.key]!.length, ws.length);
      for (const k of c.kinds[f.key]!) assert.ok(LABELS[kind]!.includes(k), `${f.key}: label ${k}`);
      assert.ok(f.timestamps.every((t, i) => i === 0 || t > f.timestamps[i - 1]!), `${f.key}: timestamps ascend`);
      const width = Math.floor((0.1 * n) / ws.length);
      let prevEnd = -Infinity;
      for (const [a, b] of ws) {
        const ia = f.timestamps.indexOf(a);
        const ib = f.timestamps.indexOf(b);
        assert.ok(ia >= probationLength(n), `${f.key}: window starts in the probation (${ia})`);
        assert.ok(Math.abs(ib - ia - width) <= 1, `${f.key}: window of ${ib - ia} points, NAB's rule gives ${width}`);
        assert.ok(a > prevEnd, `${f.key}: windows overlap`);
        prevEnd = b;
        // the labelled onset is the window's centre: the half after it differs from the half before
        labelled++;
        if (moves(f.values, Math.floor((ia + ib) / 2))) changed++;
      }
      for (let m = probationLength(n); m < n - 12; m += 97) {
        control++;
        if (moves(f.values, m)) controlChanged++;
      }
    }
    // most labelled anomalies move the level in their first hour (a stuck sensor or a small surge may
    // not), far more often than the series does anywhere (its noise, flurries, rush hours)
    const share = changed / labelled;
    const base = controlChanged / control;
    assert.ok(share >= base + 0.3, `${kind}: ${changed} of ${labelled} labelled anomalies move the level, ${(100 * base).toFixed(0)}% of other points do`);
  }
});
