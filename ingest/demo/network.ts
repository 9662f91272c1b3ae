import type { Labels, NetEvent, Sample, SampleBatch } from '../../core/types.js';

/**
 * A deterministic demo network: routers and switches whose interfaces carry diurnal traffic with
 * noise, exported as SNMP-like raw counters (64-bit on most devices, 32-bit that wrap on legacy
 * ones), with a reboot now and then and injected incidents (saturation, error bursts, link down,
 * CPU runaway). Everything is a pure function of (seed, device, poll times), so a replay of the same
 * poll times gives the same samples: tests compare runs row by row.
 */

export type IncidentKind = 'saturation' | 'errors' | 'link-down' | 'cpu';
export const INCIDENT_KINDS: readonly IncidentKind[] = ['saturation', 'errors', 'link-down', 'cpu'];

export interface Incident {
  readonly device: string;
  readonly ifIndex: number;
  readonly kind: IncidentKind;
  readonly start: number;
  readonly end: number;
}

export interface DemoOptions {
  devices: number;
  interfaces: number;
  seed: number;
  /** Mean time between scheduled incidents (ms); 0 disables them. */
  incidentEveryMs: number;
  /** Mean time between reboots of one device (ms); 0 disables them. */
  rebootEveryMs?: number;
}

interface IfModel {
  readonly ifIndex: number;
  readonly labels: Labels;
  readonly speedMbps: number;
  /** Mean utilisation at the daily peak, per direction. */
  readonly peakIn: number;
  readonly peakOut: number;
  /** Phase shift of the daily cycle (hours). */
  readonly phase: number;
  readonly pktSize: number;
  inOctets: number;
  outOctets: number;
  inPkts: number;
  outPkts: number;
  inErrors: number;
  outErrors: number;
  inDiscards: number;
  outDiscards: number;
  noiseIn: number;
  noiseOut: number;
}

interface DeviceModel {
  readonly name: string;
  readonly role: 'core' | 'distribution' | 'access';
  readonly counter32: boolean;
  readonly interfaces: IfModel[];
  readonly deviceLabels: Labels;
  bootTime: number;
  lastTs: number | null;
  cpuNoise: number;
  readonly rngState: { s: number };
}

