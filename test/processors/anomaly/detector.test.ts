import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeriesDetector, DEFAULT_PARAMS, describeExcursion } from '../../../processors/anomaly/detector.js';
import { Art, Artime, DEFAULT_ARTIME, horizons } from '../../../processors/anomaly/artime.js';
import { FamilyModel, WINDOW, rng, initBackend } from '../../../processors/anomaly/learned.js';
import { poisson } from '../../../benchmarks/random.js';

const T0 = Date.UTC(2024, 0, 1);
const STEP = 5 * 60_000;

/** A diurnal series with noise (seeded), and optionally a spike at `at`. */
function series(n: number, seed = 1, spikeAt = -1): Array<[number, number]> {
  const r = rng(seed);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const ts = T0 + i * STEP;
    const hour = (ts / 3_600_000) % 24;
    let v = 100 + 40 * Math.sin((2 * Math.PI * hour) / 24) + (r() - 0.5) * 6;
    if (i === spikeAt) v += 120;
    out.push([ts, v]);
  }
  return out;
}

function run(d: SeriesDetector, pts: Array<[number, number]>): number[] {
  return pts.map(([t, v]) => d.step(t, v).score);
}

test('scores in [0,1]; a spike in a seasonal series scores far above the points around it', () => {
  const pts = series(3000, 7, 2500);
  const d = new SeriesDetector();
  const scores = run(d, pts);
  for (const s of scores) assert.ok(s >= 0 && s <= 1, `score ${s}`);
  // the ARTime layer decides once per downsampling block: the spike is reported at its block's end
  const { sstep } = horizons(DEFAULT_PARAMS.artime);
  const spike = Math.max(...scores.slice(2500, 2500 + sstep));
  const around = Math.max(...scores.slice(2300, 2490), ...scores.slice(2500 + sstep, 2700));
  assert.ok(spike > 0.9, `spike score ${spike}`);
  assert.ok(spike > around + 0.3, `spike ${spike} vs max around ${around}`);
});

test('ARTime layer: a repeating shape becomes familiar; a new shape in it is reported once; checkpoint exact', () => {
  // a square wave (period 96 points), then one period flattened to the middle
  const v = (i: number) => (Math.floor(i / 48) % 2 === 0 ? 10 : 20) + ((i * 7919) % 13) / 13;
  const a = new Artime({ ...DEFAULT_ARTIME, probation: 750 });
  const late: number[] = [];
  for (let i = 0; i < 4000; i++) {
    const r = a.step(v(i));
    if (i > 2500) late.push(r.score);
  }
  assert.equal(Math.max(...late), 0, 'the familiar wave raises nothing');
  const cp = JSON.parse(JSON.stringify(a.toJSON()));
  const novel: number[] = [];
  for (let i = 4000; i < 4096; i++) novel.push(a.step(15).score);
  assert.ok(Math.max(...novel) > 0.5, `novel shape ${Math.max(...novel)}`);
  assert.ok(novel.filter((s) => s > 0).length <= 3, `reported ${novel.filter((s) => s > 0).length} times`);
  const b = new Artime({ ...DEFAULT_ARTIME, probation: 750 }, cp);
  const again: number[] = [];
  for (let i = 4000; i < 4096; i++) again.push(b.step(15).score);
  assert.deepEqual(again, novel);
  assert.ok(a.categories <= DEFAULT_ARTIME.maxCategories);
});

test('a new pattern says how long a stretch it covers, in time and in points', () => {
  const v = (i: number) => (Math.floor(i / 48) % 2 === 0 ? 10 : 20) + ((i * 7919) % 13) / 13;
  const d = new SeriesDetector();
  let said = '';
  for (let i = 0; i < 4096 && !said; i++) {
    const e = d.step(T0 + i * STEP, i < 4000 ? v(i) : 15).explanation;
    if (/new pattern/.test(e)) said = e;
  }
  // the default warm-up (750 points) downsamples by 7: a shape is 8 steps of 7 points, 280 min at 5-min polls
  assert.match(said, /new pattern over the last 4\.7 h \(56 points; similarity 0\.\d+ to the \d+ learnt, vigilance 0\.\d+\)/);
});

test('ARTime memory, when full: a shape that keeps resonating outlives a run of one-off shapes (credit); plain recency evicted it', () => {
  const recall = (credit: number) => {
    const p = { ...DEFAULT_ARTIME, probation: 750, maxCategories: 3, keep: 10, credit };
    const art = new Art(p, horizons(p), 2 * p.window);
    art.s.lb = art.s.ub = 0.9;
    const r = rng(7);
    const shape = () => Float64Array.from({ length: 2 * p.window }, () => r());
    const routine = shape();
    art.train(routine, true); // the first sample only makes the uncommitted category
    assert.equal(art.train(routine, true).novel, true);
    for (let k = 0; k < 4; k++) assert.equal(art.train(routine, true).novel, false, 'the routine resonates');
    // twice the head starts it banked at credit 1 (its rank: its last resonance + keep)
    for (let k = 0; k < 20; k++) assert.equal(art.train(shape(), true).novel, true, 'a one-off is new');
    assert.equal(art.categories, 3);
    return art.train(routine, false);
  };
  const plain = recall(1);
  assert.ok(plain.A < 0.9, `under plain recency the routine was evicted: below the vigilance, new again (match ${plain.A})`);
  const banked = recall(DEFAULT_ARTIME.credit);
  assert.ok(banked.A >= 0.99, `the routine is still in memory (match ${banked.A})`);
});

