import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { AnomalyOperator, anomalyConfig, type DerivedSample } from '../../../processors/anomaly/operator.js';
import { FamilyModel, loadModel, initBackend } from '../../../processors/anomaly/learned.js';
import { registry } from '../../../core/metrics.js';
import type { NetEvent } from '../../../core/types.js';
import { rng } from '../../../processors/anomaly/learned.js';
import { tempDir } from '../../peers/util.js';
import { DEFAULT_PARAMS } from '../../../processors/anomaly/detector.js';
import { horizons } from '../../../processors/anomaly/artime.js';
import { poisson } from '../../../benchmarks/random.js';
import { KINDS, healthySeries, operatorEvents } from '../../../benchmarks/anomaly-quiet.js';

const T0 = Date.UTC(2024, 0, 1);
const STEP = 60_000;

function traffic(devices: number, n: number, incidentAt = -1, seed = 1): DerivedSample[][] {
  const r = rng(seed);
  const batches: DerivedSample[][] = [];
  for (let i = 0; i < n; i++) {
    const ts = T0 + i * STEP;
    const b: DerivedSample[] = [];
    for (let d = 0; d < devices; d++) {
      let v = 1e6 * (1 + 0.3 * Math.sin((2 * Math.PI * i) / 1440 + d)) * (1 + 0.02 * (r() - 0.5));
      if (d === 0 && incidentAt >= 0 && i >= incidentAt) v *= 6;
      b.push({ metric: 'if_in_bps', labels: { device: `r${d}`, ifName: 'eth0' }, ts, value: v });
    }
    batches.push(b);
  }
  return batches;
}

test('an incident becomes an anomaly event (warning by default) within one downsampling block; quiet series raise none', async () => {
  const op = new AnomalyOperator(anomalyConfig({ learned: false, eventsAfter: '0s' }));
  await op.init();
  const batches = traffic(3, 1500, 1400);
  const events = batches.flatMap((b) => op.process(b).events);
  assert.ok(events.length >= 1, 'an event');
  const first = events[0]!;
  assert.equal(first.kind, 'anomaly');
  assert.equal(first.severity, 'warning');
  assert.equal(first.device, 'r0');
  const { sstep } = horizons(DEFAULT_PARAMS.artime);
  assert.ok(first.ts >= T0 + 1400 * STEP && first.ts < T0 + (1400 + sstep) * STEP, `raised within the incident’s first block (${(first.ts - T0) / STEP})`);
  assert.match(first.message, /if_in_bps\{device="r0",ifName="eth0"\}: .*above/);
  assert.ok(events.every((e) => e.device === 'r0'), 'no event on quiet series');
  // deterministic ids: a replay gives the same event
  const op2 = new AnomalyOperator(anomalyConfig({ learned: false, eventsAfter: '0s' }));
  const again = batches.flatMap((b) => op2.process(b).events);
  assert.deepEqual(again.map((e) => e.id), events.map((e) => e.id));
});

test('bad samples are counted rejections; the good samples around them are still scored', async () => {
  const op = new AnomalyOperator(anomalyConfig({ learned: false }));
  const good = traffic(2, 3)[2]!;
  const out = op.process([good[0]!, { metric: 'x', labels: {}, ts: T0, value: NaN }, null as unknown as DerivedSample, good[1]!, { ...good[1]!, ts: good[1]!.ts - 1 }]);
  assert.equal(out.scores.length, 2);
  const text = await registry.getSingleMetricAsString('noctua_anomaly_rejected_total');
  assert.match(text, /reason="non_finite_value"\} 1/);
  assert.match(text, /reason="malformed"\} 1/);
  assert.match(text, /reason="out_of_order"\} 1/);
});

