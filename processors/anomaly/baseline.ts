/**
 * The cheap, robust layer every series gets: two competing one-step predictors (a fast EWMA level,
 * and a slow level plus an hour-of-day × weekday/weekend offset, Holt-Winters style), each with a
 * clipped EWMA of its absolute error; the one that has been predicting better is the baseline. And
 * change detection: a two-sided CUSUM of the point's distance from what is usual for its hour of
 * the week, in that hour's own robust scale. O(1) per point, a few hundred numbers of state.
 */

export const SLOTS = 48;

/** Hour of day (UTC) and weekday/weekend: the seasonal slot of a timestamp. */
export function seasonSlot(ts: number): number {
  const d = new Date(ts);
  const dow = d.getUTCDay();
  return d.getUTCHours() + (dow === 0 || dow === 6 ? 24 : 0);
}

export interface BaselineParams {
  /** Fast level smoothing (per point). */
  readonly fastAlpha: number;
  /**
   * Time constant of the slow level under the seasonal offsets, in ms: per unit of time, not per
   * point, so the offsets mean the same at 10-s and 5-min polls. It learns from the deseasonalised
   * value (value minus its slot's offset): a level fed the raw values would follow the week (a
   * weekend pulls it down, and Monday night looks high against its own offsets).
   */
  readonly slowTauMs: number;
  /** Seasonal offset smoothing (per visit of a slot). */
  readonly slotAlpha: number;
  /** Error-scale smoothing (per point). */
  readonly errAlpha: number;
  /** Errors are clipped at this many scales before they update the scale (spikes must not widen it). */
  readonly clip: number;
  /** Visits a slot needs before the seasonal predictor may be used. */
  readonly minSlotVisits: number;
  readonly change: ChangeParams;
}

/**
 * Change detection (Page's CUSUM) on z = (value − the slot's usual value) / the slot's own robust
 * scale, clipped: S+ = max(0, S+ + w·(z − allowance)), and S− mirrored; a change is reported when
 * one passes `threshold`. w = min(1, Δt / unitMs), so the evidence needed is a duration, not a
 * number of points (a 10-s poll does not alarm 30 times sooner than a 5-min one). A sum stays
 * capped at hold × threshold after its report and is re-armed only once it has returned to 0: a
 * lasting change is reported once, not every few points until the offsets have learnt it.
 */
export interface ChangeParams {
  /** Sigmas of deviation that add nothing (drift smaller than this is never a change); 0 = change detection off. */
  readonly allowance: number;
  /** Evidence (sigma × unit of time beyond the allowance) that reports a change. */
  readonly threshold: number;
  /** Per-point z is clipped here, so one spike cannot make a change on its own. */
  readonly clip: number;
  /** Visits a slot needs before changes are judged in it (its scale is learnt from few visits). */
  readonly visits: number;
  readonly hold: number;
  readonly unitMs: number;
  /** A slot's scale is at least this fraction of the seasonal predictor's overall scale (a slot learnt flat is not infinitely sensitive). */
  readonly scaleFloor: number;
  /**
   * A change has lasted once its sum has stayed above the threshold this long (ms) since it
   * crossed it: reported once per change, as `lasted` (the immediate report stays what the score
   * takes). A burst that dies down within it (a topic's flurry, an error storm) drains the sum
   * below the threshold first; a change of level holds it there, capped. 0 = at the crossing.
   */
  readonly lastMs: number;
}

export const DEFAULT_CHANGE: ChangeParams = {
  allowance: 2.5,
  threshold: 16,
  clip: 6,
  visits: 5,
  hold: 2,
  unitMs: 300_000,
  scaleFloor: 0.25,
  lastMs: 3_600_000,
};

export const DEFAULT_BASELINE: BaselineParams = {
  fastAlpha: 0.2,
  slowTauMs: 7 * 86_400_000,
  slotAlpha: 0.4,
  errAlpha: 0.01,
  clip: 4,
  minSlotVisits: 3,
  change: DEFAULT_CHANGE,
};

/** A change reported by the CUSUM: its direction, since when the evidence built up, and this point's z (clipped). */
export interface Change {
  readonly dir: 1 | -1;
  readonly since: number;
  readonly z: number;
}

/** One CUSUM step: the change this point completes (at the crossing), and the change that has now lasted ChangeParams.lastMs. */
export interface ChangeStep {
  readonly change: Change | null;
  readonly lasted: Change | null;
}

const NO_CHANGE: ChangeStep = { change: null, lasted: null };
/** cuX / cdX: the sum is not above the threshold (or the change was re-armed at 0). */
const BELOW = -1;
/** cuX / cdX: this change's lasting report was made (until the sum returns to 0). */
const LASTED = -2;