test('a new extreme beyond everything seen scores at its own point (before ARTime\'s block ends), and says so', () => {
  const pts = series(3000, 7);
  const top = Math.max(...pts.slice(0, 2500).map(([, v]) => v));
  const range = top - Math.min(...pts.slice(0, 2500).map(([, v]) => v));
  pts[2500] = [pts[2500]![0], top + 0.15 * range];
  const on = new SeriesDetector();
  const off = new SeriesDetector({ ...DEFAULT_PARAMS, excursionMin: 0 });
  let a = on.step(pts[0]![0], pts[0]![1]);
  let b = off.step(pts[0]![0], pts[0]![1]);
  for (let i = 1; i <= 2500; i++) {
    a = on.step(pts[i]![0], pts[i]![1]);
    b = off.step(pts[i]![0], pts[i]![1]);
  }
  assert.equal(b.score, 0, 'ARTime alone has not decided yet');
  assert.ok(a.score > 0.3 && a.score <= DEFAULT_PARAMS.excursionLevel, `excursion score ${a.score}`);
  assert.match(a.explanation, /new high: past the highest before \(\S+\) by 15% of the range \S+ to \S+/);
});

test('an excursion is said against the range it left, as a share of it or, far out, a multiple', () => {
  assert.equal(describeExcursion(0.15, 0, 2), 'new high: past the highest before (2) by 15% of the range 0 to 2');
  assert.equal(describeExcursion(270.4, 0, 2), 'new high: past the highest before (2) by 270x the range 0 to 2');
  assert.equal(describeExcursion(-0.5, 10, 30), 'new low: under the lowest before (10) by 50% of the range 10 to 30');
});

test('one incident, one report: a lower candidate soon after is dropped, a higher one and a later incident are not', () => {
  const pts = series(4000, 7);
  const top = Math.max(...pts.slice(0, 2500).map(([, v]) => v));
  const range = top - Math.min(...pts.slice(0, 2500).map(([, v]) => v));
  const { mask, sstep } = horizons(DEFAULT_PARAMS.artime);
  const later = 2503 + mask * sstep + 200;
  pts[2500] = [pts[2500]![0], top + 0.3 * range];
  pts[2502] = [pts[2502]![0], top + 0.36 * range]; // a new high again, but a weaker excursion
  pts[later] = [pts[later]![0], top + 0.8 * range];
  const on = new SeriesDetector();
  const off = new SeriesDetector({ ...DEFAULT_PARAMS, incidentMasks: 0 });
  const a = pts.map(([t, v]) => on.step(t, v));
  const b = pts.map(([t, v]) => off.step(t, v));
  assert.ok(a[2500]!.score > 0.3, `first candidate ${a[2500]!.score}`);
  assert.ok(b[2502]!.score > 0 && b[2502]!.score < a[2500]!.score, `repeat without the incident mask ${b[2502]!.score}`);
  assert.equal(a[2502]!.score, 0, 'the repeat is the same incident');
  assert.match(a[2502]!.explanation, /same incident/);
  assert.ok(a[later]!.score > 0.3, `a later incident is reported: ${a[later]!.score}`);
  // only repeats are dropped: wherever the incident mask zeroes a score, an earlier point of the incident scored at least as high
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.score === b[i]!.score) continue;
    assert.equal(a[i]!.score, 0);
    assert.ok(Math.max(...b.slice(Math.max(0, i - 2 * mask * sstep), i).map((v) => v.score)) >= b[i]!.score, `point ${i}`);
  }
  // the incident survives a checkpoint
  const c = new SeriesDetector();
  for (let i = 0; i <= 2500; i++) c.step(pts[i]![0], pts[i]![1]);
  const r = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(c.toJSON())));
  r.step(pts[2501]![0], pts[2501]![1]);
  assert.equal(r.step(pts[2502]![0], pts[2502]![1]).score, 0);
});

test('after the range grew, a new pattern within it counts less for a while; the growing spike itself does not', () => {
  const pts = series(4000, 7);
  for (let i = 2500; i < 2504; i++) pts[i] = [pts[i]![0], 400]; // the range grows (3x)
  for (let i = 2800; i < 2900; i++) pts[i] = [pts[i]![0], 100]; // later, a flat stretch inside the range
  const on = new SeriesDetector();
  const off = new SeriesDetector({ ...DEFAULT_PARAMS, grownFactor: 1 });
  const a = pts.map(([t, v]) => on.step(t, v));
  const b = pts.map(([t, v]) => off.step(t, v));
  const spike = a.slice(2504, 2520).findIndex((v) => v.score > 0.9);
  assert.ok(spike >= 0, 'ARTime reports the spike block in full');
  let damped = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.score === b[i]!.score) continue;
    assert.ok(i > 2504, `point ${i}: nothing changes before the growth`);
    assert.equal(a[i]!.excursion, 0, `point ${i}: a new extreme is never damped`);
    assert.ok(Math.abs(a[i]!.score - b[i]!.score * DEFAULT_PARAMS.grownFactor) < 1e-6, `point ${i}: ${a[i]!.score} vs ${b[i]!.score}`);
    assert.match(a[i]!.explanation, /range grew \d+ points ago/);
    damped++;
  }
  assert.ok(damped > 0, 'the flat stretch after the growth was damped');
});

