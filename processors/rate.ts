import { createHash } from 'node:crypto';
import type { Labels, NetEvent, Sample, SampleBatch, Severity } from '../core/types.js';
import { counter } from '../core/metrics.js';

/**
 * Counters to rates: a pure operator (no I/O). Feed it raw SNMP batches (one poll of one device) in
 * order; it returns per-second rates, utilisation and events. Its state is small, JSON-serialisable
 * and checkpointed by the processor runner (toJSON / RateState.fromJSON).
 *
 * Rules (the NOC's, as LibreNMS and Cacti apply them):
 * - 64-bit ifHC* counters win over the 32-bit ones of the same interface when both are present.
 * - A 32-bit decrease is corrected as a wrap only when the corrected delta fits the line speed over the
 *   interval; otherwise (or with no known speed) the series is reseeded and no rate is produced.
 * - When the line speed allows a 32-bit counter one more wrap over the interval than its values show (a
 *   10G link's octets in 3.4 s, a 1G link's in 34 s: a late or missed poll), the fewest wraps stand
 *   unless the counter's last rate says more: then the count of wraps whose delta is nearest what that
 *   rate gives, if within a quarter of a wrap of it, and otherwise no rate (counted as ambiguous_wrap),
 *   rather than a collapse that never happened.
 * - A 64-bit decrease is a counter reset (cleared counters, agent restart): reseed, no rate.
 * - A sysUpTime decrease that is not the 497-day TimeTicks wrap is a reboot: event, reseed the whole
 *   device, no spike.
 * - Bit rates are clamped to line speed; utilisation is bits / speed per direction.
 * - A sample whose ts is not after the previous one of its interface is dropped (and counted), so a
 *   replay or a clock step never yields negative or infinite rates.
 */

export interface RateResult {
  readonly samples: Sample[];
  readonly events: NetEvent[];
}

type Kind = 'bits' | 'pkts' | 'errs';

interface CounterDef {
  /** Short code used in the checkpoint. */
  readonly code: string;
  readonly metric: string;
  readonly out: string;
  readonly bits: 32 | 64;
  readonly kind: Kind;
  /** Slot of the 64-bit counter that replaces this 32-bit one when present; -1 for none. */
  readonly preferred: number;
  /** Utilisation output for bit rates. */
  readonly util?: string;
}

/**
 * The counters, one slot each (the index in this table): an interface keeps its previous values in a
 * fixed array indexed by slot, so the hot path does no string-keyed lookups beyond one metric -> slot.
 */
const COUNTERS: readonly CounterDef[] = [
  { code: 'hi', metric: 'ifHCInOctets', out: 'if_in_bps', bits: 64, kind: 'bits', preferred: -1, util: 'if_in_util_pct' },
  { code: 'ho', metric: 'ifHCOutOctets', out: 'if_out_bps', bits: 64, kind: 'bits', preferred: -1, util: 'if_out_util_pct' },
  { code: 'li', metric: 'ifInOctets', out: 'if_in_bps', bits: 32, kind: 'bits', preferred: 0, util: 'if_in_util_pct' },
  { code: 'lo', metric: 'ifOutOctets', out: 'if_out_bps', bits: 32, kind: 'bits', preferred: 1, util: 'if_out_util_pct' },
  { code: 'hp', metric: 'ifHCInUcastPkts', out: 'if_in_pps', bits: 64, kind: 'pkts', preferred: -1 },
  { code: 'hq', metric: 'ifHCOutUcastPkts', out: 'if_out_pps', bits: 64, kind: 'pkts', preferred: -1 },
  { code: 'lp', metric: 'ifInUcastPkts', out: 'if_in_pps', bits: 32, kind: 'pkts', preferred: 4 },
  { code: 'lq', metric: 'ifOutUcastPkts', out: 'if_out_pps', bits: 32, kind: 'pkts', preferred: 5 },
  { code: 'ie', metric: 'ifInErrors', out: 'if_in_errors_ps', bits: 32, kind: 'errs', preferred: -1 },
  { code: 'oe', metric: 'ifOutErrors', out: 'if_out_errors_ps', bits: 32, kind: 'errs', preferred: -1 },
  { code: 'id', metric: 'ifInDiscards', out: 'if_in_discards_ps', bits: 32, kind: 'errs', preferred: -1 },
  { code: 'od', metric: 'ifOutDiscards', out: 'if_out_discards_ps', bits: 32, kind: 'errs', preferred: -1 },
];
const NSLOTS = COUNTERS.length;