/** What the baseline expected of the point just seen, before learning from it. */
export interface Expectation {
  readonly expected: number;
  /** One robust scale unit (about one standard deviation of the one-step error). */
  readonly scale: number;
  readonly seasonal: boolean;
  /** The baseline has seen this hour of the week (minSlotVisits visits): the expectation is for this time, seasonal or flat. */
  readonly known: boolean;
  readonly slot: number;
}

export interface BaselineState {
  n: number;
  fast: number;
  slow: number;
  errFast: number;
  errSeason: number;
  lo: number;
  hi: number;
  offset: number[];
  /** Separate visits (runs of consecutive points) per slot: days or weeks of evidence, not points. */
  visits: number[];
  /** Slot of the current run, its length so far, and the average run length. */
  cur: number;
  run: number;
  runLen: number;
  /** Per-slot clipped EWMA of the seasonal predictor's absolute error (per visit, like the offsets). */
  es: number[];
  /** Time of the first and the last point seen. */
  t0: number;
  last: number;
  /** CUSUM sums up and down, since when each has been above 0, and whether it may report (re-armed at 0). */
  cu: number;
  cd: number;
  cuT: number;
  cdT: number;
  cuArmed: boolean;
  cdArmed: boolean;
  /** Since when each sum has been above the threshold (BELOW: it is not; LASTED: reported as lasting). */
  cuX: number;
  cdX: number;
}

/**
 * Checkpoint form of the baseline (smaller than BaselineState as JSON): the offsets as base64
 * float32 (they are kept float32-exact, so a restore is exact), the visits as base64 uint16 (they
 * saturate at 65535). Arrays are still accepted from older checkpoints.
 */
export interface BaselineJSON extends Omit<BaselineState, 'offset' | 'visits' | 'es' | ChangeKeys> {
  offset: string | number[];
  visits: string | number[];
  /** Absent in checkpoints from before change detection: restored as the overall scale, sums at 0. */
  es?: string | number[];
  t0?: number;
  last?: number;
  cu?: number;
  cd?: number;
  cuT?: number;
  cdT?: number;
  cuArmed?: boolean;
  cdArmed?: boolean;
  /** Absent in checkpoints from before lasting changes: not above the threshold. */
  cuX?: number;
  cdX?: number;
}
type ChangeKeys = 't0' | 'last' | 'cu' | 'cd' | 'cuT' | 'cdT' | 'cuArmed' | 'cdArmed' | 'cuX' | 'cdX';

const MAX_VISITS = 65535;

export function baselineToJSON(s: BaselineState): BaselineJSON {
  // the lasting watches are BELOW nearly always: left out then (restored as BELOW)
  const { cuX, cdX, ...rest } = s;
  return { ...rest, ...(cuX !== BELOW ? { cuX } : {}), ...(cdX !== BELOW ? { cdX } : {}), offset: packF32(s.offset), visits: Buffer.from(Uint16Array.from(s.visits).buffer).toString('base64'), es: packF32(s.es) };
}

/** Numbers kept float32-exact, as base64 float32 (4 bytes each instead of ~20 characters of JSON). */
export function packF32(xs: readonly number[]): string {
  return Buffer.from(Float32Array.from(xs).buffer).toString('base64');
}

/**
 * Inverse of packF32 (bytes 4) or of a base64 uint16 array (bytes 2); arrays from older checkpoints
 * are taken as they are. `count`, when given, is the length required. Throws naming `what`.
 */
export function unpackNumbers(x: string | readonly number[] | undefined, bytes: 4 | 2, what: string, count?: number): number[] {
  if (Array.isArray(x)) return x.slice();
  if (typeof x !== 'string') throw new Error(`${what}: missing`);
  const b = Buffer.from(x, 'base64');
  if (count !== undefined ? b.length !== count * bytes : b.length % bytes !== 0) throw new Error(`${what}: ${b.length} bytes, expected ${count !== undefined ? count * bytes : `a multiple of ${bytes}`}`);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
  return Array.from(bytes === 4 ? new Float32Array(ab) : new Uint16Array(ab));
}

