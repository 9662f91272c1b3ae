import { Cron } from 'croner';
import type { AlertState, AlertTransition, Labels, Severity } from '../core/types.js';
import { counter } from '../core/metrics.js';
import { matchAll, renderTemplate, type Condition, type LabelMatcher } from './threshold.js';

/**
 * The alert lifecycle, modelled on Prometheus (pending -> firing -> resolved, `for`) and
 * Alertmanager (fingerprints, group_by / group_wait / group_interval / repeat_interval, silences,
 * inhibition), plus what NOCs expect from Zabbix-like tools: acknowledgement (who, when, comment;
 * stops repeats), maintenance windows and flap detection.
 *
 * Pure and event-time driven: conditions carry the sample's event time and `tick(now)` is called
 * with the watermark, so notifications and transitions depend only on input order. Every state
 * change is an AlertChange (alerts topic + history table); notifications are Alertmanager v4
 * webhook payloads (see webhookPayload()).
 */

export interface Ack {
  readonly by: string;
  readonly at: number;
  readonly comment: string;
}

export type ChangeEvent = 'state' | 'ack' | 'unack' | 'flapping' | 'flap-end';

/** An AlertTransition with the lifecycle context NOC screens and history need. */
export interface AlertChange extends AlertTransition {
  readonly event: ChangeEvent;
  /** `silence:<id>`, `maintenance:<name>` or `inhibited:<source fingerprint>` when notifications are held back. */
  readonly suppressedBy: string | null;
  readonly flapping: boolean;
  readonly ack: Ack | null;
}

export interface Silence {
  readonly id: string;
  readonly matchers: readonly LabelMatcher[];
  readonly startsAt: number;
  readonly endsAt: number;
  readonly createdBy: string;
  /** When it was issued (by the API, wall clock); absent for silences from the rule file. */
  readonly createdAt?: number;
  readonly comment: string;
}

/** A one-off range (startsAt/endsAt) or a recurring one (cron + durationMs, in a time zone). */
export interface MaintenanceWindow {
  readonly name: string;
  readonly matchers: readonly LabelMatcher[];
  readonly startsAt?: number;
  readonly endsAt?: number;
  readonly cron?: string;
  readonly durationMs?: number;
  readonly timezone?: string;
}

export interface InhibitRule {
  readonly sourceMatchers: readonly LabelMatcher[];
  readonly targetMatchers: readonly LabelMatcher[];
  /** Labels that must be equal on source and target (e.g. device). */
  readonly equal: readonly string[];
}

export interface RouteConfig {
  readonly receiver: string;
  readonly groupBy: readonly string[];
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly repeatIntervalMs: number;
}

export interface FlapConfig {
  /** Firing/resolved changes counted over this event-time window. */
  readonly windowMs: number;
  /** This many changes in the window start flapping ... */
  readonly enterChanges: number;
  /** ... and fewer than this many end it (hysteresis). */
  readonly exitChanges: number;
}

export interface AlertingConfig {
  readonly route: RouteConfig;
  readonly inhibitRules: readonly InhibitRule[];
  readonly silences: readonly Silence[];
  readonly maintenance: readonly MaintenanceWindow[];
  readonly flap: FlapConfig;
  /**
   * Staleness, as Prometheus has it: a pending or firing alert whose series has sent nothing for
   * this long, and for three of its own sampling intervals, resolves - a device removed from the
   * pollers or an interface gone from its table leaves no alert firing for good. Event time: the
   * watermark must pass it, so a stalled input resolves nothing. A series that has sent a single
   * sample has no known interval and never goes stale (`anomaly_active` sends only its changes).
   * 0 = off.
   */
  readonly staleAfterMs: number;
  /** Used in webhook payloads (externalURL, generatorURL). */
  readonly externalUrl: string;
}