test('operator checkpoint: a restarted operator scores exactly as an uninterrupted one', () => {
  const batches = traffic(4, 900, 800, 3);
  const full = new AnomalyOperator(anomalyConfig({ learned: false }));
  const want = batches.flatMap((b) => full.process(b).scores.map((s) => s.score));
  const a = new AnomalyOperator(anomalyConfig({ learned: false }));
  const got = batches.slice(0, 500).flatMap((b) => a.process(b).scores.map((s) => s.score));
  const b = new AnomalyOperator(anomalyConfig({ learned: false }));
  b.restore(JSON.parse(JSON.stringify(a.checkpoint())));
  got.push(...batches.slice(500).flatMap((x) => b.process(x).scores.map((s) => s.score)));
  assert.deepEqual(got, want);
});

test('memory stays bounded: maxSeries caps tracked series', () => {
  const op = new AnomalyOperator(anomalyConfig({ learned: false, maxSeries: 100 }));
  for (let i = 0; i < 1000; i++) op.process([{ metric: 'm', labels: { device: `d${i}` }, ts: T0, value: i }]);
  assert.equal(op.seriesCount, 100);
});

test('learned layer: one model per metric family, trained in the background, versioned and persisted; a restart reloads it', async () => {
  assert.ok(['wasm', 'tensorflow'].includes(await initBackend()));
  const dir = tempDir('anomaly-models');
  try {
    const op = new AnomalyOperator(anomalyConfig({ modelDir: dir.path, seed: 7, mode: 'likelihood' }));
    const without = new AnomalyOperator(anomalyConfig({ learned: false, mode: 'likelihood' }));
    await op.init();
    const batches = traffic(3, 900, -1, 5);
    for (const b of batches) {
      op.process(b);
      without.process(b);
    }
    await op.settle();
    assert.ok(op.modelVersion('if_in_bps') >= 1, 'a trained version');
    assert.deepEqual(readdirSync(dir.path), ['if_in_bps.model.json']);
    const next = traffic(3, 901, -1, 5)[900]!.map((s) => ({ ...s, ts: s.ts + STEP }));
    const later = op.process(next);
    assert.ok(later.scores.every((s) => s.modelVersion >= 1), 'scored with the learned model');
    const plain = without.process(next);
    assert.ok(later.scores.some((s, i) => s.score !== plain.scores[i]!.score), 'the learned model moves the scores');
    // restart: a new operator (same dir) starts from the saved version, not from zero
    const reloaded = new FamilyModel({ family: 'if_in_bps', seed: 7 });
    assert.equal(loadModel(dir.path, reloaded), true);
    assert.equal(reloaded.version, op.modelVersion('if_in_bps'));
    const op2 = new AnomalyOperator(anomalyConfig({ modelDir: dir.path, seed: 7, mode: 'likelihood' }));
    await op2.init();
    op2.restore(op.checkpoint());
    const out = op2.process(traffic(3, 902, -1, 5)[901]!.map((s) => ({ ...s, ts: s.ts + 2 * STEP })));
    assert.ok(out.scores.every((s) => s.modelVersion === reloaded.version));
    op.dispose();
    op2.dispose();
    without.dispose();
    reloaded.dispose();
  } finally {
    dir.remove();
  }
});

test('the default ARTime mode does not take the learned model: learned: true loads no model and claims no version', async () => {
  const op = new AnomalyOperator(anomalyConfig({ learned: true }));
  assert.equal(op.params.mode, 'artime');
  assert.equal(op.learnedOn, false);
  await op.init();
  assert.equal(op.backendName, undefined, 'tfjs not loaded');
  const out = traffic(2, 50, -1, 2).flatMap((b) => op.process(b).scores);
  assert.ok(out.every((s) => s.modelVersion === 0));
  op.dispose();
});