/** Inverse of baselineToJSON; throws on a corrupt state. Infinity does not survive JSON (null): the empty range is restored. */
export function baselineFromJSON(j: BaselineJSON): BaselineState {
  const offset = unpackNumbers(j.offset, 4, 'baseline offsets', SLOTS);
  const visits = unpackNumbers(j.visits, 2, 'baseline visits', SLOTS);
  if (offset.length !== SLOTS || visits.length !== SLOTS) throw new Error(`baseline: ${offset.length} offsets and ${visits.length} visits, expected ${SLOTS}`);
  const es = j.es === undefined ? new Array<number>(SLOTS).fill(Math.fround(j.errSeason)) : unpackNumbers(j.es, 4, 'baseline slot scales', SLOTS);
  return {
    ...j,
    lo: j.lo ?? Infinity,
    hi: j.hi ?? -Infinity,
    offset,
    visits,
    es,
    t0: j.t0 ?? -Infinity,
    last: j.last ?? -Infinity,
    cu: j.cu ?? 0,
    cd: j.cd ?? 0,
    cuT: j.cuT ?? 0,
    cdT: j.cdT ?? 0,
    cuArmed: j.cuArmed ?? true,
    cdArmed: j.cdArmed ?? true,
    cuX: j.cuX ?? BELOW,
    cdX: j.cdX ?? BELOW,
  };
}

export class Baseline {
  s: BaselineState;
  constructor(readonly p: BaselineParams = DEFAULT_BASELINE, state?: BaselineState) {
    this.s = state ?? {
      n: 0,
      fast: 0,
      slow: 0,
      errFast: 0,
      errSeason: 0,
      lo: Infinity,
      hi: -Infinity,
      offset: new Array(SLOTS).fill(0),
      visits: new Array(SLOTS).fill(0),
      cur: -1,
      run: 0,
      runLen: 1,
      es: new Array(SLOTS).fill(0),
      t0: -Infinity,
      last: -Infinity,
      cu: 0,
      cd: 0,
      cuT: 0,
      cdT: 0,
      cuArmed: true,
      cdArmed: true,
      cuX: BELOW,
      cdX: BELOW,
    };
  }

  /** Range of values seen (all time): a floor for the scale so flat series do not divide by zero. */
  get range(): number {
    return this.s.hi > this.s.lo ? this.s.hi - this.s.lo : 0;
  }

  floor(): number {
    return Math.max(1e-3 * this.range, 1e-9 * Math.abs(this.s.fast), 1e-12);
  }

  /** What is usual for the slot (the seasonal predictor's value, whether or not it is the baseline). */
  usual(slot: number): number {
    return this.s.slow + this.s.offset[slot]!;
  }

  /** The prediction for a point at `ts`, from what was seen before it. */
  expect(ts: number): Expectation {
    const s = this.s;
    const slot = seasonSlot(ts);
    if (s.n === 0) return { expected: NaN, scale: NaN, seasonal: false, known: false, slot };
    const seasonalOk = s.visits[slot]! >= this.p.minSlotVisits && s.n > 2 * SLOTS;
    const seasonal = seasonalOk && s.errSeason < s.errFast * 0.9;
    const expected = seasonal ? s.slow + s.offset[slot]! : s.fast;
    const err = seasonal ? s.errSeason : s.errFast;
    return { expected, scale: Math.max(1.25 * err, this.floor()), seasonal, known: seasonalOk, slot };
  }

  /** Learns from the point at `ts`; `e` must be `expect(ts)` of the same point, and `change` (if called) must come first. */
  update(ts: number, value: number, e: Expectation): void {
    const s = this.s;
    const p = this.p;
    if (s.n === 0) {
      s.fast = s.slow = value;
      s.lo = s.hi = value;
      s.n = 1;
      s.t0 = s.last = ts;
      return;
    }
    const fl = this.floor();
    const scaleF = Math.max(1.25 * s.errFast, fl);
    const scaleS = Math.max(1.25 * s.errSeason, fl);
    const eF = value - s.fast;
    const sPred = s.slow + s.offset[e.slot]!;
    const eS = value - sPred;
    // The first errors set the scale directly, then clipped EWMAs keep spikes from inflating it.
    const a = s.n < 20 ? 1 / (s.n + 1) : p.errAlpha;
    s.errFast += a * (Math.min(Math.abs(eF), p.clip * scaleF || Math.abs(eF)) - s.errFast);
    if (s.visits[e.slot]! >= p.minSlotVisits) s.errSeason += a * (Math.min(Math.abs(eS), p.clip * scaleS || Math.abs(eS)) - s.errSeason);
    else s.errSeason += a * (Math.min(Math.abs(eF), p.clip * scaleF || Math.abs(eF)) - s.errSeason);
    s.fast += p.fastAlpha * eF;
    // per unit of time; until the time constant has passed, the mean of everything so far
    const dt = Number.isFinite(s.last) ? Math.max(0, ts - s.last) : 0;
    const elapsed = Number.isFinite(s.t0) ? ts - s.t0 : Infinity;
    const sa0 = Math.max(1 - Math.exp(-dt / p.slowTauMs), elapsed > 0 ? dt / elapsed : 1);
    s.slow += sa0 * ((s.visits[e.slot]! >= 1 ? value - s.offset[e.slot]! : value) - s.slow);
    if (e.slot !== s.cur) {
      if (s.cur >= 0) s.runLen += 0.1 * (s.run - s.runLen);
      s.cur = e.slot;
      s.run = 0;
      if (s.visits[e.slot]! < MAX_VISITS) s.visits[e.slot]! += 1;
    }
    s.run++;
    // An offset learns about one slotAlpha per visit however many points a visit has, so it keeps
    // the slot's memory across days instead of tracking the last few points (which would look
    // accurate within a visit and be stale at the next one).
    const v = s.visits[e.slot]!;
    const perVisit = v <= 1 / p.slotAlpha ? 1 / v : p.slotAlpha;
    const sa = s.run === 1 && v === 1 ? 1 : perVisit / Math.max(1, s.runLen);
    // The slot's own scale, from its second visit (the first only sets the offset); float32 like the offsets.
    if (v >= 2) {
      const first = v === 2 && s.run === 1;
      const err = Math.abs(eS);
      const cap = s.es[e.slot]! > 0 ? p.clip * Math.max(1.25 * s.es[e.slot]!, fl) : err;
      s.es[e.slot] = Math.fround(first ? err : s.es[e.slot]! + sa * (Math.min(err, cap) - s.es[e.slot]!));
    }
    // float32 on purpose: the checkpoint stores 4 bytes per offset, and a restore must be exact
    // Huber-clipped once the slot has a scale, so the usual value of a spiky series stays near its body, not its mean
    const r = value - s.slow - s.offset[e.slot]!;
    const lim = v >= 3 && s.es[e.slot]! > 0 ? p.clip * Math.max(1.25 * s.es[e.slot]!, fl) : Infinity;
    s.offset[e.slot] = Math.fround(s.offset[e.slot]! + sa * Math.max(-lim, Math.min(lim, r)));
    if (value < s.lo) s.lo = value;
    if (value > s.hi) s.hi = value;
    s.n++;
    s.last = ts;
  }