export const DEFAULT_ALERTING: AlertingConfig = {
  route: { receiver: 'default', groupBy: ['alertname', 'device'], groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 4 * 3_600_000 },
  inhibitRules: [
    // A device that is unreachable suppresses the alerts of its interfaces.
    {
      sourceMatchers: [{ name: 'alertname', op: '=', value: 'DeviceUnreachable' }],
      targetMatchers: [{ name: 'ifIndex', op: '=~', value: '.+' }],
      equal: ['device'],
    },
  ],
  silences: [],
  maintenance: [],
  flap: { windowMs: 3_600_000, enterChanges: 6, exitChanges: 3 },
  staleAfterMs: 300_000,
  externalUrl: 'http://127.0.0.1:8080',
};

export interface NotifiedAlert {
  readonly status: 'firing' | 'resolved';
  readonly fingerprint: string;
  readonly labels: Labels;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly acknowledged: Ack | null;
  readonly flapping: boolean;
}

/** One flush of one alert group: what a receiver is told. */
export interface Notification {
  readonly ts: number;
  readonly receiver: string;
  readonly groupKey: string;
  readonly status: 'firing' | 'resolved';
  readonly groupLabels: Labels;
  readonly commonLabels: Labels;
  readonly commonAnnotations: Readonly<Record<string, string>>;
  readonly alerts: readonly NotifiedAlert[];
}

interface Alert {
  fp: string;
  /** rule name + series key: the condition this alert tracks. */
  cid: string;
  rule: string;
  severity: Severity;
  labels: Labels;
  annotationTpl: Readonly<Record<string, string>>;
  annotations: Record<string, string>;
  state: AlertState;
  forMs: number;
  activeAt: number;
  startsAt: number;
  endsAt: number | null;
  value: number;
  ack: Ack | null;
  /** Event times of firing/resolved changes inside the flap window. */
  changes: number[];
  flapping: boolean;
  /** Resolved alerts linger for flap counting and for the resolved notification. */
  lastChange: number;
  /** Event time of the condition's last sample, and the gap before it (0 = one sample so far): staleness. */
  seen: number;
  every: number;
}

interface Group {
  key: string;
  labels: Labels;
  alerts: Set<string>;
  nextFlush: number;
  lastNotify: number;
  /** What the receiver was last told is firing (fingerprints). */
  sent: Set<string>;
}

const transitionsTotal = counter('noctua_alert_transitions_total', 'Alert state changes', ['state']);
const notificationsTotal = counter('noctua_alert_notifications_total', 'Alert group notifications', ['status']);
const staleTotal = counter('noctua_alert_stale_resolved_total', 'Alerts resolved because their series stopped sending samples', ['rule']);
const suppressedTotal = counter('noctua_alert_suppressed_total', 'Alerts held back from a notification', ['reason']);

