import { Baseline, DEFAULT_BASELINE, baselineToJSON, baselineFromJSON, packF32, unpackNumbers, type BaselineParams, type BaselineJSON, type Expectation, type Change } from './baseline.js';
import { Likelihood, DEFAULT_LIKELIHOOD, logScore, type LikelihoodParams, type LikelihoodState } from './likelihood.js';
import { Artime, DEFAULT_ARTIME, type ArtimeParams, type ArtimeState, type ArtimeVerdict } from './artime.js';
import { FlatlineWatch, DEFAULT_FLATLINE, type FlatlineParams, type FlatlineState, type Flatline } from './flatline.js';
import { SilenceWatch, DEFAULT_SILENCE, type SilenceParams, type SilenceState, type Silence } from './silence.js';

/**
 * A pure streaming detector for one series: it sees each point once, in order, and answers from
 * what came before (no look-ahead). The default ('artime' mode) scores with the ARTime layer
 * (artime.ts: adaptive-resonance memory of windowed shapes; a new cluster, unmasked, is the
 * anomaly) and keeps the robust seasonal baseline for the expected value, band and explanation.
 * ARTime sees a count whose usual values span several times their median (errors, requests,
 * mentions per poll) as log(1 + count / 2), decided once at the end of the warm-up (artime.ts,
 * logCounts); a counter's rate (SeriesOptions.countRate: errors, discards per second) is
 * shown to ARTime as its count per poll so that it meets the same test; everything else, and every
 * figure in the verdict, stays in the series' own units.
 * A second opinion joins it by max: a value beyond the range of everything seen before (a new high
 * or low by a few % of that range) scores at its own point, often a block before ARTime decides.
 * Three lower ones rank under both: a change of level (the baseline's CUSUM), a series stuck on
 * one value for longer than it ever held one (flatline.ts) and a silence stranger than any before it
 * (silence.ts: resting at the floor at an hour that rarely does). Two rules shape what is reported:
 * candidates of either opinion and changes close together are one incident (only a new high within
 * it is reported again; the stuck and silence watches report once per run or spell of their own, so
 * their reports always count), and for a while after the range grew (the memory rescaled to a scale
 * it has not learnt at) a new pattern that is not itself a new extreme counts less.
 * The statistical mode ('likelihood': baseline residual and range novelty, blended with the learned
 * model's surprise, through the anomaly likelihood, with a refractory period) remains selectable.
 * Modes that measured worse (shape novelty, EVT tails, a decaying record) were removed; their
 * figures stay in processors/README.md.
 */