test('a new all-time extreme beyond the whole range raises an event at its first point whatever the score; extremeLevel 0 turns that off', () => {
  // x2.5 of a series that stayed within ±30% of its mean: beyond the range by far more than the range.
  const batches = traffic(2, 1500, 1400).map((b) => b.map((s) => (s.labels.device === 'r0' && s.ts >= T0 + 1400 * STEP ? { ...s, value: (s.value / 6) * 2.5 } : s)));
  const on = new AnomalyOperator(anomalyConfig({ learned: false, eventLevel: 1, eventsAfter: '0s' }));
  const events = batches.flatMap((b) => on.process(b).events);
  assert.ok(events.length >= 1, 'an event');
  assert.equal(events[0]!.ts, T0 + 1400 * STEP, 'at the first point beyond the range');
  assert.match(events[0]!.message, /new high: past the highest before \(\S+\) by (\d+% of|\d+x) the range/);
  assert.ok((events[0]!.fields.reasons as string[]).includes('extreme'), String(events[0]!.fields.reasons));
  assert.ok(events.every((e) => e.device === 'r0'));
  const off = new AnomalyOperator(anomalyConfig({ learned: false, eventLevel: 1, extremeLevel: 0, eventsAfter: '0s' }));
  const none = batches.flatMap((b) => off.process(b).events).filter((e) => (e.fields as { score: number }).score < 1);
  assert.deepEqual(none, []);
});

test('a new all-time low far below the expected value (a link down in the busy hour) raises an event at its first point; not at an hour never seen; a burst as far above does not', () => {
  // A diurnal series whose night-time low is near 0: 0 leaves its range by ~25% of it (under
  // extremeLevel) but its expected value by far more than extremeDeviation robust sigmas.
  const r = rng(7);
  const DAY = 1440;
  const at = 3 * DAY + 1300; // near the daily peak, on the fourth day: that hour has been seen three times
  const series = (shape: (v: number, i: number) => number, n = at + 200): DerivedSample[][] =>
    Array.from({ length: n }, (_, i) => {
      const v = 1e6 * (0.6 + 0.4 * Math.sin((2 * Math.PI * i) / DAY)) * (1 + 0.02 * (r() - 0.5));
      return [{ metric: 'if_in_bps', labels: { device: 'r0', ifName: 'eth0' }, ts: T0 + i * STEP, value: shape(v, i) }];
    });
  const down = series((v, i) => (i >= at && i < at + 30 ? 0 : v));
  const op = () => new AnomalyOperator(anomalyConfig({ learned: false, eventLevel: 1.0, eventsAfter: '0s' }));
  const notScore = (evs: NetEvent[]) => evs.filter((e) => (e.fields as { score: number }).score < 1);
  const opDown = op();
  const events = down.flatMap((b) => opDown.process(b).events);
  assert.ok(events.length >= 1, 'an event');
  assert.equal(events[0]!.ts, T0 + at * STEP, 'at the first point of the outage');
  assert.match(events[0]!.message, /new low: under the lowest before \(\S+\) by \d+% of the range/);
  assert.ok((events[0]!.fields.reasons as string[]).includes('low'), String(events[0]!.fields.reasons));
  const off = new AnomalyOperator(anomalyConfig({ learned: false, eventLevel: 1.0, extremeDeviation: 0, silenceEvents: false, eventsAfter: '0s' }));
  assert.deepEqual(notScore(down.flatMap((b) => off.process(b).events)), [], 'extremeDeviation 0 turns it off');
  // the silence watch sees the same outage from its second point on (0, the new floor, held where it never is)
  const silent = new AnomalyOperator(anomalyConfig({ learned: false, eventLevel: 1.0, extremeDeviation: 0, eventsAfter: '0s' }));
  const bySilence = notScore(down.flatMap((b) => silent.process(b).events));
  assert.equal(bySilence.length, 1);
  assert.match(bySilence[0]!.message, /silent: at its floor \(0\)/);
  assert.ok(bySilence[0]!.ts > T0 + at * STEP && bySilence[0]!.ts <= T0 + (at + 20) * STEP, `within 20 min (minute ${(bySilence[0]!.ts - T0) / STEP - at})`);
  // the same drop on the first day: the baseline has never seen that hour, its expectation is only the
  // recent level (the first weekend's lower traffic is not an outage): no event by this rule
  const early = 1300;
  const first = series((v, i) => (i >= early && i < early + 30 ? 0 : v), early + 200);
  const firstOp = op();
  assert.deepEqual(notScore(first.flatMap((b) => firstOp.process(b).events)), [], 'an hour never seen is not judged');
  // the mirror image, a burst to the daily high plus the same distance, is no event by this rule
  const up = series((v, i) => (i >= at && i < at + 30 ? 1.25e6 * (1 + 0.02 * (r() - 0.5)) : v));
  const upOp = op();
  assert.deepEqual(notScore(up.flatMap((b) => upOp.process(b).events)), []);
});