/** The rates derived here from counters of rare events (errors, discards): counts per second, whatever their values. */
export const ERROR_RATES: readonly string[] = [...new Set(COUNTERS.filter((d) => d.kind === 'errs').map((d) => d.out))];
/** Metric classes beyond the counter slots (0..NSLOTS-1). */
const HIGH_SPEED = NSLOTS;
const SPEED = NSLOTS + 1;
const OPER_STATUS = NSLOTS + 2;
const ADMIN_STATUS = NSLOTS + 3;
const SYS_UPTIME = NSLOTS + 4;
const OTHER = -1;

const CLASS_OF = new Map<string, number>([
  ...COUNTERS.map((d, i) => [d.metric, i] as [string, number]),
  ['ifHighSpeed', HIGH_SPEED],
  ['ifSpeed', SPEED],
  ['ifOperStatus', OPER_STATUS],
  ['ifAdminStatus', ADMIN_STATUS],
  ['sysUpTime', SYS_UPTIME],
]);
const SLOT_OF_CODE = new Map<string, number>(COUNTERS.map((d, i) => [d.code, i]));

const TWO32 = 4294967296;
/**
 * A last rate lower than this cannot move a delta off the fewest wraps within a day (it would need half
 * a wrap, 2^31, in the interval), which is what an unknown rate gives: checkpoints leave such rates out
 * (an idle port's octets, nearly every error and discard counter).
 */
const RATE_WORTH_KEEPING = 2 ** 31 / 86_400;
/** Slack over line speed before a wrap-corrected delta is called implausible (counter sampling jitter). */
const SPEED_SLACK = 1.1;
/** Smallest frame on the wire (64 B + preamble + gap = 84 B): the most packets per second a link carries. */
const MIN_FRAME_BITS = 84 * 8;

const OPER: Readonly<Record<number, string>> = { 1: 'up', 2: 'down', 3: 'testing', 4: 'unknown', 5: 'dormant', 6: 'notPresent', 7: 'lowerLayerDown' };

const discontinuities = counter('noctua_rate_discontinuities_total', 'Counter samples that produced no rate, by reason', ['reason']);
const clampedTotal = counter('noctua_rate_clamped_total', 'Rates clamped to line speed');

/**
 * Checkpoint (v1) per interface: [ts, operStatus, adminStatus, name, counters by code, 32-bit counters'
 * last rates by code (absent when none is known or worth keeping)]. Arrays keep checkpoints compact.
 */
type IfStateJSON = [number, number, number, string, Record<string, number>] | [number, number, number, string, Record<string, number>, Record<string, number>];
/** Checkpoint (v1) per device: [sysUpTime ticks, its ts, interfaces by ifIndex]. */
type DevStateJSON = [number, number, Record<string, IfStateJSON>];

/** One interface between polls. `fresh` means no previous poll to compute rates from (new, renamed, reseeded). */
class IfState {
  ts = -1;
  oper = 0;
  admin = 0;
  name = '';
  fresh = true;
  /** Sequence number of the last batch that named this ifIndex (a grouping and forgetting mark, not state). */
  seen = -1;
  /** Previous counter values by slot; NaN when the last poll had none. */
  readonly prev: number[] = new Array<number>(NSLOTS).fill(NaN);
  /** 32-bit counters' last rate (counter units per second) by slot, to count the wraps of a long interval; NaN when unknown. */
  readonly rate: number[] = new Array<number>(NSLOTS).fill(NaN);

  reset(): void {
    this.ts = -1;
    this.oper = 0;
    this.admin = 0;
    this.name = '';
    this.fresh = true;
    this.prev.fill(NaN);
    this.rate.fill(NaN);
  }
}

class DevState {
  up = -1;
  upTs = -1;
  readonly ifs = new Map<string, IfState>();
  /** A lower bound of every interface's ts: no interface can be due for forgetting before newest - minTs > forgetAfterMs. */
  minTs = Infinity;
}

export interface RateOptions {
  /** Forget an interface not seen for this long (ms of event time): it was removed or renumbered. */
  readonly forgetAfterMs?: number;
}