export interface DetectorParams {
  readonly baseline: BaselineParams;
  readonly likelihood: LikelihoodParams;
  /** The ARTime layer ('artime' mode); its probation is the warm-up in points. */
  readonly artime: ArtimeParams;
  /** ARTime mode: a series stuck on one value for longer than it has ever held one (flatline.ts). */
  readonly flatline: FlatlineParams;
  /** ARTime mode: the score of a stuck run's report (0 = the score ignores it; events take it either way). */
  readonly flatLevel: number;
  /** ARTime mode: a series resting at its floor at an hour of the week that rarely is (silence.ts). */
  readonly silence: SilenceParams;
  /** ARTime mode: the score of a silence report (0 = the score ignores it; events take it either way). */
  readonly silenceLevel: number;
  /** Residual (in robust scale units) at which the point raw score reaches ~0.76 (tanh(1)). */
  readonly zScale: number;
  /** Excursion beyond the range ever seen, as a fraction of that range, reaching ~0.76. */
  readonly rangeScale: number;
  /** Weight of the learned model's raw score against the statistics' (0 = statistics only). */
  readonly learnedWeight: number;
  /** Points after a peak during which lower scores are damped. */
  readonly refractory: number;
  /** Factor on scores below the recent peak during the refractory period. */
  readonly damp: number;
  /** Points seen before any score above 0 is given (the detector is learning). */
  readonly warmup: number;
  /** Half-width of the expected band, in robust scale units. */
  readonly band: number;
  /** 'artime' (the default), or 'likelihood': the statistics' (and the learned model's) raw surprise scored against its own running distribution. */
  readonly mode: 'artime' | 'likelihood';
  /**
   * ARTime mode, second opinion: after the warm-up, a value beyond the range of everything seen
   * before by more than this fraction of that range scores up to `excursionLevel` (0 = off). A new
   * extreme is often the first point of an incident, a block earlier than ARTime reports it.
   */
  readonly excursionMin: number;
  /** Score of a large excursion: excursionLevel × (1 + tanh(excursion / need − 1)) / 2. */
  readonly excursionLevel: number;
  /**
   * A range learnt from few points is left easily: the excursion needed is excursionMin ×
   * max(1, excursionSettle × warm-up / points seen), relaxing to excursionMin at that many warm-ups.
   */
  readonly excursionSettle: number;
  /**
   * ARTime mode: one incident, one report. Candidates (either opinion) less than this many of
   * ARTime's post-anomaly masks (mask × downsampling step, in points) apart are one incident; within
   * it, a candidate no higher than the incident's peak so far scores 0 (0 = off). ARTime masks only
   * its own reports: a new extreme and, a block later, ARTime's report of the same change counted
   * twice. Only repeats are dropped, so at any event level the incident's first crossing stays.
   */
  readonly incidentMasks: number;
  /**
   * ARTime mode: after the range grew (the memory rescaled to a scale it has not learnt at), a new
   * pattern that is not itself beyond the range scores × grownFactor for grownHold warm-ups, then
   * recovers linearly over grownRecover warm-ups (grownFactor 1 = off). Measured on NAB: such
   * candidates were three times as often false as the others.
   */
  readonly grownFactor: number;
  /**
   * ARTime mode: a change of level reported by the baseline's CUSUM scores at least this (0 = the
   * score ignores it; events take changes either way). Low on purpose: a lasting shift against the
   * usual value for the hour is weaker evidence than a new shape or a new extreme, so it ranks
   * under them. Measured on NAB: from 0.1 to 0.35 standard 72.68 -> 73.94-74.10 and low-FN
   * 77.92 -> 79.73-79.84, low-FP unchanged (66.85); from 0.4 low-FP falls (65.4-65.7). Over 16
   * settings of the ARTime layer: means 69.60 / 62.45 / 74.67 -> 71.91 / 62.65 / 77.98.
   */
  readonly changeLevel: number;
  readonly grownHold: number;
  readonly grownRecover: number;
  /**
   * ARTime mode: a new pattern is graded against the series' own record of new patterns. It scores
   * × (noveltyFloor + (1 − noveltyFloor) × the share of the last `noveltyMemory` new patterns that
   * were at least as similar to the memory as it is): no more novel than any of them, × noveltyFloor;
   * more novel than all, in full (noveltyFloor 1 = off). A series whose normal life keeps making new
   * patterns makes them at its usual distance; an incident is usually farther than that. Off by
   * default: at 0.7 NAB's low-FP rose 66.85 -> 67.49, but on the demo network (48 h at 10-s polls,
   * 300 series) the second day's incidents scored 0.9 or more 14 of 48 times instead of 24.
   */
  readonly noveltyFloor: number;
  readonly noveltyMemory: number;
}

export const DEFAULT_PARAMS: DetectorParams = {
  baseline: DEFAULT_BASELINE,
  likelihood: DEFAULT_LIKELIHOOD,
  artime: DEFAULT_ARTIME,
  flatline: DEFAULT_FLATLINE,
  flatLevel: 0.25,
  silence: DEFAULT_SILENCE,
  silenceLevel: 0.25,
  zScale: 6,
  rangeScale: 0.2,
  learnedWeight: 0.3,
  refractory: 300,
  damp: 0.5,
  warmup: 200,
  band: 3,
  mode: 'artime',
  excursionMin: 0.03,
  excursionLevel: 0.5,
  excursionSettle: 3,
  incidentMasks: 1,
  grownFactor: 0.5,
  changeLevel: 0.25,
  grownHold: 1,
  grownRecover: 2,
  noveltyFloor: 1,
  noveltyMemory: 16,
};

/**
 * Whether a detector with these parameters takes the learned model's surprise into its score: the
 * statistical mode that blends it ('likelihood', with learnedWeight > 0). The ARTime mode
 * does not: no combination with the learned model measured better on NAB (processors/README.md).
 */
