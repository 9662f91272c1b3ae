import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { seriesKey, seriesId } from '../../core/series.js';
import { counter, gauge, M } from '../../core/metrics.js';
import { validate } from '../../core/config.js';
import { parseDuration } from '../window.js';
import type { Labels, NetEvent, Severity } from '../../core/types.js';
import { ERROR_RATES } from '../rate.js';
import { SeriesDetector, DEFAULT_PARAMS, usesLearned, type DetectorParams, type DetectorState, type Verdict } from './detector.js';
import { FamilyModel, WINDOW, initBackend, newWindowState, normalise, pushWindow, learnedSurprise, saveModel, loadModel, type WindowState } from './learned.js';

/**
 * The anomaly operator the processor runner drives: derived samples (rates, gauges) in, per-point
 * scores (for storage and charts) and anomaly events out. One SeriesDetector per series, one
 * learned model per metric family. Its state checkpoints like any processor state; models are
 * versioned files in a directory so a restart does not re-learn from zero.
 */

export const AnomalyConfig = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /** Scores at or above this become events. */
  eventLevel: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: 'anomaly score (0..1) at which an event is raised' }),
  /**
   * A point beyond everything its series has shown by at least this fraction of the series' whole
   * range (a link pinned at line rate after months at half of it) raises an event whatever its
   * score: the score ranks surprises for thresholds swept over a corpus, an operator also wants the
   * plainly unprecedented. 0 = off.
   */
  extremeLevel: Type.Number({ minimum: 0, default: 1, description: 'new all-time extreme, as a fraction of the series range, that raises an event (0 = off)' }),
  /**
   * A new all-time low (any distance below the range) that is also this many robust scale units
   * below the value expected at that time raises an event: a link that drops to 0 in the busy hour
   * leaves the range by little (its night-time low is near) but the expected value by a lot. Lows
   * only: heavy-tailed series (bursts, error storms) set new highs far above their level as a
   * matter of course. Measured (npm run bench:anomaly): at 5, outages of diurnal traffic caught
   * 6/16 -> 16/16 and of office traffic 0/16 -> 12/16, at their first point, for one added false
   * event in 4,800 healthy series-days (office traffic; none on the other kinds). Only at an hour
   * of the week the baseline has seen (three visits): elsewhere its expectation is only the recent
   * level, and the demo network's first Saturday (traffic x0.6 from midnight) raised 240 events on
   * 300 series, nearly all in its first minute (7 days at 1-min polls; 28 after). 0 = off.
   */
  extremeDeviation: Type.Number({ minimum: 0, default: 5, description: 'new all-time low this many robust sigmas below the expected value raises an event (0 = off)' }),
  /**
   * A change of level raises an event: the series has stayed away from what is usual for its hour
   * of the week (the baseline's CUSUM, in that hour's own robust scale) long enough, above or below
   * - a night-time level three times its usual, which stays inside the day's range and is no new
   * shape. Reported once per change. Measured (npm run bench:anomaly): no false events on healthy
   * series; level shifts of diurnal and office traffic caught 16/16 each (10/16 and 4/16 without).
   */
  changeEvents: Type.Boolean({ default: true, description: 'a lasting change of level against the usual for the hour of the week raises an event' }),
  /**
   * How long a change of level must last (the CUSUM above its threshold) before it raises an
   * event; the score takes it at once either way. A count's flurry reads as a change for its first
   * minutes and then dies down. Measured on the NAB bench's synthetic counts (64 series each; the
   * operator as the runner runs it): mention counts' false events 48.2 -> 20.5 per 1,000
   * series-days at '1h' (the published ARTime at the event level: 19.2), labelled windows with an
   * event 109 -> 98 of 157; requests 2.8 -> 3.2 and 76 -> 69 of 131; npm run bench:anomaly's 2-h
   * shifts caught as before, median delay 20 -> 45 min. '0s' = at once.
   */
  changeLasts: Type.Union([Type.String(), Type.Number({ minimum: 0 })], { default: '1h', description: "how long a change of level must last before it raises an event ('0s' = at once)" }),
  /**
   * A series stuck on one value for longer than it has ever held one (more than twice its longest
   * run, and 6 points; never at its floor) raises an event: a frozen sensor, agent or poller shows no
   * deviation, only no movement. Reported once per run.
   */
  flatEvents: Type.Boolean({ default: true, description: 'a series stuck on one value for more than twice its longest run before raises an event' }),
  silenceEvents: Type.Boolean({ default: true, description: 'a series resting at its floor at an hour of the week that rarely is, longer than any quiet spell before, raises an event' }),
  /**
   * History a series needs before its anomalies raise events; its scores are stored from the end
   * of the detector's warm-up (in points) either way. A seasonal series cannot be judged before it
   * has shown a day: on the demo network polled every 10 s, the first day raised 87 events away
   * from any incident (the morning ramp beyond the night's range, a new pattern per hour), the next
   * 9. Duration ('1d', '6h', '0s' = from the warm-up's end).
   */
  eventsAfter: Type.Union([Type.String(), Type.Number({ minimum: 0 })], { default: '1d', description: "history a series needs before its anomalies raise events ('1d'; '0s' = from the end of the warm-up)" }),
  /**
   * A series' anomaly events as a state alert rules can watch: `anomaly_active{of=...}` goes to 1 at
   * its first event and back to 0 this long after its last one - at its first point past that, or,
   * if it has gone quiet, once any series' points are past it (only the changes are emitted).
   * Scores are points - a new shape scores at one point, then 0 - so a rule on `anomaly_score` with
   * a `for:` never holds; this is what the shipped `AnomalyDetected` rule watches. '0s' = off.
   */
  alertHold: Type.Union([Type.String(), Type.Number({ minimum: 0 })], { default: '15m', description: "how long after a series' last anomaly event its anomaly_active stays 1 (for alert rules; '0s' = off)" }),
  severity: Type.Union(['warning', 'info', 'minor', 'major', 'critical'].map((s) => Type.Literal(s)), { default: 'warning', description: 'severity of anomaly events (warning unless raised on purpose)' }),
  /**
   * 'artime' (adaptive-resonance shapes and new extremes; NAB 73.83 standard, 67.33 low-FP) or
   * 'likelihood' (the seasonal baseline's residuals blended with the learned model, through the
   * anomaly likelihood; NAB 31.12 standard, 23.58 low-FP): the learned layer only counts in the latter.
   */
  mode: Type.Union([Type.Literal('artime'), Type.Literal('likelihood')], { default: 'artime', description: "detector: 'artime' (default, best measured) or 'likelihood' (statistics + learned model)" }),
  /**
   * Metrics that are a counter's rate (events per second): the detector judges their count per poll
   * (detector.ts, SeriesOptions.countRate), so a rarely-erring link is seen on the log scale for
   * counts as a count of errors would be. Fixed per series when it is first seen. By default the
   * error and discard rates: packets are counts too, but large ones, and on the log scale a busy
   * link's shape only loses (office traffic as a count rate: spikes caught 11 -> 6 of 16, false
   * events unchanged); bits are not counted one event at a time. Measured (npm run bench:anomaly,
   * 'error rates': low counts as the rate processor hands them on): 25 -> 3.1 false events per
   * 1,000 series-days, as the counts themselves, for shifts caught 7 -> 5 and spikes 14 -> 12 of
   * 16 (processors/README.md).
   */
  countRates: Type.Array(Type.String(), { default: [...ERROR_RATES], description: "metrics that are a counter's per-second rate: judged as counts per poll" }),
  learned: Type.Boolean({ default: true, description: "use the learned (tfjs) layer where the mode takes it ('likelihood')" }),
  /** Where family models are saved; none = not persisted. */
  modelDir: Type.Optional(Type.String()),
  seed: Type.Integer({ default: 42 }),
  maxSeries: Type.Integer({ minimum: 1, default: 200_000, description: 'series tracked at once; the least recently seen are dropped beyond it' }),
});
export type AnomalyConfig = Static<typeof AnomalyConfig>;