test('noveltyFloor (off by default): a new pattern no more novel than the series\' earlier ones counts less; the record survives a checkpoint', () => {
  const pts = series(7000, 7);
  // the same kind of routine oddity, again and again: a flat stretch inside the range
  for (const at of [2000, 3000, 4000, 5000, 6000]) for (let i = at; i < at + 100; i++) pts[i] = [pts[i]![0], 100];
  // change reports (the flat stretches are also level changes) left out: this is about the grading
  const GRADED = { ...DEFAULT_PARAMS, changeLevel: 0, noveltyFloor: 0.7 };
  const on = new SeriesDetector(GRADED);
  const off = new SeriesDetector({ ...GRADED, noveltyFloor: 1 });
  const a = pts.map(([t, v]) => on.step(t, v));
  const b = pts.map(([t, v]) => off.step(t, v));
  let damped = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.score === b[i]!.score) continue;
    assert.ok(a[i]!.score < b[i]!.score && a[i]!.score >= b[i]!.score * GRADED.noveltyFloor - 1e-6, `point ${i}: ${a[i]!.score} vs ${b[i]!.score}`);
    assert.match(a[i]!.explanation, /less novel than \d+ of the series' last \d+ new patterns/);
    damped++;
  }
  assert.ok(damped > 0, 'a repeat of the routine oddity was graded down');
  const c = new SeriesDetector(GRADED);
  for (let i = 0; i < 4500; i++) c.step(pts[i]![0], pts[i]![1]);
  assert.ok(typeof c.toJSON().nv === 'string' && (c.toJSON().nv as string).length > 0, 'the record is checkpointed, packed');
  const r = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(c.toJSON())), GRADED);
  assert.deepEqual(run(r, pts.slice(4500)), a.slice(4500).map((v) => v.score));
});

test('the verdict carries the expected value, a band around it, and an explanation naming the baseline', () => {
  const pts = series(3000, 7, 2500);
  const d = new SeriesDetector();
  let v = d.step(pts[0]![0], pts[0]![1]);
  for (let i = 1; i <= 2500; i++) v = d.step(pts[i]![0], pts[i]![1]);
  assert.ok(v.lower < v.expected && v.expected < v.upper);
  assert.ok(pts[2500]![1] > v.upper, 'the spike is above the band');
  assert.match(v.explanation, /above (seasonal baseline for \d\d:00 week(day|end)|recent level) .* by \d+\.\dσ/);
});

test('no look-ahead: scores of a prefix do not change when more data arrives', () => {
  const pts = series(2000, 3, 1500);
  const full = run(new SeriesDetector(), pts);
  const prefix = run(new SeriesDetector(), pts.slice(0, 1200));
  assert.deepEqual(prefix, full.slice(0, 1200));
});

test('a run restarted from a checkpoint (JSON round trip) gives the same scores as an uninterrupted one', () => {
  const pts = series(3000, 5, 2700);
  const full = run(new SeriesDetector(), pts);
  const a = new SeriesDetector();
  const first = run(a, pts.slice(0, 1777));
  const restored = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(a)));
  const second = run(restored, pts.slice(1777));
  assert.deepEqual([...first, ...second], full);
});

test('state per series stays bounded (<= 4 KB as JSON) however long the series runs', () => {
  const d = new SeriesDetector();
  const r = rng(9);
  const sizes: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    d.step(T0 + i * STEP, 1e6 * r() + (i % 7919 === 0 ? 1e9 : 0));
    if (i % 10_000 === 9_999) sizes.push(JSON.stringify(d).length);
  }
  for (const s of sizes) assert.ok(s <= 4096, `state ${s} bytes`);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) < 200, `state grows: ${sizes.join(', ')}`);
});

test('the range grows past the warm-up range (no clamping), and a grown memory restores exactly', () => {
  const pts = series(2400, 4);
  const a = new SeriesDetector();
  run(a, pts.slice(0, 1000));
  const hi0 = a.toJSON().ar!.hi;
  const later: Array<[number, number]> = pts.slice(1000).map(([t, v], i) => [t, i >= 200 ? v + 400 : v]);
  const cut = 300;
  const first = run(a, later.slice(0, cut));
  const cp = JSON.parse(JSON.stringify(a));
  assert.ok(cp.ar.hi > hi0 && cp.ar.hi >= Math.max(...later.slice(0, cut).map(([, v]) => v)), `range ${cp.ar.hi} holds the shifted values (was ${hi0})`);
  const rest = run(a, later.slice(cut));
  const again = run(SeriesDetector.fromJSON(cp), later.slice(cut));
  assert.deepEqual(again, rest);
  assert.ok(Math.max(...first) > 0.5, 'the shift is reported');
});