/** Alertmanager's fingerprint: 64-bit FNV-1a over sorted label names and values with 0xff separators. */
export function fingerprint(labels: Labels): string {
  // 64-bit arithmetic in two 32-bit halves (BigInt per byte is ~50x slower); prime = 2^40 + 0x1b3.
  let lo = 0x84222325;
  let hi = 0xcbf29ce4;
  const eat = (b: number) => {
    lo = (lo ^ b) >>> 0;
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x100000000);
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0;
    lo = loMul >>> 0;
  };
  for (const k of Object.keys(labels).sort()) {
    for (const b of Buffer.from(k, 'utf8')) eat(b);
    eat(0xff);
    for (const b of Buffer.from(labels[k]!, 'utf8')) eat(b);
    eat(0xff);
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

function sortedLabels(l: Record<string, string>): Labels {
  const o: Record<string, string> = {};
  for (const k of Object.keys(l).sort()) o[k] = l[k]!;
  return o;
}

const crons = new WeakMap<MaintenanceWindow, Cron>();

/** In a maintenance window at `t`? Recurring windows: the last cron start before t is within durationMs. */
export function inMaintenance(w: MaintenanceWindow, t: number): boolean {
  if (w.startsAt !== undefined && t < w.startsAt) return false;
  if (w.endsAt !== undefined && t >= w.endsAt) return false;
  if (!w.cron) return w.startsAt !== undefined || w.endsAt !== undefined;
  const dur = w.durationMs ?? 0;
  let cron = crons.get(w);
  if (!cron) crons.set(w, (cron = new Cron(w.cron, { timezone: w.timezone ?? 'UTC', paused: true })));
  const next = cron.nextRun(new Date(t - dur));
  return next !== null && next.getTime() <= t;
}

/**
 * (rule, series key) -> fingerprint, two levels deep: the rule name and the series key are stable
 * string instances with cached hashes, where a `rule\0key` concatenation per evaluation had to be
 * built, flattened and hashed every time. `cid` (the concatenation) is how alerts name their condition.
 */
class ConditionIndex {
  private readonly byRule = new Map<string, Map<string, string>>();
  get(rule: string, key: string): string | undefined {
    return this.byRule.get(rule)?.get(key);
  }
  set(rule: string, key: string, fp: string): void {
    let m = this.byRule.get(rule);
    if (!m) this.byRule.set(rule, (m = new Map()));
    m.set(key, fp);
  }
  setCid(cid: string, fp: string): void {
    const i = cid.indexOf('\u0000');
    this.set(cid.slice(0, i), cid.slice(i + 1), fp);
  }
  deleteCid(cid: string): void {
    const i = cid.indexOf('\u0000');
    const m = this.byRule.get(cid.slice(0, i));
    m?.delete(cid.slice(i + 1));
    if (m?.size === 0) this.byRule.delete(cid.slice(0, i));
  }
  clear(): void {
    this.byRule.clear();
  }
}

export class AlertManager {
  private cfg: AlertingConfig;
  private readonly alerts = new Map<string, Alert>();
  /** (rule, series) -> fingerprint: labels are built and hashed once per alerting series, not per evaluation. */
  private readonly byCondition = new ConditionIndex();
  /** Firing alerts that can inhibit others (match some inhibit rule's source matchers). */
  private readonly inhibitors = new Set<Alert>();
  private readonly flappingAlerts = new Set<Alert>();
  private nextFlushAt = Infinity;
  private nextGcAt = -Infinity;
  /** No alert goes stale before this (a lower bound: sample times only move dues later). */
  private nextStaleAt = Infinity;
  private readonly groups = new Map<string, Group>();
  /** Silences added at run time (API); the rule file's silences come with the config. */
  private readonly runtimeSilences = new Map<string, Silence>();
  private changes: AlertChange[] = [];
  private notifications: Notification[] = [];
  private now = -Infinity;

  constructor(cfg: AlertingConfig = DEFAULT_ALERTING) {
    this.cfg = cfg;
  }

  setConfig(cfg: AlertingConfig): void {
    this.cfg = cfg;
    // Rule labels or inhibit rules may have changed: rebuild what was derived from them.
    this.byCondition.clear();
    for (const a of this.alerts.values()) this.byCondition.setCid(a.cid, a.fp);
    this.inhibitors.clear();
    for (const a of this.alerts.values()) if (a.state === 'firing' && this.canInhibit(a)) this.inhibitors.add(a);
    // the staleness horizon may have changed: look again at the next advance (a look resolves only what is due)
    this.nextStaleAt = -Infinity;
  }

  private canInhibit(a: Alert): boolean {
    for (const r of this.cfg.inhibitRules) if (matchAll(r.sourceMatchers, a.labels)) return true;
    return false;
  }

  get size(): number {
    return this.alerts.size;
  }

  /** Alert labels: series labels + rule labels + alertname and severity (Prometheus' convention). */
  static alertLabels(c: Condition): Labels {
    return sortedLabels({ ...c.seriesLabels, ...c.rule.labels, alertname: c.rule.name, severity: c.rule.severity });
  }

  /**
   * Feeds threshold conditions (in event-time order per series). Event time advances to each
   * condition's ts first, so a group due before that instant is flushed without it.
   */
  apply(conds: readonly Condition[]): void {
    for (const c of conds) {
      if (c.ts > this.now) this.advance(c.ts, false);
      this.applyOne(c);
    }
  }

  private applyOne(c: Condition): void {
    let fp = this.byCondition.get(c.rule.name, c.key);
    let labels: Labels | undefined;
    if (fp === undefined) {
      if (!c.active) return;
      labels = AlertManager.alertLabels(c);
      fp = fingerprint(labels);
      this.byCondition.set(c.rule.name, c.key, fp);
    }
    let a = this.alerts.get(fp);
    if (!c.active) {
      if (!a || a.state === 'resolved') return;
      a.value = c.value;
      this.transition(a, 'resolved', c.ts);
      return;
    }
    if (!a || a.state === 'resolved') {
      labels ??= a ? a.labels : AlertManager.alertLabels(c);
      const fresh: Alert = {
        fp,
        cid: c.rule.name + '\u0000' + c.key,
        rule: c.rule.name,
        severity: c.rule.severity,
        labels,
        annotationTpl: c.rule.annotations,
        annotations: {},
        state: 'resolved',
        forMs: c.rule.forMs,
        activeAt: c.ts,
        startsAt: c.ts,
        endsAt: null,
        value: c.value,
        ack: null,
        changes: a ? a.changes : [],
        flapping: a ? a.flapping : false,
        lastChange: c.ts,
        seen: c.ts,
        every: 0,
      };
      const prev: AlertState | 'inactive' = a ? 'resolved' : 'inactive';
      if (a) {
        this.inhibitors.delete(a);
        if (this.flappingAlerts.delete(a)) this.flappingAlerts.add(fresh);
      }
      a = fresh;
      this.alerts.set(fp, a);
      if (a.forMs > 0) this.transition(a, 'pending', c.ts, prev);
      else this.transition(a, 'firing', c.ts, prev);
      return;
    }
    a.value = c.value;
    if (c.ts > a.seen) {
      a.every = c.ts - a.seen;
      a.seen = c.ts;
      this.nextStaleAt = Math.min(this.nextStaleAt, this.staleAt(a));
    }
    if (a.state === 'pending' && c.ts - a.activeAt >= a.forMs) this.transition(a, 'firing', c.ts);
  }

  /** When an active alert goes stale without another sample (Infinity: never). */
  private staleAt(a: Alert): number {
    const after = this.cfg.staleAfterMs;
    return after > 0 && a.every > 0 ? a.seen + Math.max(after, 3 * a.every) : Infinity;
  }

  /** Resolves the active alerts whose series stopped sending samples before `now`; sets the next check. */
  private resolveStale(now: number): void {
    let next = Infinity;
    // fingerprint order, not Map history: a restored instance resolves in the same order
    const active = [...this.alerts.values()].filter((a) => a.state !== 'resolved');
    for (const a of active.sort((x, y) => (x.fp < y.fp ? -1 : 1))) {
      const at = this.staleAt(a);
      if (at <= now) {
        staleTotal.inc({ rule: a.rule });
        this.transition(a, 'resolved', now);
      } else if (at < next) next = at;
    }
    this.nextStaleAt = next;
  }

  private transition(a: Alert, to: AlertState, ts: number, prevOverride?: AlertState | 'inactive'): void {
    const prev = prevOverride ?? a.state;
    a.state = to;
    a.lastChange = ts;
    if (to === 'firing') {
      // Prometheus' startsAt is when the condition became active (the start of pending).
      a.startsAt = a.activeAt;
      a.endsAt = null;
    }
    if (to === 'resolved') {
      a.endsAt = ts;
      // An acknowledgement covers one firing episode: a re-fire after resolution notifies again.
      a.ack = null;
    }
    a.annotations = this.render(a);
    if (to === 'firing' && this.canInhibit(a)) this.inhibitors.add(a);
    else this.inhibitors.delete(a);
    const countsForFlap = to === 'firing' || (to === 'resolved' && prev === 'firing');
    if (countsForFlap) {
      a.changes.push(ts);
      this.updateFlap(a, ts);
    }
    transitionsTotal.inc({ state: to });
    this.emit(a, 'state', ts, prev);
    if (to === 'firing' || (to === 'resolved' && prev === 'firing')) this.enqueue(a, ts);
  }

  private render(a: Alert): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, t] of Object.entries(a.annotationTpl)) out[k] = renderTemplate(t, a.labels, a.value);
    if (a.flapping) out.flapping = 'true';
    return out;
  }

  private updateFlap(a: Alert, now: number): void {
    const f = this.cfg.flap;
    while (a.changes.length > 0 && a.changes[0]! <= now - f.windowMs) a.changes.shift();
    if (!a.flapping && a.changes.length >= f.enterChanges) {
      a.flapping = true;
      this.flappingAlerts.add(a);
      a.annotations = this.render(a);
      this.emit(a, 'flapping', now, a.state);
    } else if (a.flapping && a.changes.length < f.exitChanges) {
      a.flapping = false;
      this.flappingAlerts.delete(a);
      a.annotations = this.render(a);
      this.emit(a, 'flap-end', now, a.state);
      // Flapping hid the real state from receivers: tell them now.
      this.enqueue(a, now);
    }
  }

  private emit(a: Alert, event: ChangeEvent, ts: number, prev: AlertState | 'inactive'): void {
    this.changes.push({
      fingerprint: a.fp,
      ts,
      state: a.state,
      previous: prev,
      rule: a.rule,
      severity: a.severity,
      labels: a.labels,
      annotations: { ...a.annotations },
      value: a.value,
      startsAt: a.startsAt,
      endsAt: a.endsAt,
      event,
      suppressedBy: this.suppression(a, ts),
      flapping: a.flapping,
      ack: a.ack,
    });
  }

  /** Why notifications of `a` are held back at time t, or null. */
  private suppression(a: Alert, t: number): string | null {
    for (const s of [...this.cfg.silences, ...this.runtimeSilences.values()]) {
      if (t >= s.startsAt && t < s.endsAt && matchAll(s.matchers, a.labels)) return `silence:${s.id}`;
    }
    for (const w of this.cfg.maintenance) {
      if (matchAll(w.matchers, a.labels) && inMaintenance(w, t)) return `maintenance:${w.name}`;
    }
    for (const r of this.cfg.inhibitRules) {
      if (!matchAll(r.targetMatchers, a.labels)) continue;
      for (const src of this.inhibitors) {
        if (src === a || !matchAll(r.sourceMatchers, src.labels)) continue;
        if (r.equal.every((l) => (src.labels[l] ?? '') === (a.labels[l] ?? ''))) return `inhibited:${src.fp}`;
      }
    }
    return null;
  }

  private groupKeyOf(a: Alert): { key: string; labels: Labels } {
    const labels: Record<string, string> = {};
    for (const l of this.cfg.route.groupBy) if (a.labels[l] !== undefined) labels[l] = a.labels[l]!;
    const sl = sortedLabels(labels);
    return { key: `{}:${JSON.stringify(sl)}`, labels: sl };
  }

  private enqueue(a: Alert, ts: number): void {
    const { key, labels } = this.groupKeyOf(a);
    let g = this.groups.get(key);
    if (!g) {
      g = { key, labels, alerts: new Set(), nextFlush: ts + this.cfg.route.groupWaitMs, lastNotify: -Infinity, sent: new Set() };
      this.groups.set(key, g);
      if (g.nextFlush < this.nextFlushAt) this.nextFlushAt = g.nextFlush;
    }
    g.alerts.add(a.fp);
  }

  /** True when this manager holds a pending or firing alert with this fingerprint. */
  holds(fp: string): boolean {
    const a = this.alerts.get(fp);
    return a !== undefined && a.state !== 'resolved';
  }

  /** Acknowledges a pending or firing alert: recorded, and its repeats stop until it resolves. */
  acknowledge(fp: string, by: string, at: number, comment: string): AlertChange {
    const a = this.alerts.get(fp);
    if (!a || a.state === 'resolved') throw new Error(`cannot acknowledge alert ${fp}: ${a ? 'it is resolved' : 'no such active alert'}`);
    if (!by) throw new Error(`acknowledging alert ${fp} needs who acknowledges (by)`);
    a.ack = { by, at, comment };
    // The record sits on the event-time line where it was applied (ack.at keeps the wall clock), so
    // "latest record per fingerprint" orders it with the state changes around it.
    this.emit(a, 'ack', this.now > -Infinity ? this.now : at, a.state);
    return this.changes[this.changes.length - 1]!;
  }

  /**
   * Withdraws an acknowledgement: repeats resume. Returns the 'unack' change, or null when the
   * alert was not acknowledged (nothing changes).
   */
  unacknowledge(fp: string, by: string, at: number): AlertChange | null {
    const a = this.alerts.get(fp);
    if (!a || a.state === 'resolved') throw new Error(`cannot withdraw the acknowledgement of alert ${fp}: ${a ? 'it is resolved' : 'no such active alert'}`);
    if (!by) throw new Error(`withdrawing the acknowledgement of alert ${fp} needs who withdraws it (by)`);
    if (!a.ack) return null;
    a.ack = null;
    // ack is null on the record, so "the latest record per fingerprint" reads as not acknowledged.
    this.emit(a, 'unack', this.now > -Infinity ? this.now : at, a.state);
    return this.changes[this.changes.length - 1]!;
  }

  /** Adds (or replaces, by id) a run-time silence; checkpointed with the state. */
  addSilence(s: Silence): void {
    if (!(s.endsAt > s.startsAt)) throw new Error(`silence ${s.id}: endsAt must be after startsAt`);
    if (s.matchers.length === 0) throw new Error(`silence ${s.id}: needs at least one matcher`);
    this.runtimeSilences.set(s.id, s);
  }

  /** Ends a run-time silence at `at` (no later than it would have ended). False when there is no such silence. */
  expireSilence(id: string, at: number): boolean {
    const s = this.runtimeSilences.get(id);
    if (!s) return false;
    this.runtimeSilences.set(id, { ...s, endsAt: Math.max(s.startsAt, Math.min(s.endsAt, at)) });
    return true;
  }

  /** Run-time silences still kept (expired ones linger for a flap window, then are pruned). */
  silences(): Silence[] {
    return [...this.runtimeSilences.values()];
  }

  /** Event time this manager has reached (the watermark), or -Infinity before any input. */
  get eventTime(): number {
    return this.now;
  }

  /** Advances event time (the watermark): flushes due groups, ends flapping, forgets old resolved alerts. */
  tick(now: number): void {
    if (now >= this.now) this.advance(now, true);
  }

  /** Moves event time to `now`: groups due before it (or at it, when `inclusive`) flush. */
  private advance(now: number, inclusive: boolean): void {
    this.now = now;
    if (this.nextStaleAt <= now) this.resolveStale(now);
    // Groups flush in key order so that output order never depends on Map history. Flushes due
    // before `now` run first: they report the state as it was then, before flapping is re-judged.
    if (this.nextFlushAt < now || (inclusive && this.nextFlushAt === now)) {
      const due = [...this.groups.values()]
        .filter((g) => g.nextFlush < now || (inclusive && g.nextFlush === now))
        .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
      for (const g of due) this.flush(g, now);
      this.nextFlushAt = Infinity;
      for (const g of this.groups.values()) if (g.nextFlush < this.nextFlushAt) this.nextFlushAt = g.nextFlush;
    }
    if (this.flappingAlerts.size > 0) {
      // Fingerprint order, not set history: a restored instance must emit flap-ends in the same order.
      for (const a of [...this.flappingAlerts].sort((x, y) => (x.fp < y.fp ? -1 : 1))) this.updateFlap(a, now);
    }
    if (now < this.nextGcAt) return;
    this.nextGcAt = now + Math.max(60_000, this.cfg.flap.windowMs / 4);
    // Expired run-time silences go after a flap window: a condition that lags the watermark may
    // still be judged at a time the silence covered. Event-time driven, so replays prune alike.
    for (const [id, s] of this.runtimeSilences) if (now - s.endsAt >= this.cfg.flap.windowMs) this.runtimeSilences.delete(id);
    for (const [fp, a] of this.alerts) {
      if (a.state !== 'resolved' || a.flapping || now - a.lastChange < this.cfg.flap.windowMs) continue;
      let referenced = false;
      for (const g of this.groups.values()) if (g.alerts.has(fp)) referenced = true;
      if (!referenced) {
        this.alerts.delete(fp);
        this.byCondition.deleteCid(a.cid);
      }
    }
  }

  private flush(g: Group, now: number): void {
    const at = g.nextFlush;
    const iv = this.cfg.route.groupIntervalMs;
    g.nextFlush = at + iv * Math.max(1, Math.ceil((now - at + 1) / iv));
    const firing: Alert[] = [];
    const resolved: Alert[] = [];
    let changed = false;
    for (const fp of [...g.alerts].sort()) {
      const a = this.alerts.get(fp);
      if (!a) {
        g.alerts.delete(fp);
        continue;
      }
      // A flapping alert is reported as firing until flapping ends: one alert, not a storm.
      const isFiring = a.state === 'firing' || (a.flapping && a.state !== 'pending');
      if (isFiring) {
        const why = this.suppression(a, at);
        if (why) {
          suppressedTotal.inc({ reason: why.slice(0, why.indexOf(':')) });
          continue;
        }
        if (a.ack) {
          // Acknowledged: no repeats, and it does not make the group "changed".
          continue;
        }
        firing.push(a);
        if (!g.sent.has(fp)) changed = true;
      } else if (a.state === 'resolved') {
        g.alerts.delete(fp);
        if (g.sent.has(fp)) {
          resolved.push(a);
          changed = true;
        }
      }
    }
    const repeat = firing.length > 0 && at - g.lastNotify >= this.cfg.route.repeatIntervalMs;
    if (changed || repeat) {
      this.notifications.push(this.notification(g, at, firing, resolved));
      notificationsTotal.inc({ status: firing.length > 0 ? 'firing' : 'resolved' });
      g.lastNotify = at;
      for (const a of firing) g.sent.add(a.fp);
      for (const a of resolved) g.sent.delete(a.fp);
    }
    // Acknowledged alerts stay "sent" so their resolution is still notified.
    if (g.alerts.size === 0) this.groups.delete(g.key);
  }

  private notification(g: Group, at: number, firing: Alert[], resolved: Alert[]): Notification {
    const all = [...firing, ...resolved];
    const common = (pick: (a: Alert) => Readonly<Record<string, string>>): Record<string, string> => {
      const first = pick(all[0]!);
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(first)) if (all.every((a) => pick(a)[k] === v)) out[k] = v;
      return out;
    };
    return {
      ts: at,
      receiver: this.cfg.route.receiver,
      groupKey: g.key,
      status: firing.length > 0 ? 'firing' : 'resolved',
      groupLabels: g.labels,
      commonLabels: common((a) => a.labels),
      commonAnnotations: common((a) => a.annotations),
      alerts: all.map((a) => ({
        status: firing.includes(a) ? 'firing' : 'resolved',
        fingerprint: a.fp,
        labels: a.labels,
        annotations: { ...a.annotations },
        startsAt: a.startsAt,
        endsAt: firing.includes(a) ? null : a.endsAt,
        acknowledged: a.ack,
        flapping: a.flapping,
      })),
    };
  }

  drainChanges(): AlertChange[] {
    const c = this.changes;
    this.changes = [];
    return c;
  }

  drainNotifications(): Notification[] {
    const n = this.notifications;
    this.notifications = [];
    return n;
  }

  /** The active (pending or firing) alerts, for screens and the API. */
  active(): AlertChange[] {
    const out: AlertChange[] = [];
    for (const a of this.alerts.values()) {
      if (a.state === 'resolved') continue;
      out.push({
        fingerprint: a.fp, ts: a.lastChange, state: a.state, previous: a.state, rule: a.rule, severity: a.severity, labels: a.labels,
        annotations: a.annotations, value: a.value, startsAt: a.startsAt, endsAt: a.endsAt, event: 'state',
        suppressedBy: this.suppression(a, this.now), flapping: a.flapping, ack: a.ack,
      });
    }
    return out;
  }

  toJSON(): AlertStateJSON {
    return {
      v: 1,
      now: this.now === -Infinity ? -1 : this.now,
      nextGcAt: this.nextGcAt === -Infinity ? -1 : this.nextGcAt,
      alerts: [...this.alerts.values()].map((a) => ({ ...a, changes: a.changes.slice() })),
      groups: [...this.groups.values()].map((g) => ({ ...g, alerts: [...g.alerts], sent: [...g.sent], lastNotify: g.lastNotify === -Infinity ? -1 : g.lastNotify })),
      silences: [...this.runtimeSilences.values()],
    };
  }

  static fromJSON(cfg: AlertingConfig, j: AlertStateJSON): AlertManager {
    if (typeof j !== 'object' || j === null || j.v !== 1) throw new Error('alert state: not a v1 checkpoint');
    const m = new AlertManager(cfg);
    m.now = j.now < 0 ? -Infinity : j.now;
    m.nextGcAt = j.nextGcAt < 0 ? -Infinity : j.nextGcAt;
    for (const a of j.alerts) {
      const al: Alert = { ...a, changes: a.changes.slice(), seen: a.seen ?? a.lastChange, every: a.every ?? 0 };
      m.alerts.set(a.fp, al);
      if (al.state !== 'resolved') m.nextStaleAt = Math.min(m.nextStaleAt, m.staleAt(al));
      m.byCondition.setCid(a.cid, a.fp);
      if (al.flapping) m.flappingAlerts.add(al);
      if (al.state === 'firing' && m.canInhibit(al)) m.inhibitors.add(al);
    }
    for (const g of j.groups) {
      m.groups.set(g.key, { ...g, alerts: new Set(g.alerts), sent: new Set(g.sent), lastNotify: g.lastNotify < 0 ? -Infinity : g.lastNotify });
      if (g.nextFlush < m.nextFlushAt) m.nextFlushAt = g.nextFlush;
    }
    for (const s of j.silences) m.runtimeSilences.set(s.id, s);
    return m;
  }
}

export interface AlertStateJSON {
  v: 1;
  now: number;
  nextGcAt: number;
  /** seen/every: absent from checkpoints made before staleness. */
  alerts: (Omit<Alert, 'seen' | 'every'> & Partial<Pick<Alert, 'seen' | 'every'>>)[];
  groups: (Omit<Group, 'alerts' | 'sent'> & { alerts: string[]; sent: string[] })[];
  silences: Silence[];
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Prometheus Alertmanager's webhook payload, version 4, so existing receivers work unchanged. */
export function webhookPayload(n: Notification, externalUrl: string): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? ZERO_TIME : new Date(t).toISOString());
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: 0,
    status: n.status,
    receiver: n.receiver,
    groupLabels: n.groupLabels,
    commonLabels: n.commonLabels,
    commonAnnotations: n.commonAnnotations,
    externalURL: externalUrl,
    alerts: n.alerts.map((a) => ({
      status: a.status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: iso(a.startsAt),
      endsAt: iso(a.endsAt),
      generatorURL: `${externalUrl}/alerts/${a.fingerprint}`,
      fingerprint: a.fingerprint,
    })),
  };
}