export function anomalyConfig(raw: unknown): AnomalyConfig {
  return validate(AnomalyConfig, raw, 'config.processors.anomaly');
}

/** What the runner hands in: a derived sample of one series. */
export interface DerivedSample {
  readonly metric: string;
  readonly labels: Labels;
  readonly ts: number;
  readonly value: number;
}

/** One scored point, for the anomaly-scores table and chart bands. */
export interface AnomalyScore {
  readonly series: string;
  readonly seriesId: string;
  readonly metric: string;
  readonly labels: Labels;
  readonly ts: number;
  readonly value: number;
  readonly score: number;
  readonly expected: number;
  readonly lower: number;
  readonly upper: number;
  readonly explanation: string;
  /** Learned model version that contributed (0 = statistics only). */
  readonly modelVersion: number;
}

/**
 * Why an anomaly event was raised (its `fields.reasons`, one or more): the score reached eventLevel;
 * a new all-time extreme beyond extremeLevel of the range; a new all-time low extremeDeviation robust
 * sigmas below the expected value; a change of level; a series stuck on one value; a strange silence.
 */
export type AnomalyReason = 'score' | 'extreme' | 'low' | 'change' | 'stuck' | 'silence';

/** A change of a series' anomaly_active (alertHold). */
export interface ActiveChange {
  readonly metric: string;
  readonly labels: Labels;
  readonly ts: number;
  readonly value: 0 | 1;
  /**
   * The reasons of the event that turned it on, joined by '+' (e.g. 'silence', 'score+extreme'),
   * carried by its on and its off alike: a label of the anomaly_active series, so the alert and the
   * ticket say what kind of trouble it is. Absent for one turned on before reasons were kept.
   */
  readonly reason?: string;
}

