/**
 * How often the anomaly detector raises an event on series that hold no anomaly: what a NOC pays in
 * false events per series per day. Synthetic healthy series at 5-minute steps, several kinds a
 * network has: white noise, diurnal traffic (a weekday/weekend cycle with multiplicative noise),
 * diurnal low counts (Poisson: errors, log lines), bursty counts (heavy-tailed but stationary),
 * office traffic (business hours: abrupt steps twice a day), error rates: the low counts as the
 * rate processor hands them on (per second, as `if_in_errors_ps`, one poll per step), and log lines:
 * a device's syslog lines per poll, over-dispersed, with the flurries every device has a few times a
 * day (a flapping port, a cron job, a login storm: 1.5-5x, dying down within minutes to an hour).
 *
 * Ours: the operator as the runner runs it (default config: events at score >= eventLevel, or a new
 * all-time extreme beyond the series' whole range). Reference, same series, same run: the ARTime
 * layer as published (range from the whole series, which NAB hands it; no new-extreme opinion, no
 * incident or settling rules), counted at the same event level.
 */
import { AnomalyOperator, anomalyConfig, type AnomalyConfig, type DerivedSample } from '../processors/anomaly/operator.js';
import { SeriesDetector, type DetectorParams } from '../processors/anomaly/detector.js';
import { rng } from '../processors/anomaly/learned.js';
import { gauss, gamma, poisson, between, logBetween } from './random.js';
import { publishedArtimeParams } from './nab/detect.js';

export const STEP = 300_000;
const DAYS = 60;
const POINTS = (DAYS * 86_400_000) / STEP;
const PER_KIND = 16;
export const T0 = Date.UTC(2024, 0, 1);

export type Gen = (i: number, r: () => number) => number;

/** Hour of day and weekend flag of point i. */
function clock(i: number): { h: number; weekend: boolean } {
  const d = new Date(T0 + i * STEP);
  return { h: d.getUTCHours() + d.getUTCMinutes() / 60, weekend: d.getUTCDay() === 0 || d.getUTCDay() === 6 };
}

const diurnal = (i: number): number => {
  const { h, weekend } = clock(i);
  return (weekend ? 0.6 : 1) * (0.35 + 0.65 * Math.max(0, Math.sin(((h - 6) / 24) * 2 * Math.PI)));
};

/** Business hours: weekdays 08:00-18:30 at full level, the rest at 15%, 10-minute ramps between. */
const office = (i: number): number => {
  const { h, weekend } = clock(i);
  if (weekend) return 0.15;
  const ramp = (x: number) => Math.min(1, Math.max(0, x));
  return 0.15 + 0.85 * Math.min(ramp((h - 8) * 6), ramp((18.5 - h) * 6));
};

/** A flurry in progress per series (keyed by the series' own random source: healthySeries draws each series' points in order from one). */
const flurries = new WeakMap<() => number, { amp: number; tau: number; age: number }>();

/** Syslog lines per 5 minutes: 20 at the daily peak, gamma-Poisson (over-dispersed), 2.5 ordinary flurries a day. */
const logLines: Gen = (i, r) => {
  let f = flurries.get(r);
  if (r() < 2.5 / 288) flurries.set(r, (f = { amp: logBetween(1.5, 5, r), tau: between(2, 12, r), age: 0 }));
  let mean = 20 * diurnal(i);
  if (f) {
    mean *= 1 + (f.amp - 1) * Math.exp(-f.age / f.tau);
    if (++f.age > 6 * f.tau) flurries.delete(r);
  }
  return poisson((gamma(5, r) * mean) / 5, r);
};

export const KINDS: Readonly<Record<string, Gen>> = {
  noise: (_i, r) => 50 + 10 * gauss(r),
  traffic: (i, r) => 4e8 * diurnal(i) * (1 + 0.08 * gauss(r)),
  'low counts': (i, r) => poisson(2 * diurnal(i), r),
  bursty: (i, r) => poisson(20 * diurnal(i) / Math.max(0.05, r()) ** 0.5, r),
  'office traffic': (i, r) => 2e8 * office(i) * (1 + 0.08 * gauss(r)),
  'error rates': (i, r) => poisson(2 * diurnal(i), r) / (STEP / 1000),
  'log lines': logLines,
};