test('eventsAfter: a series raises no event before it has that much history (counted as held), then does; the history survives a checkpoint', () => {
  // 1-min points; the incident starts at 1400 min (23 h 20 min, before a day of history) and again at 1900 min
  const batches = traffic(2, 2100, 1400).map((b, i) => b.map((s) => (s.labels.device === 'r0' && i >= 1420 && i < 1900 ? { ...s, value: s.value / 6 } : s)));
  const held = () => registry.getSingleMetric('noctua_anomaly_events_held_total') as unknown as { get(): Promise<{ values: { value: number }[] }> };
  const day = new AnomalyOperator(anomalyConfig({ learned: false }));
  const now = new AnomalyOperator(anomalyConfig({ learned: false, eventsAfter: '0s' }));
  const at = (evs: { ts: number }[]) => evs.map((e) => (e.ts - T0) / STEP);
  const evNow = batches.flatMap((b) => now.process(b).events);
  assert.ok(at(evNow).some((m) => m >= 1400 && m < 1420), 'with 0s, the first incident is an event');
  // the same stream, checkpointed and restored halfway through the first day
  let evDay: { ts: number }[] = [];
  let op = day;
  batches.forEach((b, i) => {
    if (i === 700) {
      const next = new AnomalyOperator(anomalyConfig({ learned: false }));
      next.restore(JSON.parse(JSON.stringify(op.checkpoint())));
      op = next;
    }
    evDay = evDay.concat(op.process(b).events);
  });
  assert.deepEqual(at(evDay).filter((m) => m < 1440), [], 'nothing raised in the first day');
  assert.ok(at(evDay).some((m) => m >= 1900), 'the second incident, after a day, is raised');
  return held().get().then((h) => assert.ok(h.values.reduce((n, v) => n + v.value, 0) > 0, 'the held ones are counted'));
});

test('changeEvents: a night-time level three times its usual raises one event naming the level change, once it has lasted changeLasts; a 30-min burst does not; false turns it off', () => {
  // 5-min polls, business-hours traffic for three weeks; on day 22 (a Tuesday) 02:00-04:00 at 3x: inside the day's range
  const step = 300_000;
  const from = 22 * 288 + 24;
  const series = (points: number) => {
    const r = rng(11);
    return Array.from({ length: 23 * 288 }, (_, i): DerivedSample[] => {
      const d = new Date(T0 + i * step);
      const h = d.getUTCHours() + d.getUTCMinutes() / 60;
      const busy = d.getUTCDay() !== 0 && d.getUTCDay() !== 6 && h >= 8 && h < 18.5;
      const v = 2e8 * (busy ? 1 : 0.15) * (1 + 0.14 * (r() - 0.5)) * (i >= from && i < from + points ? 3 : 1);
      return [{ metric: 'if_in_bps', labels: { device: 'r0', ifName: 'eth0' }, ts: T0 + i * step, value: v }];
    });
  };
  const shift = series(24);
  const burst = series(6);
  const events = (batches: DerivedSample[][], cfg: Record<string, unknown> = {}) => {
    const op = new AnomalyOperator(anomalyConfig({ learned: false, ...cfg }));
    return batches.flatMap((b) => op.process(b).events).filter((e) => (e.fields.reasons as string[]).includes('change'));
  };
  const on = events(shift);
  assert.equal(on.length, 1, on.map((e) => e.message).join('\n'));
  assert.ok(on[0]!.ts >= T0 + (from + 12) * step && on[0]!.ts < T0 + (from + 24) * step, `in the shift's second hour: point ${(on[0]!.ts - T0) / step - from}`);
  assert.match(on[0]!.message, /lasting level change: above the usual .* for 0[23]:00 weekday for \d+ min/);
  assert.equal(on[0]!.severity, 'warning');
  const now = events(shift, { changeLasts: '0s' });
  assert.equal(now.length, 1);
  assert.ok(now[0]!.ts >= T0 + from * step && now[0]!.ts < T0 + (from + 12) * step, 'at once: within the hour of the shift');
  assert.deepEqual(events(burst), [], 'a burst that dies down within the hour');
  assert.equal(events(burst, { changeLasts: '0s' }).length, 1, 'which crossed the threshold');
  assert.deepEqual(events(shift, { changeEvents: false }), []);
  assert.throws(() => new AnomalyOperator(anomalyConfig({ learned: false, changeLasts: 'soon' })), /changeLasts/);
});

