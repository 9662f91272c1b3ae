import { SLOTS } from './baseline.js';

/**
 * A series that goes quiet when it never does: resting at its floor (a count at 0, a whole-percent
 * CPU at its idle value, a link at no traffic) at an hour of the week where it is rarely there. A log source that stopped,
 * an error counter whose collector died, a service whose CPU fell to idle in the busy hour: the
 * value is low, but a low count's 0 is only a sigma or two below its level, so no deviation rule
 * and no shape sees it. What makes the silence strange is how seldom this hour rests at the floor:
 *
 * - each hour of the week (the baseline's 48 slots) keeps the share of its points at the floor
 *   (exactly the lowest value seen before), learnt per visit of the slot like
 *   the baseline's offsets: a night that is often at 0 says little, a busy hour that never is says a lot;
 * - a spell at the floor gathers evidence −ln(share) per `unitMs` of time (at least `minShare`,
 *   so one point cannot be infinite evidence; per unit of time so a 10-s poll is not 30 times as sure
 *   as a 5-min one; no evidence from a slot seen fewer than `minVisits` times, nor from one at the
 *   floor more than `maxShare` of the time: there zeros come in clumps, and -ln of a large share
 *   summed over a long spell would count each clump as independent luck);
 * - reported once per spell when its evidence passes `minEvidence` and `factor` x the most any
 *   spell gathered before (the series' own quietest-looking ordinary spells are the yardstick,
 *   as in flatline.ts: zeros that come in clumps raise it).
 */

export interface SilenceParams {
  /** A spell must gather more than this multiple of the record evidence (0 = off). */
  readonly factor: number;
  /** Evidence (nats) a spell needs at least. */
  readonly minEvidence: number;
  /** Share of a slot's points at the floor below which it counts as this (caps the evidence per unit). */
  readonly minShare: number;
  /** A slot at the floor more than this share of the time gives no evidence (zeros there come in clumps). */
  readonly maxShare: number;
  /** Visits a slot needs before a spell in it gathers evidence. */
  readonly minVisits: number;
  /** Per-visit learning rate of a slot's share, once it has 1/slotAlpha visits (the mean of the visits before). */
  readonly slotAlpha: number;
  /** Time unit of the evidence (ms): a point carries min(1, Δt / unitMs) of its −ln(share). */
  readonly unitMs: number;
}

export const DEFAULT_SILENCE: SilenceParams = { factor: 2, minEvidence: 20, minShare: 1e-3, maxShare: 0.25, minVisits: 3, slotAlpha: 0.1, unitMs: 300_000 };

/**
 * Checkpoint form, every number exact. The slots are one base64 string (72 bytes): per slot its share
 * at the floor as a log code (uint8: share = exp(−code / 32), kept quantised in memory so a restore is
 * exact; fine where it matters, at small shares), then its visits (4 bits, capped at 15). The lowest
 * value and the time of the last point are the baseline's (the detector passes them).
 */
export interface SilenceState {
  sl: string;
  /** Current visit: its slot, points, points at the floor. */
  cs: number;
  cn: number;
  cf: number;
  /** Current spell at the floor: evidence, start, points, reported. */
  ev: number;
  t: number;
  n: number;
  told: boolean;
  /** Most evidence any completed spell gathered. */
  rec: number;
}

/** What the series showed before this point: its lowest value, and the time of its last point (null before the first); and this point's slot. */
export interface SeenBefore {
  readonly lo: number;
  readonly last: number | null;
  readonly slot: number;
}

/** A spell reported: since when, for how many points, its evidence, the record before it, and the share of this hour at the floor. */
export interface Silence {
  readonly floor: number;
  readonly since: number;
  readonly points: number;
  readonly evidence: number;
  readonly record: number;
  readonly share: number;
}

const CODE_SCALE = 32;
const MAX_VISITS = 15;

function shareOf(code: number): number {
  return Math.exp(-code / CODE_SCALE);
}

function codeOf(share: number): number {
  return share <= 0 ? 255 : Math.min(255, Math.max(0, Math.round(-CODE_SCALE * Math.log(share))));
}