export function usesLearned(p: DetectorParams): boolean {
  return p.mode === 'likelihood' && p.learnedWeight > 0;
}

export interface Verdict {
  /** Anomaly score in [0, 1]. */
  readonly score: number;
  /** The baseline's expectation for this point, and its band (for charts). */
  readonly expected: number;
  readonly lower: number;
  readonly upper: number;
  /** Combined raw surprise before the likelihood, in [0, 1). */
  readonly raw: number;
  /** What deviated from which baseline. */
  readonly explanation: string;
  /**
   * How far the point left the range of everything the series has shown, as a fraction of that
   * range (+ above, - below, 0 inside or while learning): a new all-time extreme, whatever the score.
   */
  readonly excursion: number;
  /** How far the point is from the expected value, in the baseline's robust scale units (signed; 0 while learning). */
  readonly deviation: number;
  /** The baseline has seen this hour of the week: the expected value is for this time, not a guess from the recent level at an hour never seen. */
  readonly known: boolean;
  /**
   * A change of level this point completes (the baseline's CUSUM against the usual value for the
   * hour of the week), reported once per change; null otherwise. Independent of the score.
   */
  readonly change: Change | null;
  /**
   * A change of level that has now lasted (baseline.ts, ChangeParams.lastMs) since it was
   * reported, once per change: what change events take (the score takes `change`). Null otherwise.
   */
  readonly lasted: Change | null;
  /** A run of one value longer than any before it, reported once per run (ARTime mode); null otherwise. */
  readonly flat: Flatline | null;
  /** A spell at the floor stranger than any before it, reported once per spell (ARTime mode); null otherwise. */
  readonly silence: Silence | null;
}

export interface DetectorState {
  v: 1;
  b: BaselineJSON;
  l: LikelihoodState;
  /** Recent peak score and points since it. */
  peak: number;
  age: number;
  lastTs: number;
  /** ARTime layer (artime mode). */
  ar?: ArtimeState;
  /** ARTime mode: point index (ARTime's count) of the last candidate, for the incident mask. */
  hit?: number | null;
  /** ... and the incident's peak score so far. */
  hp?: number;
  /** ARTime mode: similarities of the last new patterns (noveltyMemory), oldest first. */
  nv?: string | number[];
  /** ARTime mode: the run of equal values (absent in older checkpoints: starts afresh). */
  fl?: FlatlineState;
  /** ARTime mode: spells at the floor (absent in older checkpoints: starts afresh). */
  si?: SilenceState;
  /** ARTime mode: the series is a counter's rate (SeriesOptions.countRate); ARTime sees its count per poll. */
  cr?: 1;
  /** ... and the shortest interval between its points so far, in seconds (the poll its counts are per). */
  ps?: number;
}

/** What a series is, beyond its values; fixed when its detector is created and kept in its state. */
export interface SeriesOptions {
  /**
   * The series is a counter's rate (errors, discards per second): ARTime judges its count per poll,
   * round(rate × the shortest interval seen), so the log scale for counts (artime.ts, logCounts) can
   * meet it; the rate itself is never an integer. Every figure in the verdict stays in the rate's units.
   */
  readonly countRate?: boolean;
}

/** ARTime's answer for a point it was not shown. */
const UNSEEN: ArtimeVerdict = { score: 0, done: false, similarity: 1, novel: false };

const SLOT_NAME = (slot: number) => `${String(slot % 24).padStart(2, '0')}:00 ${slot >= 24 ? 'weekend' : 'weekday'}`;

export class SeriesDetector {
  private readonly base: Baseline;
  private readonly lik: Likelihood;
  private peak: number;
  private age: number;
  private lastTs: number;
  private readonly art: Artime | undefined;
  private lastHit: number;
  private hitPeak: number;
  private readonly novelties: number[];
  private readonly flat: FlatlineWatch | undefined;
  private readonly quiet: SilenceWatch | undefined;
  private readonly countRate: boolean;
  private pollSeconds: number;