export interface RateStats {
  outOfOrder: number;
  wraps: number;
  /** 32-bit deltas left without a rate: the link could have wrapped the counter more than once, and its last rate does not say how often. */
  ambiguous: number;
  resets: number;
  reboots: number;
  clamped: number;
}

export class RateState {
  private devices = new Map<string, DevState>();
  readonly stats: RateStats = { outOfOrder: 0, wraps: 0, ambiguous: 0, resets: 0, reboots: 0, clamped: 0 };
  private readonly forgetAfterMs: number;
  private seq = 0;
  // Scratch reused across batches (the operator is single-threaded; nothing here outlives process()).
  /** Indices of the batch's interface samples, grouped by interface. */
  private order = new Int32Array(256);
  /** Metric class of each entry of `order`. */
  private classes = new Int8Array(256);
  /** Per interface group: its range in `order`, its state. */
  private runLo: number[] = [];
  private runState: IfState[] = [];
  private runIdx: string[] = [];
  private readonly cur = new Float64Array(NSLOTS);
  private readonly seenGen = new Int32Array(NSLOTS);
  private readonly storedGen = new Int32Array(NSLOTS);
  private readonly slotOrder = new Int8Array(NSLOTS);
  private gen = 0;

  constructor(opts: RateOptions = {}) {
    this.forgetAfterMs = opts.forgetAfterMs ?? 3_600_000;
  }

  /** Number of interfaces tracked (for self-metrics and tests). */
  get size(): number {
    let n = 0;
    for (const d of this.devices.values()) n += d.ifs.size;
    return n;
  }

  process(batch: SampleBatch): RateResult {
    const out: Sample[] = [];
    const events: NetEvent[] = [];
    const seq = ++this.seq;
    let dev = this.devices.get(batch.device);
    if (!dev) {
      dev = new DevState();
      this.devices.set(batch.device, dev);
    }
    const ss = batch.samples;
    const n = ss.length;
    if (this.order.length < n) {
      this.order = new Int32Array(n * 2);
      this.classes = new Int8Array(n * 2);
    }
    const order = this.order;
    const classes = this.classes;
    const runLo = this.runLo;
    const runState = this.runState;
    const runIdx = this.runIdx;

    // Pass 1: classify, find sysUpTime (device-wide), and group by interface. Pollers emit an
    // interface's samples together, so a group is a run; an ifIndex seen again after another one
    // (a batch from elsewhere, shuffled) switches to grouping through a Map.
    let up = -1;
    let nOrder = 0;
    let nRuns = 0;
    let contiguous = true;
    let lastLabels: Labels | undefined;
    let lastIdx: string | undefined;
    let runIfIndex: string | undefined;
    for (let i = 0; i < n; i++) {
      const s = ss[i]!;
      const c = CLASS_OF.get(s.metric) ?? OTHER;
      if (c === SYS_UPTIME) {
        up = i;
        continue;
      }
      const L = s.labels;
      if (L !== lastLabels) {
        lastLabels = L;
        lastIdx = L.ifIndex;
      }
      if (lastIdx === undefined) continue;
      if (lastIdx !== runIfIndex) {
        runIfIndex = lastIdx;
        let st = dev.ifs.get(lastIdx);
        if (st === undefined) dev.ifs.set(lastIdx, (st = new IfState()));
        else if (st.seen === seq) contiguous = false;
        st.seen = seq;
        runLo[nRuns] = nOrder;
        runState[nRuns] = st;
        runIdx[nRuns] = lastIdx;
        nRuns++;
      }
      order[nOrder] = i;
      classes[nOrder] = c;
      nOrder++;
    }
    if (!contiguous) nRuns = this.regroup(ss, nOrder, dev);
    runLo[nRuns] = nOrder;

    if (up >= 0 && Number.isFinite(ss[up]!.value)) {
      const u = ss[up]!;
      if (dev.upTs >= 0 && u.ts > dev.upTs && u.value < dev.up && !isUptimeWrap(dev.up, dev.upTs, u.value, u.ts)) {
        this.stats.reboots++;
        discontinuities.inc({ reason: 'reboot' });
        events.push(makeEvent(batch.device, u.ts, 'reboot', 'warning', `${batch.device} rebooted (sysUpTime went from ${ticks(dev.up)} to ${ticks(u.value)})`, {
          previousUpTime: dev.up,
          upTime: u.value,
        }));
        // Reseed every counter of the device: the old values belong to the previous boot. Interfaces
        // absent from this poll are dropped; those in it start over.
        for (const [k, st] of dev.ifs) {
          if (st.seen !== seq) dev.ifs.delete(k);
          else st.reset();
        }
        dev.minTs = Infinity;
      }
      if (u.ts > dev.upTs) {
        dev.up = u.value;
        dev.upTs = u.ts;
      }
    }

    for (let r = 0; r < nRuns; r++) this.processInterface(batch.device, runIdx[r]!, runState[r]!, ss, runLo[r]!, runLo[r + 1]!, dev, out, events);
    runState.fill(undefined as unknown as IfState, 0, nRuns); // do not keep states of forgotten interfaces alive

    const newest = batch.ts;
    if (newest - dev.minTs > this.forgetAfterMs) {
      let min = Infinity;
      for (const [k, st] of dev.ifs) {
        if (st.seen !== seq && newest - st.ts > this.forgetAfterMs) dev.ifs.delete(k);
        else if (st.ts < min) min = st.ts;
      }
      dev.minTs = min;
    }
    return { samples: out, events };
  }