test('alertHold: anomaly_active turns 1 at a series\' first event and 0 the hold after its last one (at its next point, or when the others pass it if it went quiet), across a checkpoint; 0s turns it off', () => {
  const mk = (hold: string) => new AnomalyOperator(anomalyConfig({ learned: false, eventsAfter: '0s', alertHold: hold }));
  // an incident of 6x from point 1400 on r0 (1-min steps): events at its start, then quiet as it lasts
  const batches = traffic(2, 1500, 1400).map((b, i) => (i >= 1440 ? b.map((s) => (s.labels.device === 'r0' ? { ...s, value: s.value / 6 } : s)) : b));
  const run = (op: AnomalyOperator, from: number, to: number, input = batches) => {
    const out: Array<[number, string, 0 | 1]> = [];
    const why: Array<string | undefined> = [];
    const evts: number[] = [];
    const reasons: string[] = [];
    for (let i = from; i < to; i++) {
      const o = op.process(input[i]!);
      for (const c of o.active) {
        out.push([(c.ts - T0) / STEP, c.labels.device!, c.value]);
        why.push(c.reason);
      }
      for (const e of o.events) if (e.device === 'r0') {
        evts.push((e.ts - T0) / STEP);
        reasons.push((e.fields.reasons as string[]).join('+'));
      }
    }
    return { out, why, evts, reasons };
  };
  const whole = run(mk('15m'), 0, 1500);
  assert.ok(whole.evts.length >= 1, 'the incident raised events');
  assert.deepEqual(whole.out[0], [whole.evts[0], 'r0', 1], 'on at the first event');
  // each on and its off carry the reasons of the event that turned it on (a label of the series)
  let reason: string | undefined;
  whole.out.forEach(([at, , v], k) => {
    if (v === 1) reason = whole.reasons[whole.evts.indexOf(at)];
    assert.equal(whole.why[k], reason, `${v === 1 ? 'on' : 'off'} at ${at}: the reasons of the event that turned it on`);
  });
  assert.match(whole.why[0]!, /^(score|extreme|low|change|stuck|silence)(\+(score|extreme|low|change|stuck|silence))*$/);
  assert.ok(whole.out.every(([, d]) => d === 'r0'), 'quiet series never turn on');
  // off 15 points after the last event of a run of events (the next event, if any, turns it on again)
  const offs = whole.out.filter(([, , v]) => v === 0).map(([i]) => i);
  assert.ok(offs.length >= 1, 'and off again');
  for (const off of offs) {
    const before = whole.evts.filter((i) => i < off).at(-1)!;
    assert.equal(off - before, 15, `off 15 min after the event at ${before}`);
  }
  // a checkpoint taken while on: the restored operator turns it off at the same point
  const onAt = whole.out[0]![0];
  const a = mk('15m');
  const first = run(a, 0, onAt + 2);
  const b = mk('15m');
  b.restore(JSON.parse(JSON.stringify(a.checkpoint())));
  const rest = run(b, onAt + 2, 1500);
  assert.deepEqual([...first.out, ...rest.out], whole.out);
  assert.deepEqual([...first.why, ...rest.why], whole.why, 'the reason survives the checkpoint');
  // a checkpoint from before reasons were kept: the off goes out without one, as its on did
  const older = JSON.parse(JSON.stringify(a.checkpoint()));
  for (const x of Object.values(older.active ?? {})) delete (x as { reason?: string }).reason;
  const c = mk('15m');
  c.restore(older);
  assert.deepEqual(run(c, onAt + 2, 1500).why.slice(0, 1), [undefined]);
  // a series that stops reporting while on turns off when the others' points pass its hold
  const quiet = batches.map((b, i) => (i > onAt ? b.filter((s) => s.labels.device !== 'r0') : b));
  assert.deepEqual(run(mk('15m'), 0, 1500, quiet).out, [[onAt, 'r0', 1], [onAt + 15, 'r0', 0]]);
  // off: no anomaly_active at all
  assert.deepEqual(run(mk('0s'), 0, 1500).out, []);
});