  constructor(readonly params: DetectorParams = DEFAULT_PARAMS, state?: DetectorState, options: SeriesOptions = {}) {
    this.base = new Baseline(params.baseline, state?.b ? baselineFromJSON(state.b) : undefined);
    this.lik = new Likelihood(params.likelihood, state?.l);
    this.peak = state?.peak ?? 0;
    this.age = state?.age ?? 0;
    this.lastTs = state?.lastTs ?? -Infinity;
    this.art = params.mode === 'artime' ? new Artime(params.artime, state?.ar) : undefined;
    this.flat = this.art ? new FlatlineWatch(params.flatline, state?.fl) : undefined;
    this.quiet = this.art ? new SilenceWatch(params.silence, state?.si) : undefined;
    this.lastHit = state?.hit ?? -Infinity;
    this.hitPeak = state?.hp ?? 0;
    // float32 like every value the record compares, so a restored record compares as the live one
    this.novelties = state?.nv === undefined ? [] : unpackNumbers(state.nv, 4, 'novelty record').map(Math.fround);
    // a restored series keeps what it was learnt as
    this.countRate = this.art !== undefined && (state ? state.cr === 1 : options.countRate === true);
    this.pollSeconds = state?.ps ?? Infinity;
    if (!(this.pollSeconds > 0)) throw new Error(`poll interval ${String(state?.ps)}`);
  }

  /** Whether ARTime sees this series on the log scale for counts (artime.ts, logCounts; decided at the end of the warm-up). */
  get logScale(): boolean {
    return this.art?.logScale === true;
  }

  /** Whether ARTime sees this series' count per poll (SeriesOptions.countRate). */
  get isCountRate(): boolean {
    return this.countRate;
  }

  get seen(): number {
    return this.base.s.n;
  }

  /** The baseline's expectation for the next point (used by the learned layer to normalise). */
  expectation(ts: number): Expectation {
    return this.base.expect(ts);
  }

  /**
   * Scores one point. `learnedRaw` is the learned model's surprise for this point in [0, 1], when
   * one is available. Non-finite values are not learned from and score 0 with an explanation.
   */
  step(ts: number, value: number, learnedRaw?: number): Verdict {
    if (!Number.isFinite(value) || !Number.isFinite(ts)) {
      return { score: 0, expected: NaN, lower: NaN, upper: NaN, raw: 0, explanation: `ignored non-finite ${Number.isFinite(ts) ? 'value' : 'timestamp'} ${value}`, excursion: 0, deviation: 0, known: false, change: null, lasted: null, flat: null, silence: null };
    }
    const p = this.params;
    const e = this.base.expect(ts);
    const n = this.base.s.n;
    if (this.art) return this.stepArtime(ts, value, e, n);
    let raw = 0;
    let z = 0;
    let excursion = 0;
    if (n > 0) {
      z = (value - e.expected) / e.scale;
      const b = this.base.s;
      const range = Math.max(b.hi - b.lo, this.base.floor());
      excursion = value > b.hi ? (value - b.hi) / range : value < b.lo ? (value - b.lo) / range : 0;
      const rPoint = Math.tanh(Math.abs(z) / p.zScale);
      const rRange = Math.tanh(Math.abs(excursion) / p.rangeScale);
      let stat = Math.max(rPoint, rRange);
      if (learnedRaw !== undefined && Number.isFinite(learnedRaw) && p.learnedWeight > 0) {
        stat = (1 - p.learnedWeight) * stat + p.learnedWeight * Math.min(1, Math.max(0, learnedRaw));
      }
      raw = stat;
    }
    const tail = this.lik.update(raw);
    let score = n < p.warmup ? 0 : logScore(tail);
    // Refractory period: within it, only a new high keeps its full score.
    this.age++;
    if (score > this.peak || this.age > p.refractory) {
      if (score >= this.peak || this.age > p.refractory) {
        this.peak = score;
        this.age = 0;
      }
    } else {
      score *= p.damp;
    }
    const { change, lasted } = this.base.change(ts, value, e);
    const explanation = this.explain(value, e, z, excursion, score, n) + describeChanges(change, lasted, ts, this.base.usual(e.slot), e.slot);
    this.base.update(ts, value, e);
    this.lastTs = ts;
    const expected = n > 0 ? e.expected : value;
    const half = n > 0 ? p.band * e.scale : 0;
    return { score, expected, lower: expected - half, upper: expected + half, raw, explanation, excursion, deviation: z, known: e.known, change, lasted, flat: null, silence: null };
  }

