/**
 * The cheap, robust layer every series gets: two competing one-step predictors (a fast EWMA level,
 * and a slow level plus an hour-of-day × weekday/weekend offset), each with a clipped EWMA of its
 * absolute error; the one that has been predicting better is the baseline. O(1) per point, a few
 * hundred numbers of state.
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
  /** Slow level under the seasonal offsets (per point). */
  readonly slowAlpha: number;
  /** Seasonal offset smoothing (per visit of a slot). */
  readonly slotAlpha: number;
  /** Error-scale smoothing (per point). */
  readonly errAlpha: number;
  /** Errors are clipped at this many scales before they update the scale (spikes must not widen it). */
  readonly clip: number;
  /** Visits a slot needs before the seasonal predictor may be used. */
  readonly minSlotVisits: number;
}

export const DEFAULT_BASELINE: BaselineParams = {
  fastAlpha: 0.2,
  slowAlpha: 0.005,
  slotAlpha: 0.4,
  errAlpha: 0.01,
  clip: 4,
  minSlotVisits: 3,
};

/** What the baseline expected of the point just seen, before learning from it. */
export interface Expectation {
  readonly expected: number;
  /** One robust scale unit (about one standard deviation of the one-step error). */
  readonly scale: number;
  readonly seasonal: boolean;
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
}

/**
 * Checkpoint form of the baseline (smaller than BaselineState as JSON): the offsets as base64
 * float32 (they are kept float32-exact, so a restore is exact), the visits as base64 uint16 (they
 * saturate at 65535). Arrays are still accepted from older checkpoints.
 */
export interface BaselineJSON extends Omit<BaselineState, 'offset' | 'visits'> {
  offset: string | number[];
  visits: string | number[];
}

const MAX_VISITS = 65535;

export function baselineToJSON(s: BaselineState): BaselineJSON {
  return { ...s, offset: Buffer.from(Float32Array.from(s.offset).buffer).toString('base64'), visits: Buffer.from(Uint16Array.from(s.visits).buffer).toString('base64') };
}

function unpack(x: string | number[] | undefined, bytes: 4 | 2, what: string): number[] {
  if (Array.isArray(x)) return x.slice();
  if (typeof x !== 'string') throw new Error(`baseline ${what}: missing`);
  const b = Buffer.from(x, 'base64');
  if (b.length !== SLOTS * bytes) throw new Error(`baseline ${what}: ${b.length} bytes, expected ${SLOTS * bytes}`);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
  return Array.from(bytes === 4 ? new Float32Array(ab) : new Uint16Array(ab));
}

/** Inverse of baselineToJSON; throws on a corrupt state. Infinity does not survive JSON (null): the empty range is restored. */
export function baselineFromJSON(j: BaselineJSON): BaselineState {
  const offset = unpack(j.offset, 4, 'offsets');
  const visits = unpack(j.visits, 2, 'visits');
  if (offset.length !== SLOTS || visits.length !== SLOTS) throw new Error(`baseline: ${offset.length} offsets and ${visits.length} visits, expected ${SLOTS}`);
  return { ...j, lo: j.lo ?? Infinity, hi: j.hi ?? -Infinity, offset, visits };
}

export class Baseline {
  s: BaselineState;
  constructor(readonly p: BaselineParams = DEFAULT_BASELINE, state?: BaselineState) {
    this.s = state ?? { n: 0, fast: 0, slow: 0, errFast: 0, errSeason: 0, lo: Infinity, hi: -Infinity, offset: new Array(SLOTS).fill(0), visits: new Array(SLOTS).fill(0), cur: -1, run: 0, runLen: 1 };
  }

  /** Range of values seen (all time): a floor for the scale so flat series do not divide by zero. */
  get range(): number {
    return this.s.hi > this.s.lo ? this.s.hi - this.s.lo : 0;
  }

  floor(): number {
    return Math.max(1e-3 * this.range, 1e-9 * Math.abs(this.s.fast), 1e-12);
  }

  /** The prediction for a point at `ts`, from what was seen before it. */
  expect(ts: number): Expectation {
    const s = this.s;
    const slot = seasonSlot(ts);
    if (s.n === 0) return { expected: NaN, scale: NaN, seasonal: false, slot };
    const seasonalOk = s.visits[slot]! >= this.p.minSlotVisits && s.n > 2 * SLOTS;
    const seasonal = seasonalOk && s.errSeason < s.errFast * 0.9;
    const expected = seasonal ? s.slow + s.offset[slot]! : s.fast;
    const err = seasonal ? s.errSeason : s.errFast;
    return { expected, scale: Math.max(1.25 * err, this.floor()), seasonal, slot };
  }

  /** Learns from the point; `e` must be `expect(ts)` of the same point. */
  update(value: number, e: Expectation): void {
    const s = this.s;
    const p = this.p;
    if (s.n === 0) {
      s.fast = s.slow = value;
      s.lo = s.hi = value;
      s.n = 1;
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
    s.slow += p.slowAlpha * (value - s.slow);
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
    // float32 on purpose: the checkpoint stores 4 bytes per offset, and a restore must be exact
    s.offset[e.slot] = Math.fround(s.offset[e.slot]! + sa * (value - s.slow - s.offset[e.slot]!));
    if (value < s.lo) s.lo = value;
    if (value > s.hi) s.hi = value;
    s.n++;
  }
}