  /**
   * One CUSUM step (see ChangeParams) for the point at `ts`, before `update` learns from it: the
   * change the point completes, if any, and the change that has now lasted `lastMs`, if any.
   */
  change(ts: number, value: number, e: Expectation): ChangeStep {
    const s = this.s;
    const c = this.p.change;
    const slot = e.slot;
    if (c.allowance <= 0 || s.n === 0 || s.visits[slot]! < c.visits || !Number.isFinite(s.last)) return NO_CHANGE;
    const fl = this.floor();
    const scale = Math.max(1.25 * s.es[slot]!, c.scaleFloor * Math.max(1.25 * s.errSeason, fl), fl);
    const z = Math.max(-c.clip, Math.min(c.clip, (value - s.slow - s.offset[slot]!) / scale));
    const w = Math.min(1, Math.max(0, ts - s.last) / c.unitMs);
    const cap = c.hold * c.threshold;
    const up = Math.min(cap, Math.max(0, s.cu + w * (z - c.allowance)));
    const down = Math.min(cap, Math.max(0, s.cd + w * (-z - c.allowance)));
    if (s.cu === 0 && up > 0) s.cuT = ts;
    if (s.cd === 0 && down > 0) s.cdT = ts;
    s.cu = up;
    s.cd = down;
    if (up === 0) s.cuArmed = true;
    if (down === 0) s.cdArmed = true;
    let change: Change | null = null;
    if (up > c.threshold && s.cuArmed) {
      s.cuArmed = false;
      change = { dir: 1, since: s.cuT, z };
    } else if (down > c.threshold && s.cdArmed) {
      s.cdArmed = false;
      change = { dir: -1, since: s.cdT, z };
    }
    const upLasted = this.lasting(ts, up, 'cuX');
    const downLasted = this.lasting(ts, down, 'cdX');
    const lasted: Change | null = upLasted ? { dir: 1, since: s.cuT, z } : downLasted ? { dir: -1, since: s.cdT, z } : null;
    return change === null && lasted === null ? NO_CHANGE : { change, lasted };
  }

  /** One sum's lasting watch (its state `key`: since when it has been above the threshold, or BELOW, LASTED): whether it has lasted at this point. */
  private lasting(ts: number, sum: number, key: 'cuX' | 'cdX'): boolean {
    const s = this.s;
    const x = s[key];
    // re-armed only at 0, as the report is: a change that lasted is reported once
    if (sum === 0) s[key] = BELOW;
    else if (x === LASTED) return false;
    // the sum fell back under the threshold before it had lasted: a burst, not a change
    else if (sum <= this.p.change.threshold) s[key] = BELOW;
    else if (x === BELOW) s[key] = ts;
    if (s[key] < 0 || ts - s[key] < this.p.change.lastMs) return false;
    s[key] = LASTED;
    return true;
  }
}