/** The metric a kind reaches the operator as, where it matters (the operator's countRates): the kind's own name otherwise. */
export const METRIC_OF: Readonly<Record<string, string>> = { 'error rates': 'if_in_errors_ps' };

/** One event of the kind, in its units (an error rate's is one error per step). */
export const UNIT_OF: Readonly<Record<string, number>> = { 'error rates': 1000 / STEP };

export interface QuietFigures {
  /** Events per series per day, by kind: ours, and the reference detector's. */
  readonly ours: Record<string, number>;
  /** Ours by kind and by the rule that raised them (an event raised by two rules counts under both). */
  readonly byReason: Record<string, Record<string, number>>;
  readonly reference: Record<string, number>;
  readonly days: number;
  readonly seriesPerKind: number;
}

/** The published ARTime on `xs` as NAB runs it (the whole range given, unbounded memory, no extra rules): the indices it scores at `level` or above. */
export function referenceHits(xs: Float64Array, level: number): number[] {
  const d = new SeriesDetector(publishedArtimeParams(xs));
  const hits: number[] = [];
  for (let i = 0; i < xs.length; i++) if (d.step(T0 + i * STEP, xs[i]!).score >= level) hits.push(i);
  return hits;
}

/** Our operator over `series` as the runner feeds it (one poll round of all of them per step; detector `params` when not the defaults): each event as (series index, point index, the rules that raised it). */
export function operatorEvents(cfg: AnomalyConfig, series: readonly Float64Array[], kind: string, onEvent: (s: number, i: number, reasons: readonly string[]) => void, params?: DetectorParams): void {
  const op = new AnomalyOperator(cfg, params);
  const points = series[0]?.length ?? 0;
  for (let i = 0; i < points; i++) {
    const b: DerivedSample[] = series.map((xs, s) => ({ metric: METRIC_OF[kind] ?? kind, labels: { device: `d${s}`, kind }, ts: T0 + i * STEP, value: xs[i]! }));
    for (const e of op.process(b).events) onEvent(Number(e.device.slice(1)), i, (e.fields.reasons as string[] | undefined) ?? []);
  }
  op.dispose();
}

/** Series of one kind: `n` seeded generators' worth of points. */
export function healthySeries(gen: Gen, n: number, firstSeed: number, points = POINTS): Float64Array[] {
  const out: Float64Array[] = [];
  for (let s = 0; s < n; s++) {
    const r = rng(firstSeed + s);
    const xs = new Float64Array(points);
    for (let i = 0; i < points; i++) xs[i] = gen(i, r);
    out.push(xs);
  }
  return out;
}

export function quietOnHealthySeries(operator: Record<string, unknown> = {}): QuietFigures {
  const cfg = anomalyConfig({ seed: 1, learned: false, ...operator });
  const ours: Record<string, number> = {};
  const reference: Record<string, number> = {};
  const byReason: Record<string, Record<string, number>> = {};
  let seed = 1;
  for (const [kind, gen] of Object.entries(KINDS)) {
    const series = healthySeries(gen, PER_KIND, seed);
    seed += PER_KIND;
    let events = 0;
    const why: Record<string, number> = {};
    operatorEvents(cfg, series, kind, (_s, _i, reasons) => {
      events++;
      for (const r of reasons) why[r] = (why[r] ?? 0) + 1;
    });
    ours[kind] = events / PER_KIND / DAYS;
    byReason[kind] = Object.fromEntries(Object.entries(why).map(([r, n]) => [r, n / PER_KIND / DAYS]));
    let refEvents = 0;
    for (const xs of series) refEvents += referenceHits(xs, cfg.eventLevel).length;
    reference[kind] = refEvents / PER_KIND / DAYS;
  }
  return { ours, byReason, reference, days: DAYS, seriesPerKind: PER_KIND };
}