test('checkpoint: compact encodings restore exactly; a corrupt memory blob is a clear error, not a crash', () => {
  const pts = series(3000, 6, 2000);
  const a = new SeriesDetector();
  run(a, pts.slice(0, 2200));
  const cp = JSON.parse(JSON.stringify(a));
  assert.equal(typeof cp.b.offset, 'string', 'baseline offsets packed');
  assert.equal(typeof cp.ar.art.z, 'string', 'ART memory packed');
  assert.deepEqual(run(SeriesDetector.fromJSON(cp), pts.slice(2200)), run(a, pts.slice(2200)));
  // in the warm-up too (empty memory, buffered probation values)
  const w = new SeriesDetector();
  run(w, pts.slice(0, 300));
  const wcp = JSON.parse(JSON.stringify(w));
  assert.deepEqual(run(SeriesDetector.fromJSON(wcp), pts.slice(300, 1500)), run(w, pts.slice(300, 1500)));
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, ar: { ...cp.ar, art: { ...cp.ar.art, z: cp.ar.art.z.slice(0, 20) } } }), /anomaly detector state: corrupt/);
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, b: { ...cp.b, offset: 'AAAA' } }), /anomaly detector state: corrupt \(baseline offsets/);
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, fl: { ...cp.fl, r: 'x' } }), /anomaly detector state: corrupt \(flatline state/);
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, si: { ...cp.si, sl: 'AAAA' } }), /anomaly detector state: corrupt \(silence state/);
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, si: { ...cp.si, cs: 48 } }), /anomaly detector state: corrupt \(silence state/);
  // a checkpoint from before the stuck-run and silence watches restores, the watches starting afresh
  const { si: _si, ...olderSilence } = cp;
  assert.equal(SeriesDetector.fromJSON(olderSilence).step(pts[2200]![0], pts[2200]![1]).score, SeriesDetector.fromJSON(cp).step(pts[2200]![0], pts[2200]![1]).score);
  const { fl: _fl, ...older } = cp;
  assert.equal(SeriesDetector.fromJSON(older).step(pts[2200]![0], pts[2200]![1]).score, SeriesDetector.fromJSON(cp).step(pts[2200]![0], pts[2200]![1]).score);
});

test('bad input: a non-finite value is not learned from and does not disturb later scores', () => {
  const pts = series(1500, 2);
  const clean = run(new SeriesDetector(), pts);
  const d = new SeriesDetector();
  const dirty: number[] = [];
  pts.forEach(([t, v], i) => {
    if (i === 700) assert.equal(d.step(t + 1, NaN).score, 0);
    dirty.push(d.step(t, v).score);
  });
  assert.deepEqual(dirty, clean);
  assert.throws(() => SeriesDetector.fromJSON({ v: 9 }), /unsupported or corrupt/);
});

test('learned model: same seed and data give identical predictions; it learns a pattern the statistics cannot', async () => {
  assert.ok(['wasm', 'tensorflow'].includes(await initBackend()), 'wasm (or native) backend');
  const make = async (seed: number) => {
    const m = new FamilyModel({ family: 'test', seed, retrainEvery: 1_000_000, epochs: 20 });
    // a period-6 sawtooth: the next value is a function of the window
    const xs: number[] = [];
    for (let i = 0; i < 3000; i++) xs.push((i % 6) / 3 - 1);
    for (let i = WINDOW; i < xs.length; i++) m.observe(xs.slice(i - WINDOW, i), xs[i]!);
    await m.train();
    const probe = Float32Array.from(xs.slice(100, 100 + WINDOW));
    return { m, p: m.predict(probe, 1)[0]!, want: xs[100 + WINDOW]! };
  };
  const a = await make(42);
  const b = await make(42);
  assert.equal(a.p, b.p);
  assert.ok(Math.abs(a.p - a.want) < 0.25, `prediction ${a.p} vs ${a.want}`);
  assert.equal(a.m.version, 1);
  a.m.dispose();
  b.m.dispose();
});