export interface OperatorOutput {
  readonly scores: AnomalyScore[];
  readonly events: NetEvent[];
  /** anomaly_active changes: 1 at an event with none in the hold before, 0 once the hold ran out. */
  readonly active: ActiveChange[];
}

interface Tracked {
  det: SeriesDetector;
  /** Event time of the series' first point (-Infinity: restored from before this was kept, long seen). */
  since: number;
  /** The learned model's input window (only while the learned layer runs). */
  win: WindowState | null;
  lastTs: number;
}

/** A series whose anomaly_active is 1: until when (its last event + alertHold), and what names it. */
interface Active {
  until: number;
  readonly metric: string;
  readonly labels: Labels;
  readonly reason?: string;
}

/** Its anomaly_active back to 0 at `ts`, under the labels (and reason) it went on with. */
function turnedOff(a: Active, ts: number): ActiveChange {
  return { metric: a.metric, labels: a.labels, ts, value: 0, ...(a.reason ? { reason: a.reason } : {}) };
}

export interface OperatorCheckpoint {
  v: 1;
  series: Record<string, { d: DetectorState; w?: WindowState; t: number; s?: number }>;
  /** Series whose anomaly_active is 1 (kept apart: a quiet or evicted series still has to turn off). */
  active?: Record<string, Active>;
}

const rejected = counter('noctua_anomaly_rejected_total', 'Samples the anomaly operator did not score, by reason', ['reason']);
const eventsRaised = counter('noctua_anomaly_events_total', 'Anomaly events raised', ['metric']);
const eventsHeld = counter('noctua_anomaly_events_held_total', 'Anomalies not raised as events: their series had less history than eventsAfter', ['metric']);
const seriesGauge = gauge('noctua_anomaly_series', 'Series tracked by the anomaly operator');
const evicted = counter('noctua_anomaly_series_evicted_total', 'Series dropped by the anomaly operator to stay under maxSeries');

// JSON has no infinities: a series not seen yet is the far future, one seen before `since` was kept is epoch 0.
const NOT_YET = Number.MAX_SAFE_INTEGER;
const sinceToJSON = (since: number): number => (since === Infinity ? NOT_YET : since === -Infinity ? 0 : since);
const sinceFromJSON = (s: unknown): number => (typeof s !== 'number' ? -Infinity : s >= NOT_YET ? Infinity : s);

