import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DDSketch, mergeSketches, DEFAULT_ALPHA } from '../../processors/sketch.js';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

function exact(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

function assertWithinBound(s: DDSketch, values: number[], alpha: number, what: string): void {
  const sorted = values.slice().sort((a, b) => a - b);
  for (const q of QS) {
    const x = exact(sorted, q);
    const est = s.quantile(q);
    assert.ok(Math.abs(est - x) <= alpha * Math.abs(x) + 1e-12, `${what}: q=${q} exact ${x} estimate ${est} exceeds ${alpha} relative error`);
  }
}

test('hand-computed buckets: alpha 0.01 reports each value within 1%', () => {
  const s = new DDSketch(0.01);
  for (const v of [1, 2, 3, 4, 100]) s.add(v);
  assert.equal(s.count, 5);
  // gamma = 1.01/0.99; bucket of 3 is ceil(ln 3 / ln gamma) = ceil(54.925..) = 55, reported as 2*gamma^55/(gamma+1)
  const g = 1.01 / 0.99;
  assert.equal(Math.ceil(Math.log(3) / Math.log(g)), 55);
  const v55 = (2 * Math.pow(g, 55)) / (g + 1);
  assert.ok(Math.abs(s.quantile(0.5) - v55) < 1e-9, `median ${s.quantile(0.5)} vs bucket value ${v55}`);
  assert.ok(Math.abs(v55 - 3) <= 0.03);
  assert.ok(Math.abs(s.quantile(1) - 100) <= 1);
  assert.ok(Number.isNaN(new DDSketch().quantile(0.5)), 'empty sketch answers NaN, not 0');
});

test('single sketch: lognormal and mixed-sign values stay within the stated relative-error bound', () => {
  const r = rng(7);
  const logn: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    // Box-Muller: lognormal spanning several decades, like interface bit rates.
    const z = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    logn.push(Math.exp(10 + 3 * z));
  }
  const s = new DDSketch(DEFAULT_ALPHA);
  for (const v of logn) s.add(v);
  assertWithinBound(s, logn, DEFAULT_ALPHA, 'lognormal');

  const mixed: number[] = [];
  for (let i = 0; i < 5000; i++) mixed.push(i % 17 === 0 ? 0 : (r() - 0.4) * 1000);
  const m = new DDSketch(0.02);
  for (const v of mixed) m.add(v);
  assertWithinBound(m, mixed, 0.02, 'mixed sign');
});

test('merged sketches equal the sketch of the union and keep the bound (rollup re-aggregation)', () => {
  const r = rng(99);
  const all: number[] = [];
  const parts: DDSketch[] = [];
  for (let p = 0; p < 12; p++) {
    const s = new DDSketch();
    // Each part has its own level, like 12 five-second windows of a busy link.
    const level = 1e6 * (1 + p);
    for (let i = 0; i < 500; i++) {
      const v = level * (0.5 + r());
      s.add(v);
      all.push(v);
    }
    parts.push(s);
  }
  const merged = mergeSketches(parts.map((p) => p.toJSON()));
  const direct = new DDSketch();
  for (const v of all) direct.add(v);
  assert.deepEqual(merged.toJSON(), direct.toJSON(), 'merge is exact bucket for bucket');
  assertWithinBound(merged, all, DEFAULT_ALPHA, 'merged');
  // Merge in another association order: same result.
  const left = parts[0]!.clone();
  const rest = mergeSketches(parts.slice(1).map((p) => p.toJSON()));
  left.merge(rest);
  assert.deepEqual(left.toJSON(), direct.toJSON());
});

test('collapse keeps high quantiles within the bound when buckets run out', () => {
  const s = new DDSketch(0.01, 64);
  const values: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const v = Math.pow(10, (i / 2000) * 12);
    values.push(v);
    s.add(v);
  }
  assert.ok(s.bins <= 64);
  const sorted = values.slice().sort((a, b) => a - b);
  // 64 buckets of 2% each span a ratio of 1.0202^64 = 3.6, i.e. the top 0.046 of 12 decades:
  // quantiles above 0.96 keep the guarantee, lower ones are folded into the lowest kept bucket.
  for (const q of [0.97, 0.99, 0.999, 1]) {
    const x = exact(sorted, q);
    assert.ok(Math.abs(s.quantile(q) - x) <= 0.01 * x, `q=${q}`);
  }
  assert.equal(s.count, 2000);
});

test('JSON round trip is exact and malformed JSON is rejected with a reason', () => {
  const s = new DDSketch();
  for (const v of [-5, -1, 0, 0, 3, 3, 1e9]) s.add(v);
  const back = DDSketch.fromJSON(JSON.parse(JSON.stringify(s)));
  assert.deepEqual(back.toJSON(), s.toJSON());
  for (const q of QS) assert.equal(back.quantile(q), s.quantile(q));
  assert.throws(() => DDSketch.fromJSON({ a: 0.01, pi: [1, 2], pc: [1] }), /equal length/);
  assert.throws(() => DDSketch.fromJSON({ a: 0.01, pi: [3, 2], pc: [1, 1] }), /ascend/);
  assert.throws(() => new DDSketch(0.01).merge(new DDSketch(0.02)), /cannot merge/);
});