test('defaults are the measured configuration', () => {
  assert.equal(DEFAULT_PARAMS.mode, 'artime');
  // production warm-up is a fixed count, never derived from a series length
  assert.equal(DEFAULT_PARAMS.artime.probation, 750);
  assert.equal(DEFAULT_PARAMS.artime.range, 'probation', 'no look-ahead range');
  assert.ok(DEFAULT_PARAMS.artime.maxCategories > 0, 'bounded memory');
  assert.ok(DEFAULT_PARAMS.artime.credit > 1, 'eviction weighs how often a category resonated, not only how lately');
  assert.equal(DEFAULT_PARAMS.artime.overflow, 'grow', 'the range grows rather than clamps');
  assert.ok(DEFAULT_PARAMS.excursionMin > 0, 'the new-extreme opinion is on');
  assert.equal(DEFAULT_PARAMS.incidentMasks, 1, 'repeats within an incident are dropped');
  assert.ok(DEFAULT_PARAMS.grownFactor < 1, 'new patterns count less while the memory settles after the range grew');
  assert.ok(DEFAULT_PARAMS.changeLevel > 0 && DEFAULT_PARAMS.changeLevel < DEFAULT_PARAMS.excursionLevel, 'a change report counts, under a new extreme');
  assert.ok(DEFAULT_PARAMS.baseline.change.allowance > 0, 'change detection is on');
  assert.equal(DEFAULT_PARAMS.noveltyFloor, 1, 'the novelty grading is off: it cost the demo network\'s incidents their events');
  assert.ok(DEFAULT_PARAMS.flatline.factor > 1 && DEFAULT_PARAMS.flatLevel > 0, 'a series stuck on one value is reported');
  assert.ok(DEFAULT_PARAMS.silence.factor > 1 && DEFAULT_PARAMS.silenceLevel > 0 && DEFAULT_PARAMS.silenceLevel < DEFAULT_PARAMS.excursionLevel, 'a strange silence is reported and counts in the score, under a new extreme');
  assert.ok(DEFAULT_PARAMS.artime.logCounts > 1, 'a count spanning several times its median is seen on a log scale');
  assert.ok(DEFAULT_PARAMS.artime.countKnee > 1, 'whose knee is above one event');
});

/** Counts per 5 minutes (Poisson, seeded) around `mean` x a daily rhythm (35% at night to 100% in the afternoon). */
function counts(mean: number, points: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: points }, (_, i) => {
    const h = ((i * STEP) / 3_600_000) % 24;
    return poisson(mean * (0.35 + 0.65 * Math.max(0, Math.sin(((h - 6) / 24) * 2 * Math.PI))), r);
  });
}

test('log scale for counts: a count spanning several times its median is seen on the log scale; a gauge, a narrow count or logCounts 0 are not', () => {
  const scale = (xs: readonly number[], p = DEFAULT_ARTIME) => {
    const a = new Artime(p);
    for (const x of xs) a.step(x);
    return a.logScale;
  };
  const low = counts(2, 1500, 3);
  assert.equal(scale(low), true, 'error counts of a few per poll');
  assert.equal(scale(low.map((x) => x + 1000)), false, 'a count that stays within a narrow multiple of its median');
  assert.equal(scale(low.map((x) => x / 3)), false, 'fractional: a gauge, not a count');
  assert.equal(scale(low.map((x, i) => (i === 400 ? -1 : x))), false, 'a negative value: not a count');
  assert.equal(scale(low, { ...DEFAULT_ARTIME, logCounts: 0 }), false, 'off');
  // decided once, at the end of the warm-up: a later fraction does not undo it
  assert.equal(scale([...low, 0.5, 2.5]), true);
});

test('log scale for counts: healthy low counts over 60 days raise no confident new pattern; seen linearly, their noise did; a checkpoint in the warm-up restores exactly', () => {
  const confident = (logCounts: number) => {
    let n = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const a = new Artime({ ...DEFAULT_ARTIME, logCounts });
      for (const x of counts(2, 288 * 60, seed)) if (a.step(x).score >= 0.9) n++;
    }
    return n;
  };
  const seenLog = confident(DEFAULT_ARTIME.logCounts);
  const seenLinear = confident(0);
  assert.ok(seenLog <= 2, `log scale: ${seenLog} reports at 0.9 or more in 480 series-days`);
  assert.ok(seenLinear >= seenLog + 5, `linear: ${seenLinear} (log: ${seenLog})`);
  // the warm-up's count grid is state: a detector restored half-way through it decides and scores as the uninterrupted one
  const xs = counts(2, 3000, 11);
  const a = new Artime(DEFAULT_ARTIME);
  const whole = xs.map((x) => a.step(x).score);
  const b = new Artime(DEFAULT_ARTIME);
  const first = xs.slice(0, 400).map((x) => b.step(x).score);
  const c = new Artime(DEFAULT_ARTIME, JSON.parse(JSON.stringify(b.toJSON())));
  assert.deepEqual([...first, ...xs.slice(400).map((x) => c.step(x).score)], whole);
  assert.equal(c.logScale, true);
  assert.equal((c.toJSON() as { cq?: unknown }).cq, undefined, 'the grid is dropped once the scale is chosen');
});