export class AnomalyOperator {
  private readonly series = new Map<string, Tracked>();
  private readonly models = new Map<string, FamilyModel>();
  private readonly pending = new Set<Promise<void>>();
  private backend: string | undefined;

  readonly params: DetectorParams;
  private readonly eventsAfterMs: number;
  private readonly holdMs: number;
  private readonly countRates: ReadonlySet<string>;
  /** Series whose anomaly_active is 1 (they may stop reporting, or be evicted, before their hold runs out). */
  private readonly on = new Map<string, Active>();
  /** Newest event time seen: a quiet series' hold runs out against it. */
  private newest = -Infinity;

  constructor(readonly config: AnomalyConfig = anomalyConfig({}), params: DetectorParams = DEFAULT_PARAMS) {
    const lastMs = parseDuration(config.changeLasts, 'processors.anomaly.changeLasts');
    this.params = { ...params, mode: config.mode, baseline: { ...params.baseline, change: { ...params.baseline.change, lastMs } } };
    this.eventsAfterMs = parseDuration(config.eventsAfter, 'processors.anomaly.eventsAfter');
    this.holdMs = parseDuration(config.alertHold, 'processors.anomaly.alertHold');
    this.countRates = new Set(config.countRates);
  }

  /** Whether the learned layer runs: configured on and taken by the detector's mode (else tfjs is never loaded). */
  get learnedOn(): boolean {
    return this.config.learned && usesLearned(this.params);
  }

  /** Loads the tfjs backend; models are loaded per family on first use. */
  async init(): Promise<void> {
    if (this.learnedOn) this.backend = await initBackend();
  }

  get backendName(): string | undefined {
    return this.backend;
  }

  private family(metric: string): FamilyModel | undefined {
    if (!this.learnedOn || !this.backend) return undefined;
    let m = this.models.get(metric);
    if (!m) {
      m = new FamilyModel({ family: metric, seed: this.config.seed });
      if (this.config.modelDir) {
        try {
          loadModel(this.config.modelDir, m);
        } catch (err) {
          // A bad model file costs the learned layer until retrained, never the statistics.
          process.emitWarning((err as Error).message);
        }
      }
      this.models.set(metric, m);
    }
    return m;
  }

  modelVersion(metric: string): number {
    return this.models.get(metric)?.version ?? 0;
  }

  private tracked(key: string, metric: string): Tracked {
    let t = this.series.get(key);
    if (t) {
      // Map order doubles as recency: re-insert on use.
      this.series.delete(key);
      this.series.set(key, t);
      return t;
    }
    t = { det: new SeriesDetector(this.params, undefined, { countRate: this.countRates.has(metric) }), since: Infinity, win: this.learnedOn ? newWindowState() : null, lastTs: -Infinity };
    this.series.set(key, t);
    if (this.series.size > this.config.maxSeries) {
      const oldest = this.series.keys().next().value as string;
      this.series.delete(oldest);
      evicted.inc();
    }
    seriesGauge.set(this.series.size);
    return t;
  }