test('flatEvents: a gauge stuck on its last reading raises one event saying so; false turns it off', () => {
  // a CPU gauge in whole percent polled every 5 min for three days (past the 750-point warm-up), then
  // frozen for 5 h (an agent answering from a cache)
  const step = 300_000;
  const from = 3 * 288;
  const r = rng(12);
  let last = 0;
  const batches: DerivedSample[][] = Array.from({ length: from + 60 }, (_, i) => {
    const busy = 30 + 15 * Math.sin((2 * Math.PI * i) / 288);
    if (i < from) last = Math.round(busy + 8 * (r() - 0.5));
    return [{ metric: 'hrProcessorLoad', labels: { device: 'r0' }, ts: T0 + i * step, value: last }];
  });
  const events = (flatEvents: boolean) => {
    const op = new AnomalyOperator(anomalyConfig({ learned: false, flatEvents, eventsAfter: '12h' }));
    return batches.flatMap((b) => op.process(b).events);
  };
  const on = events(true);
  assert.equal(on.length, 1, on.map((e) => e.message).join('\n'));
  assert.ok(on[0]!.ts >= T0 + from * step && on[0]!.ts < T0 + (from + 12) * step, `within the hour of the freeze (point ${(on[0]!.ts - T0) / step - from})`);
  assert.match(on[0]!.message, /stuck: unchanged at \d+ for \d+ min/);
  assert.deepEqual(on[0]!.fields.reasons, ['stuck']);
  assert.equal(on[0]!.severity, 'warning');
  assert.deepEqual(events(false), []);
});