test('a counter\'s rate (countRate): ARTime judges its count per poll, so the log scale for counts meets it; a gap reads as the usual count; a checkpoint keeps what the series is', () => {
  const perSecond = counts(2, 3000, 5).map((x) => x / (STEP / 1000));
  const run = (d: SeriesDetector, xs: readonly number[], from = 0) => xs.map((x, i) => d.step(T0 + (from + i) * STEP, x).score);
  const asRate = new SeriesDetector(DEFAULT_PARAMS, undefined, { countRate: true });
  const whole = run(asRate, perSecond);
  assert.equal(asRate.isCountRate, true);
  assert.equal(asRate.logScale, true, 'errors per second: their count per poll spans several times its median');
  const asGauge = new SeriesDetector(DEFAULT_PARAMS);
  run(asGauge, perSecond);
  assert.equal(asGauge.logScale, false, 'the same rate as a gauge: fractional, so linear');
  // the first point has no interval to count over: ARTime has seen one point fewer
  const seen = (d: SeriesDetector) => (d.toJSON().ar as { i: number }).i;
  assert.equal(seen(asGauge) - seen(asRate), 1);
  assert.equal(asRate.toJSON().ps, STEP / 1000);
  // restored half-way through the warm-up and half-way through the series: the same scores, still a count rate
  for (const at of [300, 2000]) {
    const a = new SeriesDetector(DEFAULT_PARAMS, undefined, { countRate: true });
    const first = run(a, perSecond.slice(0, at));
    const b = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    assert.equal(b.isCountRate, true);
    assert.deepEqual([...first, ...run(b, perSecond.slice(at), at)], whole, `restored at ${at}`);
  }
  // a feed gap: the rate over it is an average, and the poll stays the shortest interval seen
  const gap = new SeriesDetector(DEFAULT_PARAMS, undefined, { countRate: true });
  run(gap, perSecond.slice(0, 1000));
  gap.step(T0 + 1010 * STEP, 1 / (STEP / 1000));
  assert.equal(gap.toJSON().ps, STEP / 1000);
  // a checkpoint from before count rates: a plain series
  const old = asRate.toJSON();
  delete old.cr;
  delete old.ps;
  assert.equal(SeriesDetector.fromJSON(old).isCountRate, false);
});

/** Business-hours traffic at 5-min polls: weekdays 08:00-18:30 at full level, 15% otherwise; `shift` multiplies a stretch. */
function office(days: number, seed: number, shift?: { from: number; points: number; factor: number }): Array<[number, number]> {
  const r = rng(seed);
  return Array.from({ length: (days * 86_400_000) / STEP }, (_, i) => {
    const ts = T0 + i * STEP;
    const d = new Date(ts);
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
    let v = 2e8 * (weekend || h < 8 || h >= 18.5 ? 0.15 : 1) * (1 + 0.08 * (r() - 0.5) * 3.4);
    if (shift && i >= shift.from && i < shift.from + shift.points) v *= shift.factor;
    return [ts, v] as [number, number];
  });
}

test('change detection: a night-time level three times its usual is reported once, within the hour; business-hours steps are not', () => {
  // day 22 is a Tuesday; 02:00-04:00 at 3x: inside the day's range, and no new shape at the 15% level's scale
  const from = 22 * 288 + 24;
  const healthy = office(28, 3);
  const shifted = office(28, 3, { from, points: 24, factor: 3 });
  const changes = (pts: Array<[number, number]>, d = new SeriesDetector()) => pts.map(([t, v], i) => ({ i, v: d.step(t, v) })).filter((x) => x.v.change);
  assert.deepEqual(changes(healthy).map((x) => x.i), [], 'four weeks of 08:00 and 18:30 steps, weekends: no change');
  const got = changes(shifted);
  assert.equal(got.length, 1, `one report, at ${got.map((x) => x.i).join(', ')}`);
  const at = got[0]!;
  assert.ok(at.i >= from && at.i < from + 12, `within the hour: point ${at.i - from} of the shift`);
  assert.equal(at.v.change!.dir, 1);
  assert.equal(at.v.change!.since, shifted[from]![0], 'the evidence started with the shift');
  assert.match(at.v.explanation, /level change: above the usual [\d.e+]+ for 02:00 weekday for \d+ min/);
  // the score ranks it at changeLevel at least (under ARTime's new shapes and new extremes)
  assert.ok(at.v.score >= DEFAULT_PARAMS.changeLevel && DEFAULT_PARAMS.changeLevel > 0, `score ${at.v.score}`);
  const quiet = new SeriesDetector({ ...DEFAULT_PARAMS, changeLevel: 0 });
  assert.ok(shifted.map(([t, v]) => quiet.step(t, v).score)[at.i]! < DEFAULT_PARAMS.changeLevel, 'without it, the point scores lower');
  // allowance 0 turns it off
  const off = new SeriesDetector({ ...DEFAULT_PARAMS, baseline: { ...DEFAULT_PARAMS.baseline, change: { ...DEFAULT_PARAMS.baseline.change, allowance: 0 } } });
  assert.deepEqual(changes(shifted, off), []);
});