  private stepArtime(ts: number, value: number, e: Expectation, n: number): Verdict {
    const p = this.params;
    const a = this.countRate ? this.stepCount(ts, value) : this.art!.step(value);
    const z = n > 0 ? (value - e.expected) / e.scale : 0;
    const b = this.base.s;
    const range = Math.max(b.hi - b.lo, this.base.floor());
    const excursion = n === 0 ? 0 : value > b.hi ? (value - b.hi) / range : value < b.lo ? (value - b.lo) / range : 0;
    // points seen before this one, against the warm-up
    const learning = this.art!.s.i - 2 < this.art!.h.probation;
    // a new pattern that holds a new extreme (this point, or a window holding the value that just grew the range)
    const extreme = excursion !== 0 || this.art!.sinceGrowth <= this.art!.p.window * this.art!.h.sstep;
    const graded = this.againstRecord(a.score, a.similarity, extreme);
    let score = graded.score;
    const ex = Math.abs(excursion);
    const need = p.excursionMin * Math.max(1, (p.excursionSettle * this.art!.h.probation) / Math.max(1, n));
    if (!learning && p.excursionMin > 0 && ex > need) score = Math.max(score, Math.round(p.excursionLevel * (0.5 + 0.5 * Math.tanh(ex / need - 1)) * 1e6) / 1e6);
    const { change, lasted } = this.base.change(ts, value, e);
    if (!learning && change && p.changeLevel > 0) score = Math.max(score, p.changeLevel);
    // both watches take the lowest value seen before this point from the baseline (it learns from the point below)
    const flat = this.flat!.step(ts, value, !learning, Number.isFinite(b.lo) ? b.lo : null);
    const silence = this.quiet!.step(ts, value, !learning, { lo: b.lo, last: Number.isFinite(b.last) ? b.last : null, slot: e.slot });
    const settled = this.whileSettling(score, excursion);
    const incident = this.sameIncident(settled.score);
    score = incident.score;
    // the watches report once per run or spell by construction, so the incident rule (which drops the
    // shape and extreme opinions' repeats) does not apply: their report always carries its level
    if (flat && p.flatLevel > 0) score = Math.max(score, p.flatLevel);
    if (silence && p.silenceLevel > 0) score = Math.max(score, p.silenceLevel);
    let explanation: string;
    if (learning) explanation = `learning (${this.art!.s.i - 1} of ${this.art!.h.probation} points)`;
    else {
      explanation = this.explain(value, e, z, excursion, score, Infinity);
      if (settled.damped) explanation += `; the range grew ${this.art!.sinceGrowth} points ago (memory still settling at the new scale: new patterns count less)`;
      if (graded.of > 0 && graded.score < a.score) explanation += `; less novel than ${graded.of - graded.beyond} of the series' last ${graded.of} new patterns (counts less)`;
      // (a watch's report at this point is reported whatever the incident: then the clause would mislead)
      if (incident.after > 0 && score === 0) explanation += `; same incident as the candidates up to ${incident.after} points before (peak ${this.hitPeak.toFixed(3)}): not reported again`;
      const span = a.done && a.novel ? this.patternSpan() : null;
      if (span) explanation += `; new pattern over the last ${span.time ?? `${span.points} points`} (${span.time ? `${span.points} points; ` : ''}similarity ${a.similarity.toFixed(2)} to the ${this.art!.categories} learnt, vigilance ${this.art!.vigilance.toFixed(2)}${this.art!.logScale ? `; seen as log(1 + count / ${this.art!.p.countKnee})` : ''})`;
    }
    explanation += describeChanges(change, lasted, ts, this.base.usual(e.slot), e.slot) + describeFlat(flat, ts) + describeSilence(silence, ts);
    this.base.update(ts, value, e);
    this.lastTs = ts;
    const expected = n > 0 ? e.expected : value;
    const half = n > 0 ? p.band * e.scale : 0;
    return { score, expected, lower: expected - half, upper: expected + half, raw: a.done ? 1 - a.similarity : 0, explanation, excursion: learning ? 0 : excursion, deviation: learning ? 0 : z, known: e.known, change, lasted, flat, silence };
  }