  /**
   * Scores a batch. Points of one series must arrive in event-time order; an older or repeated
   * timestamp is rejected and counted (the detector never learns a point twice). Never throws on
   * bad samples: the good ones around them are scored.
   */
  process(samples: readonly DerivedSample[]): OperatorOutput {
    const scores: AnomalyScore[] = [];
    const events: NetEvent[] = [];
    const active: ActiveChange[] = [];
    // 1. prepare learned-model inputs per family, so each family predicts in one batch
    type Prep = { s: DerivedSample; key: string; t: Tracked; x: number; slot: number; win?: number[]; model?: FamilyModel };
    const preps: Prep[] = [];
    const perFamily = new Map<FamilyModel, { wins: number[]; n: number }>();
    for (const s of samples) {
      if (!s || typeof s.metric !== 'string' || typeof s.ts !== 'number' || !Number.isFinite(s.ts)) {
        rejected.inc({ reason: 'malformed' });
        continue;
      }
      if (typeof s.value !== 'number' || !Number.isFinite(s.value)) {
        rejected.inc({ reason: 'non_finite_value' });
        continue;
      }
      const key = seriesKey(s.metric, s.labels ?? {});
      const t = this.tracked(key, s.metric);
      if (s.ts <= t.lastTs) {
        rejected.inc({ reason: 'out_of_order' });
        continue;
      }
      t.lastTs = s.ts;
      if (s.ts < t.since) t.since = s.ts;
      const model = this.family(s.metric);
      let slot = -1;
      let win: number[] | undefined;
      let x = 0;
      if (model) {
        // the learned model's input, kept only while the learned layer runs
        const w = (t.win ??= newWindowState());
        x = normalise(w, s.value);
        if (w.buf.length === WINDOW) {
          let f = perFamily.get(model);
          if (!f) perFamily.set(model, (f = { wins: [], n: 0 }));
          slot = f.n++;
          win = w.buf.slice();
          f.wins.push(...win);
        }
        pushWindow(w, s.value);
      }
      preps.push({ s, key, t, x, slot, ...(win ? { win } : {}), ...(model ? { model } : {}) });
    }
    const preds = new Map<FamilyModel, Float32Array>();
    for (const [m, f] of perFamily) {
      try {
        preds.set(m, m.predict(Float32Array.from(f.wins), f.n));
      } catch (err) {
        M.errors.inc({ component: 'anomaly', kind: 'model_predict' });
        process.emitWarning(`anomaly model ${m.opts.family}: prediction failed: ${(err as Error).message}`);
      }
    }
    // 2. score in order, learn, raise events
    for (const p of preps) {
      const pred = p.model && p.slot >= 0 ? preds.get(p.model)?.[p.slot] : undefined;
      const learned = pred === undefined ? undefined : learnedSurprise(pred, p.x);
      const v = p.t.det.step(p.s.ts, p.s.value, learned);
      if (p.model && p.win && p.model.observe(p.win, p.x)) this.trainInBackground(p.model);
      const id = seriesId(p.key);
      const modelVersion = learned === undefined ? 0 : p.model?.version ?? 0;
      const reasons = this.reasons(v);
      let raised = false;
      if (reasons.length > 0) {
        if (p.s.ts - p.t.since < this.eventsAfterMs) eventsHeld.inc({ metric: p.s.metric });
        else {
          events.push(this.event(p.key, p.s, v, reasons));
          eventsRaised.inc({ metric: p.s.metric });
          raised = true;
        }
      }
      this.activeChange(p.key, p.s, raised ? reasons : null, active);
      scores.push({ series: p.key, seriesId: id, metric: p.s.metric, labels: p.s.labels ?? {}, ts: p.s.ts, value: p.s.value, score: v.score, expected: v.expected, lower: v.lower, upper: v.upper, explanation: v.explanation, modelVersion });
      if (p.s.ts > this.newest) this.newest = p.s.ts;
    }
    // series that went quiet (or were evicted) while on: off once the others' points pass their hold,
    // at the newest event time (at the hold's end it could be behind the windows' watermark: late)
    for (const [key, a] of this.on) {
      if (a.until > this.newest) continue;
      this.on.delete(key);
      active.push(turnedOff(a, this.newest));
    }
    return { scores, events, active };
  }

  /** anomaly_active at this point, when it changes (alertHold): on at an event, off at the first point the hold has run out. */
  private activeChange(key: string, s: DerivedSample, raised: AnomalyReason[] | null, out: ActiveChange[]): void {
    if (this.holdMs <= 0) return;
    const a = this.on.get(key);
    if (raised) {
      if (a) a.until = s.ts + this.holdMs;
      else {
        const reason = raised.join('+');
        this.on.set(key, { until: s.ts + this.holdMs, metric: s.metric, labels: s.labels ?? {}, reason });
        out.push({ metric: s.metric, labels: s.labels ?? {}, ts: s.ts, value: 1, reason });
      }
    } else if (a && a.until <= s.ts) {
      this.on.delete(key);
      out.push(turnedOff(a, s.ts));
    }
  }