test('silenceEvents: a bursty count that falls to 0 in its busy hour raises an event only the silence watch gives; false turns it off', () => {
  // requests per 5 min, heavy-tailed (the bursty kind of bench:anomaly: no deviation rule sees a 0 in
  // its wide scale), three weeks, then an hour at 0 from 13:00 on day 22
  const step = 300_000;
  const r = rng(21);
  const poisson = (l: number) => {
    if (l > 50) return Math.max(0, Math.round(l + Math.sqrt(l) * (r() + r() + r() - 1.5) * 2));
    let k = 0;
    for (let p = Math.exp(-l), q = r(); q > p; q *= r()) k++;
    return k;
  };
  const from = 22 * 288 + 13 * 12;
  const batches: DerivedSample[][] = Array.from({ length: from + 24 }, (_, i) => {
    const h = ((i % 288) / 12 + 18) % 24; // diurnal, peaking at 12:00
    const level = 0.35 + 0.65 * Math.max(0, Math.sin((h / 24) * 2 * Math.PI));
    const v = i >= from && i < from + 12 ? 0 : poisson((20 * level) / Math.max(0.05, r()) ** 0.5);
    return [{ metric: 'http_requests', labels: { device: 'web0' }, ts: T0 + i * step, value: v }];
  });
  const events = (silenceEvents: boolean) => {
    const op = new AnomalyOperator(anomalyConfig({ learned: false, silenceEvents }));
    return batches.flatMap((b) => op.process(b).events).filter((e) => e.ts >= T0 + from * step);
  };
  const on = events(true);
  assert.equal(on.length, 1, on.map((e) => e.message).join('\n'));
  assert.ok(on[0]!.ts < T0 + (from + 4) * step, `within 20 min (point ${(on[0]!.ts - T0) / step - from})`);
  assert.match(on[0]!.message, /silent: at its floor \(0\) for \d+ min/);
  assert.deepEqual(on[0]!.fields.reasons, ['silence'], 'fields.reasons names the rule');
  assert.equal(on[0]!.fields.score, DEFAULT_PARAMS.silenceLevel, 'the event carries the score the stored anomaly_score shows');
  assert.equal(on[0]!.severity, 'warning');
  assert.deepEqual(events(false), [], 'no other rule sees it');
});

test('countRates: error rates of a quiet link over 60 days raise no events; judged as plain rates (countRates []), their counting noise raised several', () => {
  assert.ok(anomalyConfig({}).countRates.includes('if_in_errors_ps'), 'the rate processor\'s error rates are count rates by default');
  assert.ok(!anomalyConfig({}).countRates.includes('if_in_bps') && !anomalyConfig({}).countRates.includes('if_in_pps'), 'traffic stays linear');
  const step = 300_000;
  const r = rng(100);
  // errors per 5-min poll (Poisson around 2 x a daily rhythm), as the rate processor hands them on: per second
  const series = Array.from({ length: 8 }, () =>
    Float64Array.from({ length: 288 * 60 }, (_, i) => {
      const h = ((i * step) / 3_600_000) % 24;
      const mean = 2 * (0.35 + 0.65 * Math.max(0, Math.sin(((h - 6) / 24) * 2 * Math.PI)));
      return poisson(mean, r) / (step / 1000);
    }),
  );
  const events = (countRates?: string[]) => {
    let n = 0;
    operatorEvents(anomalyConfig({ learned: false, ...(countRates ? { countRates } : {}) }), series, 'error rates', () => n++);
    return n;
  };
  const asCounts = events();
  const asRates = events([]);
  assert.ok(asCounts <= 2, `as counts: ${asCounts} events in 480 series-days`);
  assert.ok(asRates >= asCounts + 6, `as plain rates: ${asRates} (as counts: ${asCounts})`);
});

test('countKnee: bursty counts (a few per poll on weekend nights, zeros among them) raise few events over 60 days; with the knee at one event their quiet-hour noise raised many', () => {
  // discards per 5-min poll: a heavy tail around 20 x a weekly rhythm (the bench's bursty counts)
  const series = healthySeries(KINDS.bursty!, 24, 1000);
  const events = (countKnee: number) => {
    let n = 0;
    operatorEvents(anomalyConfig({ learned: false }), series, 'bursty', () => n++, { ...DEFAULT_PARAMS, artime: { ...DEFAULT_PARAMS.artime, countKnee } });
    return n;
  };
  const atKnee = events(DEFAULT_PARAMS.artime.countKnee);
  const atOne = events(1);
  assert.ok(atKnee <= 6, `knee ${DEFAULT_PARAMS.artime.countKnee}: ${atKnee} events in 1,440 series-days`);
  assert.ok(atOne >= atKnee + 6, `knee 1: ${atOne} (knee ${DEFAULT_PARAMS.artime.countKnee}: ${atKnee})`);
});