test('change detection: a restored detector reports the change an uninterrupted one does; an older checkpoint (no slot scales) restores', () => {
  const from = 22 * 288 + 24;
  const pts = office(23, 4, { from, points: 24, factor: 3 });
  const cut = from + 3; // mid-way through the evidence
  const a = new SeriesDetector();
  pts.slice(0, cut).forEach(([t, v]) => a.step(t, v));
  const cp = JSON.parse(JSON.stringify(a));
  const tail = (d: SeriesDetector) => pts.slice(cut).map(([t, v]) => d.step(t, v));
  const uninterrupted = tail(a);
  const restored = tail(SeriesDetector.fromJSON(cp));
  assert.deepEqual(restored, uninterrupted);
  assert.equal(uninterrupted.filter((v) => v.change).length, 1);
  // a checkpoint written before change detection: slot scales start from the overall one, sums at 0
  const old = JSON.parse(JSON.stringify(cp));
  for (const k of ['es', 't0', 'last', 'cu', 'cd', 'cuT', 'cdT', 'cuArmed', 'cdArmed']) delete old.b[k];
  const o = SeriesDetector.fromJSON(old);
  assert.ok(tail(o).every((v) => Number.isFinite(v.score)));
  assert.throws(() => SeriesDetector.fromJSON({ ...cp, b: { ...cp.b, es: 'AAAA' } }), /anomaly detector state: corrupt \(baseline slot scales/);
});

test('a lasting change (lastMs): reported once, an hour after the change was, while the level holds; a burst that dies down within the hour is reported as a change but never as lasting; a checkpoint in the wait restores it', () => {
  const from = 22 * 288 + 24;
  const hour = 3_600_000;
  const lasting = (pts: Array<[number, number]>, d = new SeriesDetector()) => pts.map(([t, v], i) => ({ i, t, v: d.step(t, v) })).filter((x) => x.v.change || x.v.lasted);
  // a 3x level for two hours: the change at its crossing, the lasting report lastMs later
  const shift = office(28, 3, { from, points: 24, factor: 3 });
  const got = lasting(shift);
  const change = got.filter((x) => x.v.change);
  const lasted = got.filter((x) => x.v.lasted);
  assert.equal(change.length, 1);
  assert.equal(lasted.length, 1, `one lasting report, at ${lasted.map((x) => x.i).join(', ')}`);
  assert.equal(DEFAULT_PARAMS.baseline.change.lastMs, hour);
  assert.ok(lasted[0]!.t - change[0]!.t >= hour && lasted[0]!.i < from + 24, `an hour after the change (${change[0]!.i - from} -> ${lasted[0]!.i - from}), within the shift`);
  assert.deepEqual(lasted[0]!.v.lasted!.dir, 1);
  assert.equal(lasted[0]!.v.lasted!.since, change[0]!.v.change!.since, 'the same change');
  assert.match(lasted[0]!.v.explanation, /lasting level change: above the usual [\d.e+]+ for 0[23]:00 weekday for \d+ min/);
  // the score takes the change at once, not the lasting report
  assert.ok(change[0]!.v.score >= DEFAULT_PARAMS.changeLevel);
  // 30 minutes at 3x: a change at its crossing, gone before it lasted
  const burst = office(28, 3, { from, points: 6, factor: 3 });
  const b = lasting(burst);
  assert.equal(b.filter((x) => x.v.change).length, 1, 'the burst crosses the threshold');
  assert.deepEqual(b.filter((x) => x.v.lasted).map((x) => x.i), [], 'and is not a lasting change');
  // lastMs 0: lasting at the crossing
  const now = new SeriesDetector({ ...DEFAULT_PARAMS, baseline: { ...DEFAULT_PARAMS.baseline, change: { ...DEFAULT_PARAMS.baseline.change, lastMs: 0 } } });
  const b0 = lasting(burst, now);
  assert.deepEqual(b0.filter((x) => x.v.lasted).map((x) => x.i), b.filter((x) => x.v.change).map((x) => x.i));
  // a checkpoint between the change and its lasting report
  const cut = Math.floor((change[0]!.i + lasted[0]!.i) / 2);
  const a = new SeriesDetector();
  shift.slice(0, cut).forEach(([t, v]) => a.step(t, v));
  const cp = JSON.parse(JSON.stringify(a));
  const tail = (d: SeriesDetector) => shift.slice(cut).map(([t, v]) => d.step(t, v));
  const uninterrupted = tail(a);
  assert.deepEqual(tail(SeriesDetector.fromJSON(cp)), uninterrupted);
  assert.equal(uninterrupted.filter((v) => v.lasted).length, 1);
  // a checkpoint from before lasting changes: the wait starts afresh, the report still comes once
  const old = JSON.parse(JSON.stringify(cp));
  delete old.b.cuX;
  delete old.b.cdX;
  assert.equal(tail(SeriesDetector.fromJSON(old)).filter((v) => v.lasted).length, 1);
});

test('stuck: a series that stops moving is reported once, when its run outgrows twice its longest before; a constant, or a series at its floor, is not', () => {
  // speed-like readings rounded to whole units: repeats by chance, runs of 2-4
  const r = rng(7);
  const pts: Array<[number, number]> = [];
  for (let i = 0; i < 2000; i++) pts.push([T0 + i * STEP, Math.round(60 + 3 * Math.sin(i / 40) + 5 * (r() - 0.5))]);
  const from = 1500;
  const stuck = pts.map(([t, v], i): [number, number] => [t, i >= from && i < from + 48 ? pts[from - 1]![1] : v]);
  const reports = (xs: Array<[number, number]>, d = new SeriesDetector()) => xs.map(([t, v], i) => ({ i, v: d.step(t, v) })).filter((x) => x.v.flat);
  assert.deepEqual(reports(pts).map((x) => x.i), [], 'healthy: chance repeats are never a report');
  const got = reports(stuck);
  assert.equal(got.length, 1, `one report, at ${got.map((x) => x.i).join(', ')}`);
  const at = got[0]!;
  const f = at.v.flat!;
  assert.ok(f.record >= 2 && f.points === 2 * f.record + 1, `run of ${f.points} points against a longest run of ${f.record}`);
  assert.ok(at.i < from + 12, `within the hour (point ${at.i - from} of the run)`);
  assert.equal(f.value, pts[from - 1]![1]);
  assert.match(at.v.explanation, /stuck: unchanged at \d+ for \d+ min \(\d+ points; the longest run before: \d+\)/);
  assert.ok(at.v.score >= DEFAULT_PARAMS.flatLevel && DEFAULT_PARAMS.flatLevel > 0, `score ${at.v.score}`);
  const quiet = new SeriesDetector({ ...DEFAULT_PARAMS, flatLevel: 0 });
  assert.ok(stuck.map(([t, v]) => quiet.step(t, v).score)[at.i]! < DEFAULT_PARAMS.flatLevel, 'without flatLevel, the point scores lower');
  // a checkpoint inside the run: the restored detector reports at the same point
  const live = new SeriesDetector();
  stuck.slice(0, from + 2).forEach(([t, v]) => live.step(t, v));
  const restored = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(live)));
  const after = stuck.slice(from + 2).map(([t, v], k) => ({ i: from + 2 + k, flat: restored.step(t, v).flat })).filter((x) => x.flat);
  assert.deepEqual(after.map((x) => x.i), [at.i]);
  // a series that never varied is constant, not stuck; one resting at its floor (an idle link) is quiet
  assert.deepEqual(reports(pts.map(([t]): [number, number] => [t, 5])), []);
  const idle = pts.map(([t, v], i): [number, number] => [t, i >= from && i < from + 200 ? 0 : (i % 100 < 3 ? 0 : v)]);
  assert.deepEqual(reports(idle), []);
});

