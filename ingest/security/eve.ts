import { createHash } from 'node:crypto';
import type { NetEvent, Severity } from '../../core/types.js';

/**
 * Suricata's EVE JSON log, one record per line. Alerts, protocol anomalies and drops become events;
 * flow, dns, http, tls and stats records are telemetry and are skipped unless configured.
 */

export type EveResult = { ok: true; event: NetEvent } | { ok: false; reason: 'json' | 'not_eve' | 'skipped_type'; detail: string };

/** Suricata's alert severity: 1 high, 2 medium, 3 low (the classification's priority). */
function alertSeverity(s: unknown): Severity {
  if (s === 1) return 'major';
  if (s === 2) return 'minor';
  if (s === 3) return 'warning';
  return 'info';
}

/** EVE writes "+0000" zones; Date.parse wants "+00:00". */
function eveTime(ts: unknown): number | null {
  if (typeof ts !== 'string') return null;
  const t = Date.parse(ts.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isFinite(t) ? t : null;
}

const endpoint = (ip: unknown, port: unknown) => (typeof ip === 'string' ? (typeof port === 'number' ? (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`) : ip) : '?');

/** `where`: the line's place (file, position), so two identical lines are two events and one line read twice is one. */
export function eveEvent(line: string, opts: { types: readonly string[]; device: string; where?: string }): EveResult {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch (err) {
    return { ok: false, reason: 'json', detail: (err as Error).message };
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return { ok: false, reason: 'not_eve', detail: 'not a JSON object' };
  const rec = r as Record<string, unknown>;
  const type = rec.event_type;
  const ts = eveTime(rec.timestamp);
  if (typeof type !== 'string' || ts === null) return { ok: false, reason: 'not_eve', detail: 'no event_type or timestamp' };
  if (!opts.types.includes(type)) return { ok: false, reason: 'skipped_type', detail: type };
  const flow = `${endpoint(rec.src_ip, rec.src_port)} -> ${endpoint(rec.dest_ip, rec.dest_port)}${typeof rec.proto === 'string' ? ` ${rec.proto}` : ''}`;
  let severity: Severity = 'info';
  let message: string;
  const alert = rec.alert as Record<string, unknown> | undefined;
  const anomaly = rec.anomaly as Record<string, unknown> | undefined;
  if (type === 'alert' && alert && typeof alert === 'object') {
    severity = alertSeverity(alert.severity);
    const action = alert.action === 'blocked' ? ' (blocked)' : '';
    message = `${String(alert.signature ?? `sid ${String(alert.signature_id)}`)}${action}: ${flow}`;
  } else if (type === 'anomaly' && anomaly && typeof anomaly === 'object') {
    severity = 'warning';
    message = `${String(anomaly.layer ?? 'protocol')} anomaly ${String(anomaly.event ?? anomaly.type ?? '')}: ${flow}`;
  } else if (type === 'drop') {
    severity = 'warning';
    message = `packet dropped: ${flow}`;
  } else {
    message = `${type}: ${flow}`;
  }
  // The same record read twice (a restart re-reading the lines after its last saved position) is the same event.
  const id = createHash('sha1').update(`eve\0${opts.where ?? ''}\0${line}`).digest('hex').slice(0, 20);
  const device = typeof rec.host === 'string' && rec.host !== '' ? rec.host : opts.device;
  return { ok: true, event: { id, ts, source: 'suricata', kind: type === 'alert' ? 'ids-alert' : `ids-${type}`, severity, device, message: message.slice(0, 4096), fields: rec } };
}
