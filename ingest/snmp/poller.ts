import { isIPv6 } from 'node:net';
import { createHash } from 'node:crypto';
import snmp, { type Session, type User, type Varbind } from 'net-snmp';
import type { NetEvent, SampleBatch, Severity } from '../../core/types.js';
import { M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { Scheduler, type SkipReason } from '../scheduler.js';
import type { Target, V3User } from './config.js';
import { collect, type DeviceInfo } from './collect.js';
import { HOST_COLUMNS, IF_COLUMNS, SUPERSEDED_BY_HC, SYSTEM, UCD_MEMORY } from './oids.js';
import { registerStats, snmpMetrics, unregisterStats, type PollOutcome, type TargetStats } from './status.js';
import { WalkError, get, walkColumns, type WalkResult } from './walk.js';

/**
 * Polls SNMP targets on their schedules and hands one SampleBatch per poll to `emit`. No bus here:
 * source.ts wires the sink to a producer, tests pass arrays.
 *
 * Per target: timeout and retries (with backoff) per request, a poll deadline inside the interval,
 * and a circuit breaker: after `breaker.failures` failed polls in a row the target is only probed
 * at growing intervals (up to `maxBackoffMs`), so dead devices stop holding concurrency slots.
 */

export interface PollSink {
  emit(batch: SampleBatch): void;
  emitEvent?(e: NetEvent): void;
}

export interface PollerOptions {
  readonly concurrency: number;
  readonly breaker?: { failures: number; maxBackoffMs: number };
  readonly sink: PollSink;
  readonly log?: Logger;
  /** Re-read the 32-bit twins of ifHC* columns (and so notice a change of HC support) every N polls. */
  readonly fullWalkEvery?: number;
}

export interface PollResult {
  readonly outcome: PollOutcome;
  readonly batch?: SampleBatch;
  readonly info?: DeviceInfo;
  readonly error?: string;
  readonly varbinds: number;
  readonly durationMs: number;
}

interface TargetState {
  target: Target;
  stats: TargetStats;
  /** Persistent v3 session (engine discovery is kept); v1/v2c use one socket per poll. */
  session?: Session;
  hcCovers?: boolean;
  pollsSinceFull: number;
  /** Last reachability reported as an event, so only changes are events. */
  reachable?: boolean;
}

const SCALARS_V2 = [...Object.values(SYSTEM), ...Object.values(UCD_MEMORY)];
const IF_OIDS_ALL = IF_COLUMNS.map((c) => c.oid);
const IF_OIDS_HC = IF_COLUMNS.filter((c) => !SUPERSEDED_BY_HC[c.name]).map((c) => c.oid);
const HOST_OIDS = HOST_COLUMNS.map((c) => c.oid);

export class SnmpPoller {
  private readonly targets = new Map<string, TargetState>();
  private readonly scheduler: Scheduler;
  private readonly breaker: { failures: number; maxBackoffMs: number };
  private readonly fullWalkEvery: number;

  constructor(private readonly opts: PollerOptions) {
    this.breaker = opts.breaker ?? { failures: 3, maxBackoffMs: 600_000 };
    this.fullWalkEvery = opts.fullWalkEvery ?? 10;
    this.scheduler = new Scheduler({
      concurrency: opts.concurrency,
      onLate: (id, delay) => {
        const t = this.targets.get(id);
        if (!t) return;
        t.stats.late++;
        snmpMetrics.late.inc({ target: id });
        opts.log?.debug({ target: id, delayMs: delay }, 'snmp poll started late');
      },
      onSkip: (id, reason: SkipReason) => this.skipped(id, reason),
      onError: (id, err) => {
        M.errors.inc({ component: 'snmp', kind: 'poll_crash' });
        opts.log?.error({ target: id, err: (err as Error).message }, 'snmp poll threw');
      },
    });
  }

  /** Adds or replaces a target (a changed config takes effect at its next slot). */
  addTarget(target: Target): void {
    const old = this.targets.get(target.id);
    if (old) this.closeSession(old);
    const stats: TargetStats = old?.stats ?? {
      id: target.id, device: target.device, address: target.address, port: target.port, version: target.version,
      state: 'pending', sysName: null, lastPollAt: null, lastDurationMs: null, lastError: null, polls: 0, successes: 0,
      partials: 0, timeouts: 0, failures: 0, consecutiveFailures: 0, varbinds: 0, varbindsTotal: 0, interfaces: 0, late: 0,
      skipped: 0, nextProbeAt: null,
    };
    const st: TargetState = { target, stats, pollsSinceFull: 0 };
    this.targets.set(target.id, st);
    registerStats(stats);
    this.scheduler.add({ id: target.id, intervalMs: target.intervalMs, run: () => this.pollScheduled(st) });
    snmpMetrics.targets.set(this.targets.size);
  }

  removeTarget(id: string): void {
    const st = this.targets.get(id);
    if (!st) return;
    this.scheduler.remove(id);
    this.closeSession(st);
    this.targets.delete(id);
    unregisterStats(id);
    snmpMetrics.targets.set(this.targets.size);
  }

  /** Makes the polled set equal to `targets`. */
  setTargets(targets: readonly Target[]): void {
    const want = new Map(targets.map((t) => [t.id, t]));
    for (const id of [...this.targets.keys()]) if (!want.has(id)) this.removeTarget(id);
    for (const t of targets) this.setTarget(t);
  }

  /** Adds a target or updates it when its definition changed; an identical one keeps its schedule. */
  setTarget(t: Target): void {
    const cur = this.targets.get(t.id);
    if (!cur || JSON.stringify(cur.target) !== JSON.stringify(t)) this.addTarget(t);
  }

  targetIds(): string[] {
    return [...this.targets.keys()];
  }

  /** The device name of a polled target at this address (traps use it to line up with samples). */
  deviceAt(address: string): string | undefined {
    for (const st of this.targets.values()) if (st.target.address === address) return st.target.device;
    return undefined;
  }

  stats(id: string): TargetStats | undefined {
    return this.targets.get(id)?.stats;
  }

  start(): void {
    this.scheduler.start();
  }

  async stop(): Promise<void> {
    await this.scheduler.stop();
    for (const id of [...this.targets.keys()]) this.removeTarget(id);
  }

  private skipped(id: string, reason: string): void {
    const t = this.targets.get(id);
    if (!t) return;
    t.stats.skipped++;
    snmpMetrics.skipped.inc({ target: id, reason });
  }

  private async pollScheduled(st: TargetState): Promise<void> {
    const s = st.stats;
    if (s.nextProbeAt !== null && Date.now() < s.nextProbeAt) {
      this.skipped(s.id, 'breaker');
      return;
    }
    snmpMetrics.inFlight.inc();
    try {
      await this.poll(st.target.id);
    } finally {
      snmpMetrics.inFlight.dec();
    }
  }

  /** Polls a known target once, now (the scheduler's job; also used by tests and `noctua snmp-poll`). */
  async poll(id: string): Promise<PollResult> {
    const st = this.targets.get(id);
    if (!st) throw new Error(`snmp: unknown target ${id}`);
    const r = await pollTarget(st.target, {
      session: () => this.session(st),
      release: (session) => this.release(st, session),
      hcCovers: st.hcCovers === true && st.pollsSinceFull < this.fullWalkEvery,
    });
    if (this.targets.get(id) !== st) return r; // removed while polling: report nothing
    this.record(st, r);
    return r;
  }

  private record(st: TargetState, r: PollResult): void {
    const s = st.stats;
    const t = st.target;
    s.polls++;
    s.lastPollAt = Date.now();
    s.lastDurationMs = r.durationMs;
    s.varbinds = r.varbinds;
    s.varbindsTotal += r.varbinds;
    s.state = r.outcome;
    s.lastError = r.error ?? null;
    snmpMetrics.pollDuration.set({ target: t.id }, r.durationMs / 1000);
    snmpMetrics.pollSeconds.observe(r.durationMs / 1000);
    snmpMetrics.polls.inc({ target: t.id, outcome: r.outcome });
    if (r.varbinds > 0) snmpMetrics.varbinds.inc({ target: t.id }, r.varbinds);
    if (r.outcome === 'unreachable') {
      s.timeouts++;
      snmpMetrics.timeouts.inc({ target: t.id });
    }
    if (r.info?.sysName) s.sysName = r.info.sysName;
    // Like Prometheus' `up`: every poll says whether the device answered, so a threshold rule
    // (snmp_up < 1 for 1m) raises DeviceUnreachable and inhibits the device's interface alerts.
    const upTs = r.batch?.ts ?? Date.now();
    const up = { metric: 'snmp_up', labels: { ...t.labels, device: t.device }, ts: upTs, value: r.outcome === 'ok' || r.outcome === 'partial' ? 1 : 0 };
    const pollSeconds = { metric: 'snmp_poll_seconds', labels: up.labels, ts: upTs, value: r.durationMs / 1000 };
    if (!r.batch) {
      try {
        this.opts.sink.emit({ device: t.device, source: 'snmp', ts: upTs, samples: [up, pollSeconds] });
      } catch (err) {
        M.errors.inc({ component: 'snmp', kind: 'emit' });
        this.opts.log?.error({ target: t.id, err: (err as Error).message }, 'snmp sink rejected a batch');
      }
    } else r = { ...r, batch: { ...r.batch, samples: [...r.batch.samples, up, pollSeconds] } };
    if (r.batch) {
      const collected = r as PollResult & { hcCovers?: boolean; interfaces?: number };
      if (collected.hcCovers !== undefined) {
        if (st.hcCovers !== true || st.pollsSinceFull >= this.fullWalkEvery) st.pollsSinceFull = 0;
        st.hcCovers = collected.hcCovers;
      }
      st.pollsSinceFull++;
      s.interfaces = collected.interfaces ?? s.interfaces;
      try {
        this.opts.sink.emit(r.batch);
      } catch (err) {
        M.errors.inc({ component: 'snmp', kind: 'emit' });
        this.opts.log?.error({ target: t.id, err: (err as Error).message }, 'snmp sink rejected a batch');
      }
    }
    if (r.outcome === 'ok' || r.outcome === 'partial') {
      if (r.outcome === 'ok') s.successes++;
      else s.partials++;
      s.consecutiveFailures = 0;
      s.nextProbeAt = null;
      if (st.reachable === false) this.event(st, 'reachable', 'info', `${t.device} answers SNMP again`, {});
      st.reachable = true;
    } else {
      s.failures++;
      s.consecutiveFailures++;
      M.errors.inc({ component: 'snmp', kind: r.outcome });
      this.opts.log?.warn({ target: t.id, address: t.address, port: t.port, outcome: r.outcome, err: r.error }, 'snmp poll failed');
      if (s.consecutiveFailures >= this.breaker.failures) {
        const k = s.consecutiveFailures - this.breaker.failures;
        const wait = Math.min(this.breaker.maxBackoffMs, t.intervalMs * 2 ** Math.min(k, 20));
        s.nextProbeAt = Date.now() + wait;
        s.state = 'breaker-open';
      }
      if (r.outcome === 'unreachable' && st.reachable !== false) {
        this.event(st, 'unreachable', 'critical', `${t.device} (${t.address}:${t.port}) does not answer SNMP: ${r.error}`, { address: t.address, port: t.port });
        st.reachable = false;
      }
      this.closeSession(st); // a fresh v3 session rediscovers engine boots/time after a device restart
    }
    if (r.outcome === 'partial') M.errors.inc({ component: 'snmp', kind: 'partial' });
  }

  private event(st: TargetState, kind: string, severity: Severity, message: string, fields: Record<string, unknown>): void {
    const ts = Date.now();
    const id = createHash('sha1').update(`snmp\0${st.target.device}\0${kind}\0${ts}`).digest('hex').slice(0, 20);
    try {
      this.opts.sink.emitEvent?.({ id, ts, source: 'snmp', kind, severity, device: st.target.device, message, fields: { target: st.target.id, ...fields } });
    } catch (err) {
      M.errors.inc({ component: 'snmp', kind: 'emit' });
      this.opts.log?.error({ target: st.target.id, err: (err as Error).message }, 'snmp sink rejected an event');
    }
  }

  private session(st: TargetState): Session {
    if (st.target.version === 'v3') return (st.session ??= openSession(st.target));
    return openSession(st.target);
  }

  private release(st: TargetState, session: Session): void {
    if (session !== st.session) closeQuietly(session);
  }

  private closeSession(st: TargetState): void {
    if (st.session) closeQuietly(st.session);
    st.session = undefined;
  }
}

function closeQuietly(s: Session): void {
  try {
    s.close();
  } catch {
    /* already closed */
  }
}

export function v3User(u: V3User): User {
  const level = snmp.SecurityLevel[u.level];
  const user: User = { name: u.name, level };
  if (u.level !== 'noAuthNoPriv') {
    user.authProtocol = u.authProtocol === 'sha256' ? snmp.AuthProtocols.sha256 : snmp.AuthProtocols.sha;
    user.authKey = u.authKey;
  }
  if (u.level === 'authPriv') {
    user.privProtocol = snmp.PrivProtocols.aes;
    user.privKey = u.privKey;
  }
  return user;
}

/** Malformed packets seen by a session, kept for the poll's error message. */
const malformedSeen = new WeakMap<Session, { count: number; last: string }>();

export function openSession(t: Target): Session {
  const options = {
    port: t.port,
    retries: t.retries,
    timeout: t.timeoutMs,
    backoff: 1.5,
    transport: isIPv6(t.address) ? ('udp6' as const) : ('udp4' as const),
  };
  const session =
    t.version === 'v3'
      ? snmp.createV3Session(t.address, v3User(t.user!), { ...options, version: snmp.Version3 })
      : snmp.createSession(t.address, t.community!, { ...options, version: t.version === 'v1' ? snmp.Version1 : snmp.Version2c });
  // net-snmp emits 'error' for an undecodable datagram; without a listener that would crash the process.
  session.on('error', (err: Error) => {
    const m = malformedSeen.get(session) ?? { count: 0, last: '' };
    m.count++;
    m.last = String(err?.message ?? err).slice(0, 200);
    malformedSeen.set(session, m);
    snmpMetrics.malformed.inc({ peer: `${t.address}:${t.port}` });
  });
  return session;
}

interface PollEnv {
  session(): Session;
  release(s: Session): void;
  /** The device's ifHC* columns cover every interface: skip the 32-bit twins. */
  hcCovers: boolean;
}

/** Explains a failed request in the words a NOC engineer needs. */
export function classify(err: unknown, t: Target, session: Session): { outcome: PollOutcome; error: string } {
  const where = `${t.address}:${t.port}`;
  const bad = malformedSeen.get(session);
  const malformed = bad ? `; ${bad.count} malformed packet(s) received (${bad.last})` : '';
  if (err instanceof snmp.RequestTimedOutError) {
    if (bad) return { outcome: 'error', error: `no valid response from ${where}${malformed}` };
    const tries = t.retries + 1;
    const hint =
      t.version !== 'v3' ? 'unreachable, not serving SNMP, or community rejected'
      : t.user?.level === 'authPriv' ? 'unreachable, not serving SNMP, or privacy key rejected (agents drop what they cannot decrypt)'
      : 'unreachable or not serving SNMP';
    return { outcome: 'unreachable', error: `no response from ${where} (${tries} ${tries === 1 ? 'try' : 'tries'}, timeout ${t.timeoutMs} ms): ${hint}` };
  }
  if (err instanceof snmp.ResponseInvalidError) {
    const code = (err as { code?: number }).code;
    if (code === snmp.ResponseInvalidCode.EAuthFailure || code === snmp.ResponseInvalidCode.ECouldNotDecrypt) {
      return { outcome: 'auth-failed', error: `SNMPv3 authentication failed at ${where} for user ${t.user?.name ?? '?'}: ${err.message}` };
    }
    return { outcome: 'error', error: `invalid response from ${where}: ${err.message}${malformed}` };
  }
  if (err instanceof snmp.RequestFailedError) {
    const status = (err as { status?: number }).status;
    if (status === snmp.ErrorStatus.AuthorizationError) return { outcome: 'auth-failed', error: `access denied by ${where}: ${err.message}` };
    return { outcome: 'error', error: `agent ${where} answered with error: ${err.message}` };
  }
  return { outcome: 'error', error: `${where}: ${(err as Error)?.message ?? String(err)}${malformed}` };
}

/** One poll of one target: system and memory scalars, then IF-MIB and host tables in parallel. */
export async function pollTarget(t: Target, env: PollEnv): Promise<PollResult & { hcCovers?: boolean; interfaces?: number }> {
  const started = Date.now();
  // Leave a margin inside the interval so a slow device cannot overrun into its next slot.
  const deadline = started + Math.max(t.timeoutMs, t.intervalMs * 0.9);
  let session: Session;
  try {
    session = env.session();
  } catch (err) {
    return { outcome: 'error', error: `cannot open a session to ${t.address}:${t.port}: ${(err as Error).message}`, varbinds: 0, durationMs: Date.now() - started };
  }
  let varbinds = 0;
  try {
    const scalars = new Map<string, Varbind>();
    try {
      let one = t.version !== 'v1';
      if (one) {
        try {
          for (const vb of await get(session, SCALARS_V2)) scalars.set(vb.oid, vb);
        } catch (err) {
          // Some v2c agents answer a missing object v1-style (noSuchName for the whole GET): split it.
          if (!(err instanceof snmp.RequestFailedError && (err as { status?: number }).status === snmp.ErrorStatus.NoSuchName)) throw err;
          one = false;
        }
      }
      if (!one) {
        // v1 fails a whole GET on one missing OID (noSuchName): system first, UCD memory on its own.
        for (const vb of await get(session, Object.values(SYSTEM))) scalars.set(vb.oid, vb);
        try {
          for (const vb of await get(session, Object.values(UCD_MEMORY))) scalars.set(vb.oid, vb);
        } catch (err) {
          if (!(err instanceof snmp.RequestFailedError)) throw err;
        }
      }
    } catch (err) {
      return { ...classify(err, t, session), varbinds, durationMs: Date.now() - started };
    }
    varbinds += scalars.size;

    const walkOpts = { maxRepetitions: t.maxRepetitions, deadline, v1: t.version === 'v1' };
    const ifOids = env.hcCovers ? IF_OIDS_HC : IF_OIDS_ALL;
    const [ifw, hostw] = await Promise.allSettled([walkColumns(session, ifOids, walkOpts), walkColumns(session, HOST_OIDS, walkOpts)]);
    const columns = new Map<string, Map<string, Varbind>>();
    const problems: string[] = [];
    const take = (r: PromiseSettledResult<WalkResult>, what: string) => {
      const w: WalkResult | undefined = r.status === 'fulfilled' ? r.value : r.reason instanceof WalkError ? r.reason.partial : undefined;
      if (w) {
        varbinds += w.varbinds;
        if (w.tooBig > 0) snmpMetrics.tooBig.inc({ target: t.id }, w.tooBig);
        for (const [c, m] of w.columns) columns.set(c, m);
      }
      if (r.status === 'rejected') {
        const cause = r.reason instanceof WalkError ? r.reason.cause : r.reason;
        problems.push(`${what}: ${classify(cause, t, session).error}`);
      }
    };
    take(ifw, 'IF-MIB walk');
    take(hostw, 'host resources walk');
    const c = collect(t.device, t.labels, started, { scalars, columns });
    const durationMs = Date.now() - started;
    if (problems.length > 0) {
      return { outcome: 'partial', batch: c.batch, info: c.info, error: problems.join('; '), varbinds, durationMs, interfaces: c.interfaces };
    }
    return { outcome: 'ok', batch: c.batch, info: c.info, varbinds, durationMs, hcCovers: c.hcCovers, interfaces: c.interfaces };
  } finally {
    env.release(session);
  }
}