/** A log source's messages per 5 min for `days`: Poisson, busy by day (about 40), nearly silent at night (0.3), at 0 over `outage`. */
function messages(days: number, seed: number, outage?: { from: number; points: number }): Array<[number, number]> {
  const r = rng(seed);
  const poisson = (l: number) => {
    let k = 0;
    for (let p = Math.exp(-l), q = r(); q > p; q *= r()) k++;
    return k;
  };
  return Array.from({ length: (days * 86_400_000) / STEP }, (_, i) => {
    const ts = T0 + i * STEP;
    const h = new Date(ts).getUTCHours();
    const v = outage && i >= outage.from && i < outage.from + outage.points ? 0 : poisson(h >= 8 && h < 20 ? 40 : 0.3);
    return [ts, v] as [number, number];
  });
}

test('silence: a log source at 0 in hours that never are is reported once, within 20 min; the same hour of zeros at night is not', () => {
  const silences = (pts: Array<[number, number]>, d = new SeriesDetector()) => pts.map(([t, v], i) => ({ i, v: d.step(t, v) })).filter((x) => x.v.silence);
  assert.deepEqual(silences(messages(28, 5)).map((x) => x.i), [], 'four weeks of busy days and silent nights: no report');
  const from = 22 * 288 + 14 * 12; // 14:00 on day 22
  const out = messages(28, 5, { from, points: 12 });
  const got = silences(out);
  assert.equal(got.length, 1, `one report, at ${got.map((x) => x.i).join(', ')}`);
  const at = got[0]!;
  assert.ok(at.i >= from && at.i < from + 4, `within 20 min: point ${at.i - from} of the outage`);
  assert.equal(at.v.silence!.since, out[from]![0]);
  assert.ok(at.v.silence!.share < 0.01, `this hour rests at 0 ${at.v.silence!.share} of the time`);
  assert.match(at.v.explanation, /silent: at its floor \(0\) for \d+ min \(\d+ points\) at an hour of the week that rests there less than 1% of the time/);
  // in the score at silenceLevel, like the other lower rules: the event and the stored score agree
  const off = new SeriesDetector({ ...DEFAULT_PARAMS, silence: { ...DEFAULT_PARAMS.silence, factor: 0 } });
  const without = out.map(([t, v]) => off.step(t, v).score)[at.i]!;
  assert.ok(without < DEFAULT_PARAMS.silenceLevel, `without the watch the point scores ${without}`);
  assert.equal(at.v.score, DEFAULT_PARAMS.silenceLevel);
  // a checkpoint inside the outage: the restored detector reports at the same point
  const live = new SeriesDetector();
  out.slice(0, from + 1).forEach(([t, v]) => live.step(t, v));
  const restored = SeriesDetector.fromJSON(JSON.parse(JSON.stringify(live)));
  assert.deepEqual(out.slice(from + 1).map(([t, v], k) => ({ i: from + 1 + k, q: restored.step(t, v).silence })).filter((x) => x.q).map((x) => x.i), [at.i]);
  // the same hour of zeros at 02:00, where this source is at 0 most of the time: quiet, not silent
  assert.deepEqual(silences(messages(28, 5, { from: 22 * 288 + 2 * 12, points: 12 })).map((x) => x.i), []);
});