  /**
   * A counter's rate to ARTime as its count per poll. The shortest interval seen is the poll: a gap
   * in the feed (the rate averaged over it) then reads as the usual count, not as a burst. The
   * first point has no interval yet and is not shown to ARTime.
   */
  private stepCount(ts: number, value: number): ArtimeVerdict {
    const dt = (ts - this.lastTs) / 1000;
    if (dt > 0 && dt < this.pollSeconds) this.pollSeconds = dt;
    if (!Number.isFinite(this.pollSeconds)) return UNSEEN;
    return this.art!.step(Math.round(value * this.pollSeconds));
  }

  /** The stretch of the series a shape covers (the ARTime feature window): its points, and its time from the series' mean step (null before there is one). */
  private patternSpan(): { points: number; time: string | null } {
    const points = this.art!.p.window * this.art!.h.sstep;
    const b = this.base.s;
    const step = b.n > 1 && Number.isFinite(b.t0) && Number.isFinite(b.last) ? (b.last - b.t0) / (b.n - 1) : NaN;
    if (!(step > 0)) return { points, time: null };
    const min = (points * step) / 60_000;
    return { points, time: min >= 120 ? `${(min / 60).toFixed(1)} h` : `${Math.round(min)} min` };
  }

  /**
   * An ARTime candidate graded against the series' record of new patterns (noveltyFloor): `beyond` of
   * the last `of` were at least as similar to the memory. A new pattern that holds a new extreme is
   * the excursion's incident, not the series' routine: neither graded nor recorded (a first incident
   * does not raise the bar for the next).
   */
  private againstRecord(score: number, similarity: number, extreme: boolean): { score: number; of: number; beyond: number } {
    const p = this.params;
    if (!(score > 0) || extreme || p.noveltyFloor >= 1 || p.noveltyMemory <= 0) return { score, of: 0, beyond: 0 };
    const rec = this.novelties;
    const of = rec.length;
    let beyond = 0;
    for (const s of rec) if (s >= similarity) beyond++;
    // float32, as checkpointed: a restored record compares exactly as the live one
    rec.push(Math.fround(similarity));
    while (rec.length > p.noveltyMemory) rec.shift();
    if (of === 0) return { score, of, beyond };
    const f = p.noveltyFloor + ((1 - p.noveltyFloor) * beyond) / of;
    return { score: Math.round(score * f * 1e6) / 1e6, of, beyond };
  }

  /** A candidate inside the range, while the memory settles after the range grew, counts less (grownFactor). */
  private whileSettling(score: number, excursion: number): { score: number; damped: boolean } {
    const p = this.params;
    const art = this.art!;
    // the feature windows that hold the growing value are about that value itself: not damped
    if (!(score > 0) || excursion !== 0 || p.grownFactor >= 1 || art.sinceGrowth <= art.p.window * art.h.sstep) return { score, damped: false };
    const t = art.sinceGrowth / art.h.probation;
    const f = t <= p.grownHold ? p.grownFactor : Math.min(1, p.grownFactor + ((1 - p.grownFactor) * (t - p.grownHold)) / Math.max(1e-9, p.grownRecover));
    return f < 1 ? { score: Math.round(score * f * 1e6) / 1e6, damped: true } : { score, damped: false };
  }

  /** One incident, one report (incidentMasks): a candidate no higher than its incident's peak scores 0; `after` = points since the incident's last candidate. */
  private sameIncident(score: number): { score: number; after: number } {
    const p = this.params;
    if (!(score > 0) || p.incidentMasks <= 0) return { score, after: 0 };
    // chained: a burst of candidates stays one incident until a quiet mask passes
    const i = this.art!.s.i;
    const h = this.art!.h;
    const after = i - this.lastHit;
    this.lastHit = i;
    if (after > p.incidentMasks * h.mask * h.sstep || score > this.hitPeak) {
      this.hitPeak = score;
      return { score, after: 0 };
    }
    return { score: 0, after };
  }

