import { createHash } from 'node:crypto';
import type { NetEvent, Severity } from '../../core/types.js';

/**
 * fail2ban's log (its `logtarget`): bans, unbans and the failures its jails found.
 *
 *   2026-12-07 14:05:01,234 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.7
 *   2026-12-07 14:15:01,240 fail2ban.actions        [812]: NOTICE  [sshd] Unban 192.0.2.7
 *   2026-12-07 14:04:58,101 fail2ban.filter         [812]: INFO    [sshd] Found 192.0.2.7 - 2026-12-07 14:04:58
 *
 * Its times are the local time of the host that wrote them, which is this host: the file is followed here.
 */

export type Fail2banResult = { ok: true; event: NetEvent } | { ok: false; reason: 'not_fail2ban' | 'skipped'; detail: string };

const LINE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,6}))? (fail2ban\.[\w.]+)\s+\[(\d+)\]: (\w+)\s+\[([^\]]+)\] (.*)$/;
const ACTION = /^(Restore Ban|Ban|Unban|Found|Increase Ban|Already banned)\s+(\S+)(.*)$/;

const KINDS: Readonly<Record<string, { kind: string; severity: Severity }>> = {
  Ban: { kind: 'ban', severity: 'warning' },
  'Restore Ban': { kind: 'ban', severity: 'info' },
  'Increase Ban': { kind: 'ban', severity: 'warning' },
  Unban: { kind: 'unban', severity: 'info' },
  Found: { kind: 'found', severity: 'info' },
};

/** `where`: the line's place (file, position): fail2ban writes identical lines when failures come within a millisecond. */
export function fail2banEvent(line: string, opts: { device: string; found: boolean; where?: string }): Fail2banResult {
  const m = LINE.exec(line.trimEnd());
  if (!m) return { ok: false, reason: 'not_fail2ban', detail: 'not a fail2ban log line' };
  const [, y, mo, d, h, mi, s, frac, logger, pid, level, jail, rest] = m;
  const a = ACTION.exec(rest!);
  if (!a || a[1] === 'Already banned') return { ok: false, reason: 'skipped', detail: rest!.slice(0, 60) };
  const what = KINDS[a[1]!]!;
  if (what.kind === 'found' && !opts.found) return { ok: false, reason: 'skipped', detail: 'found' };
  const ms = frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0;
  const ts = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms).getTime();
  const ip = a[2]!;
  const id = createHash('sha1').update(`fail2ban\0${opts.device}\0${opts.where ?? ''}\0${line}`).digest('hex').slice(0, 20);
  const verb = a[1] === 'Found' ? 'failure from' : a[1]!.toLowerCase();
  return {
    ok: true,
    event: {
      id,
      ts,
      source: 'fail2ban',
      kind: what.kind,
      severity: what.severity,
      device: opts.device,
      message: `[${jail}] ${verb} ${ip}`,
      fields: { jail, ip, action: a[1], level, logger, pid: Number(pid), ...(a[3]?.trim() ? { detail: a[3].trim().replace(/^- /, '') } : {}), line },
    },
  };
}
