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
  readonly out: string;
  readonly bits: 32 | 64;
  readonly kind: Kind;
  /** The 64-bit metric that replaces this 32-bit one when present. */
  readonly preferred?: string;
  /** Utilisation output for bit rates. */
  readonly util?: string;
}

const COUNTERS: Readonly<Record<string, CounterDef>> = {
  ifHCInOctets: { code: 'hi', out: 'if_in_bps', bits: 64, kind: 'bits', util: 'if_in_util_pct' },
  ifHCOutOctets: { code: 'ho', out: 'if_out_bps', bits: 64, kind: 'bits', util: 'if_out_util_pct' },
  ifInOctets: { code: 'li', out: 'if_in_bps', bits: 32, kind: 'bits', preferred: 'ifHCInOctets', util: 'if_in_util_pct' },
  ifOutOctets: { code: 'lo', out: 'if_out_bps', bits: 32, kind: 'bits', preferred: 'ifHCOutOctets', util: 'if_out_util_pct' },
  ifHCInUcastPkts: { code: 'hp', out: 'if_in_pps', bits: 64, kind: 'pkts' },
  ifHCOutUcastPkts: { code: 'hq', out: 'if_out_pps', bits: 64, kind: 'pkts' },
  ifInUcastPkts: { code: 'lp', out: 'if_in_pps', bits: 32, kind: 'pkts', preferred: 'ifHCInUcastPkts' },
  ifOutUcastPkts: { code: 'lq', out: 'if_out_pps', bits: 32, kind: 'pkts', preferred: 'ifHCOutUcastPkts' },
  ifInErrors: { code: 'ie', out: 'if_in_errors_ps', bits: 32, kind: 'errs' },
  ifOutErrors: { code: 'oe', out: 'if_out_errors_ps', bits: 32, kind: 'errs' },
  ifInDiscards: { code: 'id', out: 'if_in_discards_ps', bits: 32, kind: 'errs' },
  ifOutDiscards: { code: 'od', out: 'if_out_discards_ps', bits: 32, kind: 'errs' },
};

const TWO32 = 4294967296;
/** Slack over line speed before a wrap-corrected delta is called implausible (counter sampling jitter). */
const SPEED_SLACK = 1.1;
/** Smallest frame on the wire (64 B + preamble + gap = 84 B): the most packets per second a link carries. */
const MIN_FRAME_BITS = 84 * 8;

const OPER: Readonly<Record<number, string>> = { 1: 'up', 2: 'down', 3: 'testing', 4: 'unknown', 5: 'dormant', 6: 'notPresent', 7: 'lowerLayerDown' };

const discontinuities = counter('noctua_rate_discontinuities_total', 'Counter samples that produced no rate, by reason', ['reason']);
const clampedTotal = counter('noctua_rate_clamped_total', 'Rates clamped to line speed');

/** Per-interface state: [ts, operStatus, adminStatus, name, counters by code]. Arrays keep checkpoints compact. */
type IfState = [number, number, number, string, Record<string, number>];
/** Per-device state: [sysUpTime ticks, its ts, interfaces by ifIndex]. */
type DevState = [number, number, Record<string, IfState>];

export interface RateOptions {
  /** Forget an interface not seen for this long (ms of event time): it was removed or renumbered. */
  readonly forgetAfterMs?: number;
}

export interface RateStats {
  outOfOrder: number;
  wraps: number;
  resets: number;
  reboots: number;
  clamped: number;
}

export class RateState {
  private devices = new Map<string, DevState>();
  readonly stats: RateStats = { outOfOrder: 0, wraps: 0, resets: 0, reboots: 0, clamped: 0 };
  private readonly forgetAfterMs: number;

  constructor(opts: RateOptions = {}) {
    this.forgetAfterMs = opts.forgetAfterMs ?? 3_600_000;
  }

  /** Number of interfaces tracked (for self-metrics and tests). */
  get size(): number {
    let n = 0;
    for (const d of this.devices.values()) n += Object.keys(d[2]).length;
    return n;
  }

  process(batch: SampleBatch): RateResult {
    const samples: Sample[] = [];
    const events: NetEvent[] = [];
    let dev = this.devices.get(batch.device);
    if (!dev) {
      dev = [-1, -1, {}];
      this.devices.set(batch.device, dev);
    }

    // Group by interface; sysUpTime is device-wide.
    const ifaces = new Map<string, Sample[]>();
    let up: Sample | undefined;
    for (const s of batch.samples) {
      if (s.metric === 'sysUpTime') {
        up = s;
        continue;
      }
      const idx = s.labels.ifIndex;
      if (idx === undefined) continue;
      let a = ifaces.get(idx);
      if (!a) ifaces.set(idx, (a = []));
      a.push(s);
    }

    if (up && Number.isFinite(up.value)) {
      if (dev[1] >= 0 && up.ts > dev[1] && up.value < dev[0] && !isUptimeWrap(dev[0], dev[1], up.value, up.ts)) {
        this.stats.reboots++;
        discontinuities.inc({ reason: 'reboot' });
        events.push(makeEvent(batch.device, up.ts, 'reboot', 'warning', `${batch.device} rebooted (sysUpTime went from ${ticks(dev[0])} to ${ticks(up.value)})`, {
          previousUpTime: dev[0],
          upTime: up.value,
        }));
        dev[2] = {}; // reseed every counter of the device: the old values belong to the previous boot
      }
      if (up.ts > dev[1]) {
        dev[0] = up.value;
        dev[1] = up.ts;
      }
    }

    for (const [ifIndex, group] of ifaces) this.processInterface(batch.device, ifIndex, group, dev[2], samples, events);

    const newest = batch.ts;
    for (const [ifIndex, st] of Object.entries(dev[2])) {
      if (!ifaces.has(ifIndex) && newest - st[0] > this.forgetAfterMs) delete dev[2][ifIndex];
    }
    return { samples, events };
  }

