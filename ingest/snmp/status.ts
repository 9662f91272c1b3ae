import { counter, gauge, histogram } from '../../core/metrics.js';

/** What one poll of one target came to. `unreachable` (no answer at all) is not `partial` (some walks failed). */
export type PollOutcome = 'ok' | 'partial' | 'unreachable' | 'auth-failed' | 'error';

export interface TargetStats {
  readonly id: string;
  readonly device: string;
  readonly address: string;
  readonly port: number;
  readonly version: string;
  state: PollOutcome | 'pending' | 'breaker-open';
  sysName: string | null;
  lastPollAt: number | null;
  lastDurationMs: number | null;
  lastError: string | null;
  polls: number;
  successes: number;
  partials: number;
  timeouts: number;
  failures: number;
  consecutiveFailures: number;
  /** Varbinds of the last poll, and in total. */
  varbinds: number;
  varbindsTotal: number;
  interfaces: number;
  late: number;
  skipped: number;
  /** When the breaker is open: the time of the next probe. */
  nextProbeAt: number | null;
}

export const snmpMetrics = {
  pollDuration: gauge('noctua_snmp_last_poll_seconds', 'Duration of the last poll, per target', ['target']),
  polls: counter('noctua_snmp_polls_total', 'Polls by target and outcome', ['target', 'outcome']),
  timeouts: counter('noctua_snmp_timeouts_total', 'Polls that got no answer (after retries), per target', ['target']),
  varbinds: counter('noctua_snmp_varbinds_total', 'Varbinds received, per target', ['target']),
  late: counter('noctua_snmp_late_polls_total', 'Polls started late (queued behind the concurrency limit), per target', ['target']),
  skipped: counter('noctua_snmp_skipped_polls_total', 'Polls not made: overrun, stale in queue or breaker open', ['target', 'reason']),
  malformed: counter('noctua_snmp_malformed_packets_total', 'Undecodable packets received from agents or trap senders', ['peer']),
  tooBig: counter('noctua_snmp_toobig_total', 'tooBig answers (max-repetitions reduced), per target', ['target']),
  pollSeconds: histogram('noctua_snmp_poll_seconds', 'Poll duration over all targets', [], [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  inFlight: gauge('noctua_snmp_polls_in_flight', 'Polls in flight'),
  targets: gauge('noctua_snmp_targets', 'Targets scheduled in this process'),
};

/** Every target polled in this process (all pollers), for `noctua snmp-status` and the API. */
const registry = new Map<string, TargetStats>();

export function registerStats(s: TargetStats): void {
  registry.set(s.id, s);
}
export function unregisterStats(id: string): void {
  registry.delete(id);
}

const RANK: Record<TargetStats['state'], number> = { unreachable: 0, 'auth-failed': 0, error: 0, 'breaker-open': 0, partial: 1, pending: 2, ok: 3 };

/** Targets, failing first, then slowest first. */
export function targetStatus(): TargetStats[] {
  return [...registry.values()]
    .map((s) => ({ ...s }))
    .sort((a, b) => RANK[a.state] - RANK[b.state] || (b.lastDurationMs ?? 0) - (a.lastDurationMs ?? 0) || a.id.localeCompare(b.id));
}

/** A fixed-width table, for the CLI. */
export function formatStatus(rows: readonly TargetStats[]): string {
  const head = ['TARGET', 'STATE', 'LAST MS', 'POLLS', 'OK', 'TIMEOUTS', 'LATE', 'SKIPPED', 'VARBINDS', 'ERROR'];
  const lines = rows.map((r) => [r.id, r.state, r.lastDurationMs === null ? '-' : String(Math.round(r.lastDurationMs)), String(r.polls), String(r.successes), String(r.timeouts), String(r.late), String(r.skipped), String(r.varbinds), r.lastError ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [head, ...lines].map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
