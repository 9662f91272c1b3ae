/**
 * Cost of the anomaly detector: points/s on one core (the detector alone; the operator in its default
 * ARTime mode, and in the 'likelihood' mode with the learned layer, batched as the runner would),
 * bytes of checkpointed state per series, and the training time of one family model. Target: >= 100,000 points/s per core, <= 4 KB per series.
 * Also what a NOC pays in false events: events per 1,000 series per day on healthy synthetic series
 * (benchmarks/anomaly-quiet.ts), and what it catches: incidents placed in such series, caught and
 * how soon (benchmarks/anomaly-incidents.ts), each beside the published ARTime's on the same series.
 * The last line is one JSON object {"bench":"anomaly",...}.
 */
import { SeriesDetector } from '../processors/anomaly/detector.js';
import { AnomalyOperator, anomalyConfig, type DerivedSample } from '../processors/anomaly/operator.js';
import { FamilyModel, WINDOW, initBackend, rng } from '../processors/anomaly/learned.js';
import { quietOnHealthySeries } from './anomaly-quiet.js';
import { incidentsCaught, describeIncidents } from './anomaly-incidents.js';

const T0 = Date.UTC(2024, 0, 1);
const r = rng(1);
const N = 400_000;
const vals = new Float64Array(N);
for (let i = 0; i < N; i++) vals[i] = 1e6 * (1 + 0.3 * Math.sin((2 * Math.PI * i) / 288)) * (1 + 0.05 * (r() - 0.5));

// 1. the per-series detector alone (default layers, no learned model)
const d = new SeriesDetector({ ...new SeriesDetector().params, learnedWeight: 0 });
let t = performance.now();
let sink = 0;
for (let i = 0; i < N; i++) sink += d.step(T0 + i * 300_000, vals[i]!).score;
const detectorPps = N / ((performance.now() - t) / 1000);
const stateBytes = Buffer.byteLength(JSON.stringify(d));

// 2. the full operator: 1000 series, batches of 1000 samples (one poll round); default mode, and the
// 'likelihood' mode with the learned layer (the mode that takes it)
const backend = await initBackend();
const SERIES = 1000;
const ROUNDS = 120;
const batches: DerivedSample[][] = [];
for (let k = 0; k < ROUNDS; k++) {
  const b: DerivedSample[] = [];
  for (let s = 0; s < SERIES; s++) b.push({ metric: 'if_in_bps', labels: { device: `d${s % 50}`, ifIndex: String(s) }, ts: T0 + k * 60_000, value: vals[(k * 7 + s) % N]! });
  batches.push(b);
}
async function operatorRun(op: AnomalyOperator): Promise<number> {
  await op.init();
  const t0 = performance.now();
  for (const b of batches) op.process(b);
  const ms = performance.now() - t0;
  await op.settle();
  return (SERIES * ROUNDS) / (ms / 1000);
}
const learnedOp = new AnomalyOperator(anomalyConfig({ seed: 1, mode: 'likelihood', learned: true }));
const learnedPps = await operatorRun(learnedOp);
learnedOp.dispose();
const op = new AnomalyOperator(anomalyConfig({ seed: 1 }));
const operatorPps = await operatorRun(op);
const cp = op.checkpoint();
const perSeriesBytes = Buffer.byteLength(JSON.stringify(cp)) / op.seriesCount;

// 2b. checkpoint size in steady state: the series above are still in their warm-up (120 points of
// 750), when the ARTime memory is not built yet; these run past it
const steady = new AnomalyOperator(anomalyConfig({ seed: 1, learned: false }));
const STEADY_SERIES = 200;
for (let k = 0; k < 1500; k++) {
  const b: DerivedSample[] = [];
  for (let s = 0; s < STEADY_SERIES; s++) b.push({ metric: 'if_in_bps', labels: { device: `d${s % 50}`, ifIndex: String(s) }, ts: T0 + k * 60_000, value: vals[(k * 7 + s * 131) % N]! * (1 + (s % 5) * 0.1) });
  steady.process(b);
}
const steadyBytes = Buffer.byteLength(JSON.stringify(steady.checkpoint())) / steady.seriesCount;
steady.dispose();

// 3. training time of one family model on a full reservoir
const m = new FamilyModel({ family: 'bench', seed: 1, retrainEvery: 1e9 });
for (let i = WINDOW; i < 4096 + WINDOW; i++) m.observe(Array.from(vals.subarray(i - WINDOW, i), (v) => v / 1e6 - 1), vals[i]! / 1e6 - 1);
await m.train();
const trainMs = m.lastTrainMs;
m.dispose();
op.dispose();

console.log(`detector (default: ARTime layer + baseline): ${Math.round(detectorPps).toLocaleString()} points/s on one core (${N} points, checksum ${sink.toFixed(1)})`);
console.log(`operator, default mode (ARTime), ${SERIES} series x ${ROUNDS} rounds: ${Math.round(operatorPps).toLocaleString()} points/s`);
console.log(`operator, 'likelihood' mode with the learned layer (${backend}): ${Math.round(learnedPps).toLocaleString()} points/s`);
console.log(`state per series: ${stateBytes} B detector JSON after ${N} points; operator checkpoint ${Math.round(perSeriesBytes)} B per series in warm-up (${ROUNDS} points), ${Math.round(steadyBytes)} B after 1500 points (target <= 4096)`);
console.log(`training one family model (4096 windows x ${WINDOW}, 4 epochs): ${trainMs.toFixed(0)} ms`);
const quiet = quietOnHealthySeries();
const per1000 = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number((v * 1000).toFixed(1))]));
const quietOurs = per1000(quiet.ours);
const quietRef = per1000(quiet.reference);
console.log(`false events per 1,000 healthy series per day (${quiet.seriesPerKind} series x ${quiet.days} days per kind, 5 min steps; published ARTime with the whole range given, same series): ${Object.keys(quietOurs).map((k) => `${k} ${quietOurs[k]} (ARTime ${quietRef[k]})`).join(', ')}`);
const quietWhy = Object.fromEntries(Object.entries(quiet.byReason).map(([k, v]) => [k, per1000(v)]));
console.log(`  by the rule that raised them: ${Object.entries(quietWhy).map(([k, v]) => `${k} ${Object.keys(v).length ? Object.entries(v).map(([r, n]) => `${r} ${n}`).join(' + ') : '-'}`).join(', ')}`);
const inc = incidentsCaught();
console.log('incidents caught (16 series per kind and incident, one incident each; event from its first point to 30 min after it; median delay), ours (published ARTime, whole range given):');
for (const l of describeIncidents(inc)) console.log(`  ${l}`);
const catches = (f: typeof inc.ours) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, { caught: v.all!.caught, placed: v.all!.placed, median_delay_min: v.all!.medianDelayMin }]));
console.log(JSON.stringify({ bench: 'anomaly', quiet_events_per_1000_series_day: quietOurs, quiet_reference_artime: quietRef, quiet_events_by_reason: quietWhy, incidents_caught: catches(inc.ours), incidents_reference_artime: catches(inc.reference), backend, detector_points_per_s: Math.round(detectorPps), operator_points_per_s: Math.round(operatorPps), operator_learned_points_per_s: Math.round(learnedPps), state_bytes_per_series: stateBytes, checkpoint_bytes_per_series: Math.round(perSeriesBytes), checkpoint_bytes_per_series_steady: Math.round(steadyBytes), training_ms_per_model: Math.round(trainMs), target_points_per_s: 100_000, target_state_bytes: 4096 }));