  /** The slow path of pass 1: the batch interleaves interfaces; group its interface samples by ifIndex in first-seen order. */
  private regroup(ss: readonly Sample[], nOrder: number, dev: DevState): number {
    const groups = new Map<string, number[]>();
    for (let j = 0; j < nOrder; j++) {
      const idx = ss[this.order[j]!]!.labels.ifIndex!;
      let g = groups.get(idx);
      if (!g) groups.set(idx, (g = []));
      g.push(this.order[j]!, this.classes[j]!);
    }
    let nRuns = 0;
    let k = 0;
    for (const [idx, g] of groups) {
      this.runLo[nRuns] = k;
      this.runState[nRuns] = dev.ifs.get(idx)!;
      this.runIdx[nRuns] = idx;
      nRuns++;
      for (let j = 0; j < g.length; j += 2) {
        this.order[k] = g[j]!;
        this.classes[k] = g[j + 1]!;
        k++;
      }
    }
    return nRuns;
  }

  private processInterface(device: string, ifIndex: string, st: IfState, ss: readonly Sample[], lo: number, hi: number, dev: DevState, out: Sample[], events: NetEvent[]): void {
    const first = ss[this.order[lo]!]!;
    const labels: Labels = first.labels;
    const ts = first.ts;
    const name = labels.ifName ?? labels.ifDescr ?? '';
    if (!st.fresh && st.name !== name) st.reset(); // ifIndex now names another interface: start over
    if (!st.fresh && ts <= st.ts) {
      this.stats.outOfOrder++;
      discontinuities.inc({ reason: 'out_of_order' });
      return;
    }

    // This poll's values: the last finite one per metric; counters in first-seen order (the output order).
    const gen = ++this.gen;
    const cur = this.cur;
    const seenGen = this.seenGen;
    const slotOrder = this.slotOrder;
    const order = this.order;
    const classes = this.classes;
    let nSlots = 0;
    let high = NaN;
    let low = NaN;
    let oper = 0;
    let admin = 0;
    for (let j = lo; j < hi; j++) {
      const c = classes[j]!;
      if (c === OTHER) continue;
      const v = ss[order[j]!]!.value;
      if (!Number.isFinite(v)) continue;
      if (c < NSLOTS) {
        if (seenGen[c] !== gen) {
          seenGen[c] = gen;
          slotOrder[nSlots++] = c;
        }
        cur[c] = v;
      } else if (c === HIGH_SPEED) high = v;
      else if (c === SPEED) low = v;
      else if (c === OPER_STATUS) oper = v;
      else if (c === ADMIN_STATUS) admin = v;
    }
    const speed = high > 0 ? high * 1e6 : low > 0 && low < TWO32 - 1 ? low : undefined;

    if (!st.fresh && oper !== 0 && st.oper !== 0 && oper !== st.oper) {
      const severity: Severity = oper === 1 ? 'info' : admin === 2 ? 'info' : 'major';
      const what = `${name || 'ifIndex ' + ifIndex} oper-status ${OPER[st.oper] ?? st.oper} -> ${OPER[oper] ?? oper}${admin === 2 ? ' (admin down)' : ''}`;
      events.push(makeEvent(device, ts, 'oper-status', severity, `${device} ${what}`, {
        ifIndex, ifName: name, from: OPER[st.oper] ?? String(st.oper), to: OPER[oper] ?? String(oper), adminStatus: OPER[admin] ?? String(admin),
      }));
    }

    const prevs = st.prev;
    const storedGen = this.storedGen;
    const dt = st.fresh ? 0 : (ts - st.ts) / 1000;
    for (let k = 0; k < nSlots; k++) {
      const slot = slotOrder[k]!;
      const def = COUNTERS[slot]!;
      if (def.preferred >= 0 && seenGen[def.preferred] === gen) continue;
      const v = cur[slot]!;
      const prev = prevs[slot]!;
      prevs[slot] = v;
      storedGen[slot] = gen;
      if (prev !== prev) continue; // NaN: no previous value
      let delta = v - prev;
      const most = def.bits === 32 ? mostDelta(def.kind, speed, dt) : 0;
      if (delta < 0) {
        if (def.bits === 32 && delta + TWO32 <= most) {
          delta += TWO32;
          this.stats.wraps++;
        } else {
          // Not a wrap we can prove (64-bit counters do not wrap in a lifetime): a reset. Reseed.
          this.stats.resets++;
          discontinuities.inc({ reason: def.bits === 32 ? 'implausible_wrap' : 'reset' });
          st.rate[slot] = NaN;
          continue;
        }
      }
      if (delta + TWO32 <= most) {
        // The link could have wrapped the counter once more (or more) unseen: count its wraps from its last rate.
        const expected = st.rate[slot]! * dt;
        if (expected === expected) {
          const k = Math.max(0, Math.round((expected - delta) / TWO32));
          const nearest = delta + k * TWO32;
          if (k > 0 && (nearest > most || Math.abs(nearest - expected) > TWO32 / 4)) {
            this.stats.ambiguous++;
            discontinuities.inc({ reason: 'ambiguous_wrap' });
            st.rate[slot] = NaN;
            continue;
          }
          delta = nearest;
          this.stats.wraps += k;
        }
      }
      if (def.bits === 32) st.rate[slot] = delta / dt;
      let rate = (def.kind === 'bits' ? delta * 8 : delta) / dt;
      const max = speed === undefined ? undefined : def.kind === 'bits' ? speed : speed / MIN_FRAME_BITS;
      if (max !== undefined && rate > max) {
        rate = max;
        this.stats.clamped++;
        clampedTotal.inc();
      }
      out.push({ metric: def.out, labels, ts, value: rate });
      if (def.util !== undefined && speed !== undefined) out.push({ metric: def.util, labels, ts, value: (rate / speed) * 100 });
    }
    // A counter missing from this poll has no previous value for the next one.
    for (let slot = 0; slot < NSLOTS; slot++) if (storedGen[slot] !== gen) prevs[slot] = st.rate[slot] = NaN;
    st.ts = ts;
    st.oper = oper;
    st.admin = admin;
    st.name = name;
    st.fresh = false;
    if (ts < dev.minTs) dev.minTs = ts;
  }