/** mulberry32: tiny, fast, seedable; good enough for synthetic traffic. */
function rng(state: { s: number }): number {
  let t = (state.s = (state.s + 0x6d2b79f5) | 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function hash32(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p | 0;
    h = Math.imul(h, 0x01000193);
    h ^= (p / 4294967296) | 0;
    h = Math.imul(h, 0x01000193);
  }
  // FNV's low bits depend only on the inputs' low bits: `% devices` of the bare hash cycled, and a
  // week's incidents fell on 24 of 96 ports, each always the same kind. MurmurHash3's finaliser mixes
  // every bit into every other.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TWO32 = 4294967296;

/** One device: [lastTs, bootTime, cpuNoise, random state, per interface: IF_FIELDS in order]. */
type DeviceEntry = [number | null, number, number, number, number[][]];

/**
 * What a demo device carries from poll to poll (counters, noise, random state, last poll), named, with
 * the network it belongs to, so a restarted demo continues its devices instead of starting them over:
 * counters that went back under the same series would read as resets or bogus 32-bit wraps, and
 * history published again as duplicates.
 */
export interface DemoDeviceState {
  readonly v: 1;
  readonly seed: number;
  readonly interfaces: number;
  readonly name: string;
  readonly device: DeviceEntry;
}

const IF_FIELDS = ['inOctets', 'outOctets', 'inPkts', 'outPkts', 'inErrors', 'outErrors', 'inDiscards', 'outDiscards', 'noiseIn', 'noiseOut'] as const;

export class DemoNetwork {
  private readonly devices: DeviceModel[];
  private readonly injected: Incident[] = [];

  private readonly index = new Map<string, number>();

  constructor(private readonly opts: DemoOptions) {
    this.devices = [];
    for (let d = 0; d < opts.devices; d++) this.devices.push(this.makeDevice(d));
    this.devices.forEach((dev, d) => this.index.set(dev.name, d));
  }

  get deviceNames(): string[] {
    return this.devices.map((d) => d.name);
  }

  /** Time of device d's latest poll, or null before its first. */
  lastPoll(d: number): number | null {
    return this.devices[d]?.lastTs ?? null;
  }

  /** A device's state alone (what its poll's transaction records beside its samples). */
  deviceState(name: string): DemoDeviceState {
    const dev = this.devices[this.indexOf(name)]!;
    return { v: 1, seed: this.opts.seed, interfaces: this.opts.interfaces, name: dev.name, device: [dev.lastTs, dev.bootTime, dev.cpuNoise, dev.rngState.s, dev.interfaces.map((i) => IF_FIELDS.map((f) => i[f]))] };
  }

  /** Continues the device a deviceState() names; throws, changing nothing, when it is malformed or of another network. */
  restoreDevice(state: unknown): void {
    const s = state as Partial<DemoDeviceState> | null;
    if (typeof s !== 'object' || s === null || s.v !== 1) throw new Error('not a demo device state (v1)');
    const d = this.indexOf(String(s.name));
    if (d < 0 || s.seed !== this.opts.seed || s.interfaces !== this.opts.interfaces) {
      throw new Error(`state of a device of another demo network (${s.name}, seed ${s.seed}, ${s.interfaces} interfaces; configured: seed ${this.opts.seed}, ${this.devices.length} devices x ${this.opts.interfaces})`);
    }
    const e = s.device as unknown;
    const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
    const ok = Array.isArray(e) && e.length === 5 && (e[0] === null || num(e[0])) && num(e[1]) && num(e[2]) && num(e[3]) && Array.isArray(e[4]) && e[4].length === this.opts.interfaces &&
      (e[4] as unknown[]).every((row) => Array.isArray(row) && row.length === IF_FIELDS.length && row.every(num));
    if (!ok) throw new Error(`demo device state of ${s.name}: malformed`);
    const [lastTs, bootTime, cpuNoise, rngS, ifs] = e as DeviceEntry;
    const dev = this.devices[d]!;
    dev.lastTs = lastTs;
    dev.bootTime = bootTime;
    dev.cpuNoise = cpuNoise;
    dev.rngState.s = rngS;
    dev.interfaces.forEach((i, k) => IF_FIELDS.forEach((f, j) => (i[f] = ifs[k]![j]!)));
  }

  /** Index of the device of this name, or -1. */
  private indexOf(name: string): number {
    return this.index.get(name) ?? -1;
  }

  private makeDevice(d: number): DeviceModel {
    const role = d < 2 ? 'core' : d < 2 + Math.ceil(this.opts.devices / 4) ? 'distribution' : 'access';
    const name = role === 'core' ? `core-rtr-${d + 1}` : role === 'distribution' ? `dist-sw-${d - 1}` : `access-sw-${d - 1}`;
    const st = { s: hash32(this.opts.seed, d) };
    const speed = role === 'core' ? 10_000 : role === 'distribution' ? 10_000 : 1000;
    const interfaces: IfModel[] = [];
    for (let i = 1; i <= this.opts.interfaces; i++) {
      const uplink = i === 1;
      const ifName = role === 'core' ? `xe-0/0/${i - 1}` : role === 'distribution' ? `TenGigabitEthernet1/0/${i}` : `GigabitEthernet0/${i}`;
      interfaces.push({
        ifIndex: i,
        labels: { device: name, ifIndex: String(i), ifName },
        speedMbps: uplink && role === 'access' ? 10_000 : speed,
        peakIn: (uplink ? 0.45 : 0.1) + rng(st) * 0.35,
        peakOut: (uplink ? 0.35 : 0.08) + rng(st) * 0.3,
        phase: rng(st) * 3 - 1.5,
        pktSize: 400 + Math.floor(rng(st) * 900),
        inOctets: Math.floor(rng(st) * 1e9),
        outOctets: Math.floor(rng(st) * 1e9),
        inPkts: 0,
        outPkts: 0,
        inErrors: 0,
        outErrors: 0,
        inDiscards: 0,
        outDiscards: 0,
        noiseIn: 0,
        noiseOut: 0,
      });
    }
    return {
      name,
      role,
      // Every fourth access switch is a legacy box with only 32-bit counters: they wrap, and the rate
      // processor must correct that.
      counter32: role === 'access' && d % 4 === 1,
      interfaces,
      deviceLabels: { device: name },
      bootTime: -Math.floor(rng(st) * 90 * DAY),
      lastTs: null,
      cpuNoise: 0,
      rngState: st,
    };
  }

  /** Injects an incident now (API/tests): it shows in polls whose time falls in [start, end). */
  inject(incident: Incident): void {
    this.injected.push(incident);
    if (this.injected.length > 100) this.injected.shift();
  }

  /** Scheduled incidents active at `ts`: a pure function of the seed and the time bucket. */
  scheduledIncidents(ts: number): Incident[] {
    const every = this.opts.incidentEveryMs;
    if (every <= 0) return [];
    const out: Incident[] = [];
    const bucket = Math.floor(ts / every);
    for (const b of [bucket - 1, bucket]) {
      const h = hash32(this.opts.seed, b, 7);
      const start = b * every + (h % Math.max(1, Math.floor(every / 2)));
      const duration = 60_000 + (hash32(h, 1) % (4 * 60_000));
      const device = this.devices[hash32(h, 2) % this.devices.length]!;
      const ifIndex = 1 + (hash32(h, 3) % device.interfaces.length);
      const kind = INCIDENT_KINDS[hash32(h, 4) % INCIDENT_KINDS.length]!;
      if (ts >= start && ts < start + duration) out.push({ device: device.name, ifIndex, kind, start, end: start + duration });
    }
    return out;
  }

  private activeIncidents(device: string, ts: number): Incident[] {
    return [...this.scheduledIncidents(ts), ...this.injected].filter((i) => i.device === device && ts >= i.start && ts < i.end);
  }

  /**
   * One poll of one device at event time `ts` (ms). Polls of a device must come in increasing ts;
   * counters integrate the traffic model between consecutive polls.
   */
  poll(deviceIndex: number, ts: number): { batch: SampleBatch; events: NetEvent[] } {
    const dev = this.devices[deviceIndex];
    if (!dev) throw new Error(`demo: no device #${deviceIndex}`);
    const events: NetEvent[] = [];
    const dt = dev.lastTs === null ? 0 : Math.max(0, ts - dev.lastTs) / 1000;
    const rebootEvery = this.opts.rebootEveryMs ?? 6 * HOUR;
    // A reboot happens at most once per rebootEvery bucket, at a deterministic point in it.
    if (rebootEvery > 0 && dev.lastTs !== null) {
      const b = Math.floor(ts / rebootEvery);
      const at = b * rebootEvery + (hash32(this.opts.seed, deviceIndex, b, 11) % rebootEvery);
      const chosen = hash32(this.opts.seed, b, 13) % this.devices.length === deviceIndex;
      if (chosen && dev.lastTs < at && ts >= at) {
        dev.bootTime = at;
        for (const i of dev.interfaces) {
          i.inOctets = i.outOctets = i.inPkts = i.outPkts = 0;
          i.inErrors = i.outErrors = i.inDiscards = i.outDiscards = 0;
        }
        events.push({ id: `demo-reboot-${dev.name}-${at}`, ts: at, source: 'demo', kind: 'reboot', severity: 'warning', device: dev.name, message: `${dev.name} restarted`, fields: {} });
      }
    }
    dev.lastTs = ts;
    const incidents = this.activeIncidents(dev.name, ts);
    const hour = ((ts % DAY) + DAY) % DAY / HOUR;
    const weekday = new Date(ts).getUTCDay();
    const weekly = weekday === 0 || weekday === 6 ? 0.6 : 1;
    const samples: Sample[] = [];
    const st = dev.rngState;
    for (const i of dev.interfaces) {
      const diurnal = 0.35 + 0.65 * Math.max(0, Math.sin((2 * Math.PI * (hour - 7 + i.phase)) / 24)) ** 1.5;
      // AR(1) noise keeps the traffic smooth from poll to poll, like real aggregates.
      i.noiseIn = 0.8 * i.noiseIn + 0.2 * (rng(st) * 2 - 1);
      i.noiseOut = 0.8 * i.noiseOut + 0.2 * (rng(st) * 2 - 1);
      let utilIn = Math.min(0.99, Math.max(0, i.peakIn * diurnal * weekly * (1 + 0.25 * i.noiseIn)));
      let utilOut = Math.min(0.99, Math.max(0, i.peakOut * diurnal * weekly * (1 + 0.25 * i.noiseOut)));
      let oper = 1;
      let errRate = rng(st) < 0.02 ? rng(st) * 2 : 0;
      for (const inc of incidents) {
        if (inc.ifIndex !== i.ifIndex) continue;
        if (inc.kind === 'saturation') utilIn = utilOut = 0.97 + rng(st) * 0.02;
        if (inc.kind === 'errors') errRate = 200 + rng(st) * 400;
        if (inc.kind === 'link-down') {
          oper = 2;
          utilIn = utilOut = 0;
        }
      }
      const bps = i.speedMbps * 1e6;
      const inBytes = (utilIn * bps * dt) / 8;
      const outBytes = (utilOut * bps * dt) / 8;
      i.inOctets += Math.round(inBytes);
      i.outOctets += Math.round(outBytes);
      i.inPkts += Math.round(inBytes / i.pktSize);
      i.outPkts += Math.round(outBytes / i.pktSize);
      i.inErrors += Math.round(errRate * dt);
      i.inDiscards += Math.round(utilIn > 0.95 ? 50 * dt * rng(st) : 0);
      i.outDiscards += Math.round(utilOut > 0.95 ? 80 * dt * rng(st) : 0);
      const L = i.labels;
      if (dev.counter32) {
        samples.push({ metric: 'ifInOctets', labels: L, ts, value: i.inOctets % TWO32 });
        samples.push({ metric: 'ifOutOctets', labels: L, ts, value: i.outOctets % TWO32 });
        samples.push({ metric: 'ifInUcastPkts', labels: L, ts, value: i.inPkts % TWO32 });
        samples.push({ metric: 'ifOutUcastPkts', labels: L, ts, value: i.outPkts % TWO32 });
        samples.push({ metric: 'ifSpeed', labels: L, ts, value: Math.min(TWO32 - 1, i.speedMbps * 1e6) });
      } else {
        samples.push({ metric: 'ifHCInOctets', labels: L, ts, value: i.inOctets });
        samples.push({ metric: 'ifHCOutOctets', labels: L, ts, value: i.outOctets });
        samples.push({ metric: 'ifHCInUcastPkts', labels: L, ts, value: i.inPkts });
        samples.push({ metric: 'ifHCOutUcastPkts', labels: L, ts, value: i.outPkts });
      }
      samples.push({ metric: 'ifHighSpeed', labels: L, ts, value: i.speedMbps });
      samples.push({ metric: 'ifInErrors', labels: L, ts, value: i.inErrors % TWO32 });
      samples.push({ metric: 'ifOutErrors', labels: L, ts, value: i.outErrors % TWO32 });
      samples.push({ metric: 'ifInDiscards', labels: L, ts, value: i.inDiscards % TWO32 });
      samples.push({ metric: 'ifOutDiscards', labels: L, ts, value: i.outDiscards % TWO32 });
      samples.push({ metric: 'ifOperStatus', labels: L, ts, value: oper });
      samples.push({ metric: 'ifAdminStatus', labels: L, ts, value: 1 });
    }
    dev.cpuNoise = 0.7 * dev.cpuNoise + 0.3 * (rng(st) * 2 - 1);
    let cpu = (dev.role === 'core' ? 25 : 12) * (0.6 + 0.5 * Math.sin((2 * Math.PI * (hour - 8)) / 24)) + 6 * dev.cpuNoise + 5;
    if (incidents.some((x) => x.kind === 'cpu')) cpu = 92 + rng(st) * 7;
    const D = dev.deviceLabels;
    const uptimeTicks = Math.max(0, Math.floor((ts - dev.bootTime) / 10)) % TWO32;
    samples.push({ metric: 'sysUpTime', labels: D, ts, value: uptimeTicks });
    samples.push({ metric: 'hrProcessorLoad', labels: D, ts, value: Math.round(Math.min(100, Math.max(0, cpu))) });
    samples.push({ metric: 'memTotalReal', labels: D, ts, value: 4_194_304 });
    samples.push({ metric: 'memAvailReal', labels: D, ts, value: Math.round(4_194_304 * (0.55 - 0.1 * Math.abs(dev.cpuNoise))) });
    samples.push({ metric: 'laLoadInt', labels: D, ts, value: Math.round(cpu * 2) });
    return { batch: { device: dev.name, source: 'demo', ts, samples }, events };
  }
}