  private processInterface(device: string, ifIndex: string, group: Sample[], ifs: Record<string, IfState>, out: Sample[], events: NetEvent[]): void {
    const first = group[0]!;
    const labels: Labels = first.labels;
    const ts = first.ts;
    const values = new Map<string, number>();
    for (const s of group) if (Number.isFinite(s.value)) values.set(s.metric, s.value);
    const name = labels.ifName ?? labels.ifDescr ?? '';
    let st: IfState | undefined = ifs[ifIndex];
    if (st && st[3] !== name) st = undefined; // ifIndex now names another interface: start over
    if (st && ts <= st[0]) {
      this.stats.outOfOrder++;
      discontinuities.inc({ reason: 'out_of_order' });
      return;
    }

    const high = values.get('ifHighSpeed');
    const low = values.get('ifSpeed');
    const speed = high !== undefined && high > 0 ? high * 1e6 : low !== undefined && low > 0 && low < TWO32 - 1 ? low : undefined;
    const oper = values.get('ifOperStatus') ?? 0;
    const admin = values.get('ifAdminStatus') ?? 0;

    if (st && oper !== 0 && st[1] !== 0 && oper !== st[1]) {
      const severity: Severity = oper === 1 ? 'info' : admin === 2 ? 'info' : 'major';
      const what = `${name || 'ifIndex ' + ifIndex} oper-status ${OPER[st[1]] ?? st[1]} -> ${OPER[oper] ?? oper}${admin === 2 ? ' (admin down)' : ''}`;
      events.push(makeEvent(device, ts, 'oper-status', severity, `${device} ${what}`, {
        ifIndex, ifName: name, from: OPER[st[1]] ?? String(st[1]), to: OPER[oper] ?? String(oper), adminStatus: OPER[admin] ?? String(admin),
      }));
    }

    const counters: Record<string, number> = {};
    const dt = st ? (ts - st[0]) / 1000 : 0;
    for (const [metric, v] of values) {
      const def = COUNTERS[metric];
      if (!def) continue;
      if (def.preferred && values.has(def.preferred)) continue;
      counters[def.code] = v;
      const prev = st?.[4][def.code];
      if (prev === undefined) continue;
      let delta = v - prev;
      if (delta < 0) {
        if (def.bits === 32 && plausible(delta + TWO32, def.kind, speed, dt)) {
          delta += TWO32;
          this.stats.wraps++;
        } else {
          // Not a wrap we can prove (64-bit counters do not wrap in a lifetime): a reset. Reseed.
          this.stats.resets++;
          discontinuities.inc({ reason: def.bits === 32 ? 'implausible_wrap' : 'reset' });
          continue;
        }
      }
      let rate = (def.kind === 'bits' ? delta * 8 : delta) / dt;
      const max = speed === undefined ? undefined : def.kind === 'bits' ? speed : speed / MIN_FRAME_BITS;
      if (max !== undefined && rate > max) {
        rate = max;
        this.stats.clamped++;
        clampedTotal.inc();
      }
      out.push({ metric: def.out, labels, ts, value: rate });
      if (def.util && speed !== undefined) out.push({ metric: def.util, labels, ts, value: (rate / speed) * 100 });
    }
    ifs[ifIndex] = [ts, oper, admin, name, counters];
  }

  toJSON(): { v: 1; d: Record<string, DevState> } {
    return { v: 1, d: Object.fromEntries(this.devices) };
  }

  static fromJSON(json: unknown, opts: RateOptions = {}): RateState {
    const s = new RateState(opts);
    if (typeof json !== 'object' || json === null || (json as { v?: unknown }).v !== 1) throw new Error('rate state: not a v1 checkpoint');
    const d = (json as { d?: unknown }).d;
    if (typeof d !== 'object' || d === null) throw new Error('rate state: missing devices');
    for (const [device, dev] of Object.entries(d as Record<string, unknown>)) {
      if (!Array.isArray(dev) || dev.length !== 3 || typeof dev[0] !== 'number' || typeof dev[1] !== 'number' || typeof dev[2] !== 'object' || dev[2] === null) {
        throw new Error(`rate state: malformed entry for device ${device}`);
      }
      s.devices.set(device, dev as DevState);
    }
    return s;
  }
}

/** True when a corrected delta is possible on this link in dt seconds. Without a known speed nothing is provable. */
function plausible(delta: number, kind: Kind, speed: number | undefined, dt: number): boolean {
  if (speed === undefined || dt <= 0) return false;
  const max = kind === 'bits' ? (speed * dt * SPEED_SLACK) / 8 : (speed / MIN_FRAME_BITS) * dt * SPEED_SLACK;
  return delta <= max;
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