  toJSON(): { v: 1; d: Record<string, DevStateJSON> } {
    const d: Record<string, DevStateJSON> = {};
    for (const [device, dev] of this.devices) {
      const ifs: Record<string, IfStateJSON> = {};
      for (const [ifIndex, st] of dev.ifs) {
        if (st.fresh) continue;
        const counters: Record<string, number> = {};
        let rates: Record<string, number> | undefined;
        for (let slot = 0; slot < NSLOTS; slot++) {
          const v = st.prev[slot]!;
          if (v === v) counters[COUNTERS[slot]!.code] = v;
          const r = st.rate[slot]!;
          if (r >= RATE_WORTH_KEEPING) (rates ??= {})[COUNTERS[slot]!.code] = r;
        }
        ifs[ifIndex] = rates ? [st.ts, st.oper, st.admin, st.name, counters, rates] : [st.ts, st.oper, st.admin, st.name, counters];
      }
      d[device] = [dev.up, dev.upTs, ifs];
    }
    return { v: 1, d };
  }

  static fromJSON(json: unknown, opts: RateOptions = {}): RateState {
    const s = new RateState(opts);
    if (typeof json !== 'object' || json === null || (json as { v?: unknown }).v !== 1) throw new Error('rate state: not a v1 checkpoint');
    const d = (json as { d?: unknown }).d;
    if (typeof d !== 'object' || d === null) throw new Error('rate state: missing devices');
    for (const [device, raw] of Object.entries(d as Record<string, unknown>)) {
      if (!Array.isArray(raw) || raw.length !== 3 || typeof raw[0] !== 'number' || typeof raw[1] !== 'number' || typeof raw[2] !== 'object' || raw[2] === null) {
        throw new Error(`rate state: malformed entry for device ${device}`);
      }
      const dev = new DevState();
      dev.up = raw[0];
      dev.upTs = raw[1];
      for (const [ifIndex, e] of Object.entries(raw[2] as Record<string, unknown>)) {
        if (!Array.isArray(e) || (e.length !== 5 && (e.length !== 6 || typeof e[5] !== 'object' || e[5] === null)) || typeof e[0] !== 'number' || typeof e[1] !== 'number' || typeof e[2] !== 'number' || typeof e[3] !== 'string' || typeof e[4] !== 'object' || e[4] === null) {
          throw new Error(`rate state: malformed interface ${ifIndex} of device ${device}`);
        }
        const st = new IfState();
        st.ts = e[0];
        st.oper = e[1];
        st.admin = e[2];
        st.name = e[3];
        st.fresh = false;
        for (const [code, v] of Object.entries(e[4] as Record<string, unknown>)) {
          const slot = SLOT_OF_CODE.get(code);
          if (slot === undefined) continue; // a counter this version does not compute
          if (typeof v !== 'number') throw new Error(`rate state: counter ${code} of interface ${ifIndex} of device ${device} is not a number`);
          st.prev[slot] = v;
        }
        for (const [code, r] of Object.entries((e[5] ?? {}) as Record<string, unknown>)) {
          const slot = SLOT_OF_CODE.get(code);
          if (slot === undefined) continue;
          if (typeof r !== 'number') throw new Error(`rate state: rate ${code} of interface ${ifIndex} of device ${device} is not a number`);
          st.rate[slot] = r;
        }
        dev.ifs.set(ifIndex, st);
        if (st.ts < dev.minTs) dev.minTs = st.ts;
      }
      s.devices.set(device, dev);
    }
    return s;
  }
}