  private explain(value: number, e: Expectation, z: number, excursion: number, score: number, n: number): string {
    if (n < this.params.warmup) return `learning (${n + 1} of ${this.params.warmup} points)`;
    const basis = e.seasonal ? `seasonal baseline for ${SLOT_NAME(e.slot)}` : 'recent level';
    const dir = z >= 0 ? 'above' : 'below';
    let s = `${fmt(value)} ${dir} ${basis} ${fmt(e.expected)} by ${Math.abs(z).toFixed(1)}σ (σ=${fmt(e.scale)})`;
    if (excursion !== 0) s += '; ' + describeExcursion(excursion, this.base.s.lo, this.base.s.hi);
    return s + `; score ${score.toFixed(3)}`;
  }

  /** Exact on purpose (compact encodings only of values kept exact in memory): a restored detector must score as the uninterrupted one. */
  toJSON(): DetectorState {
    return { v: 1, b: baselineToJSON(this.base.s), l: { ...this.lik.s, recent: this.lik.s.recent.slice() }, peak: this.peak, age: this.age, lastTs: this.lastTs, ...(this.art ? { ar: this.art.toJSON(), hit: Number.isFinite(this.lastHit) ? this.lastHit : null, hp: this.hitPeak, ...(this.novelties.length > 0 ? { nv: packF32(this.novelties) } : {}), ...(this.flat ? { fl: { ...this.flat.s } } : {}), ...(this.quiet ? { si: this.quiet.toJSON() } : {}), ...(this.countRate ? { cr: 1 as const, ...(Number.isFinite(this.pollSeconds) ? { ps: this.pollSeconds } : {}) } : {}) } : {}) };
  }

  /** A detector as checkpointed (what the series is comes from its state, not from options). */
  static fromJSON(json: unknown, params: DetectorParams = DEFAULT_PARAMS): SeriesDetector {
    const s = json as DetectorState;
    if (!s || s.v !== 1 || !s.b || !s.l) {
      throw new Error(`anomaly detector state: unsupported or corrupt (version ${String((s as { v?: unknown } | null)?.v)})`);
    }
    try {
      return new SeriesDetector(params, { ...s, l: { ...s.l, recent: s.l.recent.slice() }, lastTs: s.lastTs ?? -Infinity });
    } catch (err) {
      throw new Error(`anomaly detector state: corrupt (${(err as Error).message})`);
    }
  }
}

/** The change this point completes and the one that has now lasted (one clause when they are the same). */
function describeChanges(c: Change | null, lasted: Change | null, ts: number, usual: number, slot: number): string {
  const one = (x: Change, what: string) => `; ${what}: ${x.dir > 0 ? 'above' : 'below'} the usual ${fmt(usual)} for ${SLOT_NAME(slot)} for ${Math.round((ts - x.since) / 60_000)} min`;
  if (lasted) return (c && c.dir !== lasted.dir ? one(c, 'level change') : '') + one(lasted, 'lasting level change');
  return c ? one(c, 'level change') : '';
}

function describeFlat(f: Flatline | null, ts: number): string {
  if (!f) return '';
  return `; stuck: unchanged at ${fmt(f.value)} for ${Math.round((ts - f.since) / 60_000)} min (${f.points} points; the longest run before: ${f.record})`;
}

function describeSilence(q: Silence | null, ts: number): string {
  if (!q) return '';
  const share = q.share < 0.01 ? 'less than 1%' : `${Math.round(q.share * 100)}%`;
  return `; silent: at its floor (${fmt(q.floor)}) for ${Math.round((ts - q.since) / 60_000)} min (${q.points} points) at an hour of the week that rests there ${share} of the time (evidence ${q.evidence.toFixed(1)}; the most of any quiet spell before: ${q.record.toFixed(1)})`;
}

/** A value beyond everything seen, said against the range it left: "new high: past the highest before (2) by 270x the range 0 to 2". */
export function describeExcursion(excursion: number, lo: number, hi: number): string {
  const a = Math.abs(excursion);
  const by = a >= 10 ? `${a.toFixed(0)}x` : `${(a * 100).toFixed(0)}% of`;
  return excursion > 0
    ? `new high: past the highest before (${fmt(hi)}) by ${by} the range ${fmt(lo)} to ${fmt(hi)}`
    : `new low: under the lowest before (${fmt(lo)}) by ${by} the range ${fmt(lo)} to ${fmt(hi)}`;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? x.toExponential(3) : Number(x.toPrecision(5)).toString();
}
