/**
 * A series that stops moving: the same value, exactly, for longer than it has ever held one before.
 * A sensor stuck on its last reading, an agent answering from a frozen cache, a poller repeating its
 * last result - the series is not high or low, it is dead, and no deviation rule sees it. The series'
 * own longest run is the yardstick (a speed rounded to whole km/h repeats a value 3 or 4 times by
 * chance; an error counter sits at 0 for hours), so the rule needs nothing per kind:
 *
 * - reported when the current run of one value is longer than `factor` x the longest run completed
 *   before it, and at least `minRun` points, once per run;
 * - never for a series that has not varied (`minRuns` completed runs first: a constant is not stuck);
 * - never at or below the lowest value seen before the run began: a series resting at its floor (an
 *   idle link at 0, a count with nothing to count) is quiet, not frozen, and a new low is the other
 *   rules' business.
 */

export interface FlatlineParams {
  /** The run must exceed this multiple of the longest run before it (0 = off). */
  readonly factor: number;
  /** Shortest run reported, in points. */
  readonly minRun: number;
  /** Completed runs (value changes) needed before any report. */
  readonly minRuns: number;
}

export const DEFAULT_FLATLINE: FlatlineParams = { factor: 2, minRun: 6, minRuns: 50 };

/** Checkpoint form (older ones also held the lowest value seen, now the baseline's: ignored). */
export interface FlatlineState {
  /** Current run: its value, length in points, first timestamp, the series' lowest value before it, reported. */
  v: number | null;
  r: number;
  t: number;
  lo: number | null;
  told: boolean;
  /** Longest completed run, and completed runs (capped at minRuns). */
  rec: number;
  runs: number;
}

/** A run reported: the value held, since when, for how many points, and the longest run before it. */
export interface Flatline {
  readonly value: number;
  readonly since: number;
  readonly points: number;
  readonly record: number;
}

export function newFlatlineState(): FlatlineState {
  return { v: null, r: 0, t: 0, lo: null, told: false, rec: 0, runs: 0 };
}

export class FlatlineWatch {
  readonly s: FlatlineState;

  constructor(readonly p: FlatlineParams = DEFAULT_FLATLINE, state?: FlatlineState) {
    if (state !== undefined) {
      const nums = [state.r, state.t, state.rec, state.runs];
      const nullable = [state.v, state.lo];
      if (!nums.every(Number.isFinite) || !nullable.every((x) => x === null || Number.isFinite(x)) || typeof state.told !== 'boolean') throw new Error('flatline state: corrupt');
    }
    this.s = state ? { v: state.v, r: state.r, t: state.t, lo: state.lo, told: state.told, rec: state.rec, runs: state.runs } : newFlatlineState();
  }

  /**
   * Learns from the point; when `judge`, reports a run that has just become too long. `lowest` is
   * the lowest value the series showed before this point (the baseline keeps it; null before any).
   */
  step(ts: number, value: number, judge: boolean, lowest: number | null): Flatline | null {
    const s = this.s;
    if (s.v === value) s.r++;
    else {
      if (s.v !== null) {
        s.rec = Math.max(s.rec, s.r);
        s.runs = Math.min(this.p.minRuns, s.runs + 1);
      }
      s.v = value;
      s.r = 1;
      s.t = ts;
      s.lo = lowest;
      s.told = false;
    }
    if (!judge || s.told || this.p.factor <= 0 || s.runs < this.p.minRuns) return null;
    if (s.lo === null || value <= s.lo) return null;
    if (s.r < this.p.minRun || s.r <= this.p.factor * s.rec) return null;
    s.told = true;
    return { value, since: s.t, points: s.r, record: s.rec };
  }
}