/** The largest delta this link can add to a counter in dt seconds (with slack); 0 without a known speed (no wrap is provable then). */
function mostDelta(kind: Kind, speed: number | undefined, dt: number): number {
  if (speed === undefined || dt <= 0) return 0;
  return kind === 'bits' ? (speed * dt * SPEED_SLACK) / 8 : (speed / MIN_FRAME_BITS) * dt * SPEED_SLACK;
}

/** sysUpTime is TimeTicks (1/100 s), a 32-bit value that wraps after 497 days without a reboot. */
function isUptimeWrap(prev: number, prevTs: number, cur: number, ts: number): boolean {
  const expected = prev + (ts - prevTs) / 10;
  if (expected < TWO32) return false;
  const tolerance = Math.max(6000, ((ts - prevTs) / 10) * 0.1);
  return Math.abs(expected - TWO32 - cur) <= tolerance;
}

function ticks(t: number): string {
  const s = Math.floor(t / 100);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d}d ${h}h ${m}m ${s % 60}s`;
}

function makeEvent(device: string, ts: number, kind: string, severity: Severity, message: string, fields: Record<string, unknown>): NetEvent {
  const id = createHash('sha1').update(`rate\0${device}\0${kind}\0${ts}\0${String(fields.ifIndex ?? '')}\0${String(fields.to ?? '')}`).digest('hex').slice(0, 20);
  return { id, ts, source: 'snmp', kind, severity, device, message, fields };
}

/** Convenience: run one batch and wrap the derived samples as a batch of the same device. */
export function rateBatch(state: RateState, batch: SampleBatch): { batch: SampleBatch; events: NetEvent[] } {
  const r = state.process(batch);
  return { batch: { device: batch.device, source: 'rate', ts: batch.ts, samples: r.samples }, events: r.events };
}

export { TWO32 };