  /** Which rules make this verdict an event (none: no event). */
  private reasons(v: Verdict): AnomalyReason[] {
    const c = this.config;
    const out: AnomalyReason[] = [];
    if (v.score >= c.eventLevel) out.push('score');
    if (c.extremeLevel > 0 && Math.abs(v.excursion) >= c.extremeLevel) out.push('extreme');
    if (c.extremeDeviation > 0 && v.excursion < 0 && v.known && -v.deviation >= c.extremeDeviation) out.push('low');
    if (c.changeEvents && v.lasted !== null) out.push('change');
    if (c.flatEvents && v.flat !== null) out.push('stuck');
    if (c.silenceEvents && v.silence !== null) out.push('silence');
    return out;
  }

  private event(key: string, s: DerivedSample, v: Verdict, reasons: AnomalyReason[]): NetEvent {
    const { score, expected, lower, upper, explanation } = v;
    const id = createHash('sha1').update(`anomaly\0${key}\0${s.ts}`).digest('hex').slice(0, 24);
    return {
      id,
      ts: s.ts,
      source: 'anomaly',
      kind: 'anomaly',
      severity: this.config.severity as Severity,
      device: s.labels?.device ?? '',
      message: `anomaly on ${key}: ${explanation}`,
      fields: { series: key, metric: s.metric, labels: s.labels ?? {}, score, value: s.value, expected, lower, upper, reasons },
    };
  }

  private trainInBackground(m: FamilyModel): void {
    const p = m
      .train()
      .then(() => {
        if (this.config.modelDir && m.ready) saveModel(this.config.modelDir, m);
      })
      .catch((err: Error) => {
        M.errors.inc({ component: 'anomaly', kind: 'model_train' });
        process.emitWarning(err.message);
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Waits for background training (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Saves every trained family model; returns the files written. */
  saveModels(): string[] {
    if (!this.config.modelDir) return [];
    const out: string[] = [];
    for (const m of this.models.values()) if (m.ready) out.push(saveModel(this.config.modelDir, m));
    return out;
  }

  checkpoint(): OperatorCheckpoint {
    const series: OperatorCheckpoint['series'] = {};
    for (const [k, t] of this.series) series[k] = { d: t.det.toJSON(), ...(t.win ? { w: { ...t.win, buf: t.win.buf.slice() } } : {}), t: t.lastTs, s: sinceToJSON(t.since) };
    return { v: 1, series, ...(this.on.size > 0 ? { active: Object.fromEntries([...this.on].map(([k, a]) => [k, { ...a }])) } : {}) };
  }

  restore(cp: OperatorCheckpoint): void {
    if (!cp || cp.v !== 1 || typeof cp.series !== 'object') throw new Error(`anomaly operator checkpoint: unsupported version ${String((cp as { v?: unknown })?.v)}`);
    this.series.clear();
    for (const [k, s] of Object.entries(cp.series)) {
      try {
        this.series.set(k, { det: SeriesDetector.fromJSON(s.d, this.params), since: sinceFromJSON(s.s), win: s.w && this.learnedOn ? { ...s.w, buf: s.w.buf.slice() } : null, lastTs: s.t ?? -Infinity });
      } catch (err) {
        // One corrupt series starts afresh; the others keep their state.
        M.errors.inc({ component: 'anomaly', kind: 'checkpoint_series' });
        process.emitWarning(`anomaly checkpoint: series ${k}: ${(err as Error).message}`);
      }
    }
    this.on.clear();
    for (const [k, a] of Object.entries(cp.active ?? {})) {
      if (typeof a?.until === 'number' && typeof a.metric === 'string' && a.labels && typeof a.labels === 'object') this.on.set(k, { until: a.until, metric: a.metric, labels: { ...a.labels }, ...(typeof a.reason === 'string' && a.reason ? { reason: a.reason } : {}) });
    }
    seriesGauge.set(this.series.size);
  }

  get seriesCount(): number {
    return this.series.size;
  }

  dispose(): void {
    for (const m of this.models.values()) m.dispose();
    this.models.clear();
  }
}