export class SilenceWatch {
  /** Per slot: share code (uint8), visits (capped). */
  private readonly code: Uint8Array;
  private readonly visits: Uint8Array;
  private cs: number;
  private cn: number;
  private cf: number;
  private ev: number;
  private t: number;
  private n: number;
  private told: boolean;
  private rec: number;

  constructor(readonly p: SilenceParams = DEFAULT_SILENCE, state?: SilenceState) {
    this.code = new Uint8Array(SLOTS);
    this.visits = new Uint8Array(SLOTS);
    if (state !== undefined) {
      const sl = Buffer.from(String(state.sl), 'base64');
      const nums = [state.cs, state.cn, state.cf, state.ev, state.t, state.n, state.rec];
      const slotOk = Number.isInteger(state.cs) && state.cs >= -1 && state.cs < SLOTS;
      if (sl.length !== SLOTS + SLOTS / 2 || !nums.every(Number.isFinite) || !slotOk || typeof state.told !== 'boolean') throw new Error('silence state: corrupt');
      for (let i = 0; i < SLOTS; i++) {
        this.code[i] = sl[i]!;
        this.visits[i] = (sl[SLOTS + (i >> 1)]! >> (4 * (i & 1))) & 0xf;
      }
    }
    this.cs = state?.cs ?? -1;
    this.cn = state?.cn ?? 0;
    this.cf = state?.cf ?? 0;
    this.ev = state?.ev ?? 0;
    this.t = state?.t ?? 0;
    this.n = state?.n ?? 0;
    this.told = state?.told ?? false;
    this.rec = state?.rec ?? 0;
  }

  /** Learns from the point; when `judge`, reports a spell at the floor that has just become too strange. */
  step(ts: number, value: number, judge: boolean, seen: SeenBefore): Silence | null {
    const p = this.p;
    if (p.factor <= 0) return null;
    const slot = seen.slot;
    if (slot !== this.cs) this.closeVisit(slot);
    const floor = seen.lo;
    // exactly the lowest value seen before: a count at 0, an idle link; a gauge falling to new lows is the other rules' business
    const atFloor = value === floor;
    const dt = seen.last === null ? 0 : Math.max(0, ts - seen.last);
    let out: Silence | null = null;
    if (atFloor) {
      if (this.n === 0) this.t = ts;
      this.n++;
      const share = shareOf(this.code[slot]!);
      if (this.visits[slot]! >= p.minVisits && share <= p.maxShare) this.ev += Math.min(1, dt / p.unitMs) * -Math.log(Math.max(p.minShare, share));
      if (judge && !this.told && this.ev > p.minEvidence && this.ev > p.factor * this.rec) {
        this.told = true;
        out = { floor, since: this.t, points: this.n, evidence: this.ev, record: this.rec, share: shareOf(this.code[slot]!) };
      }
    } else if (this.n > 0) {
      this.rec = Math.max(this.rec, this.ev);
      this.ev = 0;
      this.n = 0;
      this.told = false;
    }
    this.cn++;
    if (atFloor) this.cf++;
    return out;
  }

  /** The visit of the previous slot ends: its share of points at the floor teaches that slot. */
  private closeVisit(next: number): void {
    if (this.cs >= 0 && this.cn > 0) {
      const v = Math.min(MAX_VISITS, this.visits[this.cs]! + 1);
      this.visits[this.cs] = v;
      const a = Math.max(this.p.slotAlpha, 1 / v);
      const old = v === 1 ? 0 : shareOf(this.code[this.cs]!);
      this.code[this.cs] = codeOf(old + a * (this.cf / this.cn - old));
    }
    this.cs = next;
    this.cn = 0;
    this.cf = 0;
  }

  toJSON(): SilenceState {
    const sl = Buffer.alloc(SLOTS + SLOTS / 2);
    for (let i = 0; i < SLOTS; i++) {
      sl[i] = this.code[i]!;
      sl[SLOTS + (i >> 1)]! |= this.visits[i]! << (4 * (i & 1));
    }
    return { sl: sl.toString('base64'), cs: this.cs, cn: this.cn, cf: this.cf, ev: this.ev, t: this.t, n: this.n, told: this.told, rec: this.rec };
  }
}
