import type { Severity } from '../../core/types.js';

/**
 * Syslog messages as devices and relays send them: RFC 5424, and the older BSD form (RFC 3164) that
 * most network gear still speaks, in its common dialects (with or without a hostname, with an
 * RFC 3339 timestamp as rsyslog forwards it, Cisco's sequence number and `*` before the time).
 * Pure: bytes in, a parsed message or a reason out.
 */

export const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'audit', 'alert', 'clock', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
export const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

/** emerg and alert page someone; crit is major; err minor; warning a warning; the rest information. */
export function severityOf(level: number): Severity {
  if (level <= 1) return 'critical';
  if (level === 2) return 'major';
  if (level === 3) return 'minor';
  if (level === 4) return 'warning';
  return 'info';
}

export interface SyslogMessage {
  readonly format: 'rfc5424' | 'rfc3164';
  readonly facility: number;
  readonly level: number;
  /** Event time from the message when it carries a full one (RFC 5424, or RFC 3339 in the BSD form); else null. */
  readonly time: number | null;
  /** The timestamp as written (a BSD timestamp has no year and no zone). */
  readonly timestamp: string | null;
  readonly hostname: string | null;
  readonly appName: string | null;
  readonly procId: string | null;
  readonly msgId: string | null;
  readonly structuredData: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly message: string;
}

export type ParseResult = { ok: true; msg: SyslogMessage } | { ok: false; reason: 'empty' | 'binary' | 'bad_pri' | 'bad_structured_data'; detail: string };

const MONTHS = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec';
// "Mmm dd hh:mm:ss", optionally with a year, milliseconds and a zone name (Cisco: "*Mar  1 00:01:02.345 UTC").
const BSD_TIME = new RegExp(`^\\*?(?:${MONTHS}) {1,2}\\d{1,2}(?: \\d{4})? \\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,6})?(?: [A-Z]{2,5})?`);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})/;
const TAG = /^([^\s:[\]]{1,48})(?:\[([^\]\s]{1,128})\])?:\s?/;

/** Control characters other than tab, newline and carriage return: a binary payload, not a log line. */
// eslint-disable-next-line no-control-regex
const BINARY = /[\x00-\x08\x0e-\x1f\x7f]/;

export function parseSyslog(raw: string): ParseResult {
  // A frame may end with LF, CR LF or NUL (RFC 6587 non-transparent framing, and UDP senders that add them).
  const text = raw.replace(/[\r\n\0]+$/, '');
  if (text.trim() === '') return { ok: false, reason: 'empty', detail: 'empty message' };
  if (BINARY.test(text.slice(0, 512))) return { ok: false, reason: 'binary', detail: 'control characters in the message' };
  let facility = 1;
  let level = 5;
  let rest = text;
  const pri = /^<(\d{1,3})>/.exec(text);
  if (pri) {
    const p = Number(pri[1]);
    if (p > 191 || (pri[1]!.length > 1 && pri[1]!.startsWith('0'))) return { ok: false, reason: 'bad_pri', detail: `PRI <${pri[1]}> is not 0..191` };
    facility = p >> 3;
    level = p & 7;
    rest = text.slice(pri[0].length);
  } else if (text.startsWith('<')) {
    return { ok: false, reason: 'bad_pri', detail: `no PRI in ${JSON.stringify(text.slice(0, 12))}` };
  }
  // (RFC 3164 4.3.3: a relay gives a message without PRI user.notice; so do we.)
  if (/^1 /.test(rest)) return parse5424(rest.slice(2), facility, level);
  return { ok: true, msg: parse3164(rest, facility, level) };
}

function nil(s: string | undefined): string | null {
  return s === undefined || s === '-' ? null : s;
}

function parse5424(rest: string, facility: number, level: number): ParseResult {
  // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
  const head = /^(\S+) (\S+) (\S+) (\S+) (\S+) ?/.exec(rest);
  if (!head) return { ok: true, msg: parse3164(rest, facility, level) };
  const [, ts, host, app, proc, msgId] = head;
  let at = head[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (rest[at] === '-') {
    at++;
  } else if (rest[at] === '[') {
    const r = parseStructuredData(rest, at, sd);
    if (typeof r === 'string') return { ok: false, reason: 'bad_structured_data', detail: r };
    at = r;
  }
  let message = rest.slice(at).replace(/^ /, '');
  if (message.startsWith('\uFEFF')) message = message.slice(1);
  const time = ts === '-' ? null : parseTime(ts!);
  return {
    ok: true,
    msg: { format: 'rfc5424', facility, level, time, timestamp: nil(ts), hostname: nil(host), appName: nil(app), procId: nil(proc), msgId: nil(msgId), structuredData: sd, message },
  };
}

/** Reads SD-ELEMENTs from `at`; returns the index after them, or what is wrong. */
function parseStructuredData(s: string, at: number, out: Record<string, Record<string, string>>): number | string {
  while (s[at] === '[') {
    const id = /^[^\s=\]"]{1,32}/.exec(s.slice(at + 1, at + 34));
    if (!id) return `structured data at ${at}: no SD-ID`;
    at += 1 + id[0].length;
    const params: Record<string, string> = {};
    for (;;) {
      if (s[at] === ']') {
        at++;
        break;
      }
      const name = /^ ([^\s=\]"]{1,32})="/.exec(s.slice(at, at + 36));
      if (!name) return `structured data at ${at}: expected ' name="value"' or ']'`;
      at += name[0].length;
      let value = '';
      for (;;) {
        const c = s[at];
        if (c === undefined) return 'structured data: unterminated value';
        if (c === '\\' && (s[at + 1] === '"' || s[at + 1] === '\\' || s[at + 1] === ']')) {
          value += s[at + 1];
          at += 2;
        } else if (c === '"') {
          at++;
          break;
        } else {
          value += c;
          at++;
        }
      }
      params[name[1]!] = value;
    }
    out[id[0]] = params;
  }
  return at;
}

function parseTime(ts: string): number | null {
  if (!RFC3339.test(ts)) return null;
  const t = Date.parse(ts);
  return Number.isFinite(t) ? t : null;
}

function parse3164(rest: string, facility: number, level: number): SyslogMessage {
  let s = rest;
  // Cisco IOS puts a sequence number before the time: "<189>1234: *Mar  1 ...".
  const seq = /^\d{1,10}: /.exec(s);
  if (seq && (BSD_TIME.test(s.slice(seq[0].length)) || RFC3339.test(s.slice(seq[0].length)))) s = s.slice(seq[0].length);
  let timestamp: string | null = null;
  let time: number | null = null;
  const bsd = BSD_TIME.exec(s);
  const iso = bsd ? null : RFC3339.exec(s);
  if (bsd) {
    timestamp = bsd[0];
    s = s.slice(bsd[0].length).replace(/^:? /, '');
  } else if (iso) {
    timestamp = iso[0];
    time = parseTime(iso[0]);
    s = s.slice(iso[0].length).replace(/^:? /, '');
  }
  // HOSTNAME: present when the message had a timestamp and the next word is no tag ("host tag: msg"
  // or "host msg"); a word ending in ':' or '[pid]:' is the tag of a sender that left its host out.
  let hostname: string | null = null;
  if (timestamp) {
    const word = /^([^\s:[\]]+) /.exec(s);
    if (word && !/^%/.test(word[1]!)) {
      hostname = word[1]!;
      s = s.slice(word[0].length);
    }
  }
  let appName: string | null = null;
  let procId: string | null = null;
  const tag = TAG.exec(s);
  if (tag && !/^%/.test(tag[1]!)) {
    appName = tag[1]!;
    procId = tag[2] ?? null;
    s = s.slice(tag[0].length);
  }
  return { format: 'rfc3164', facility, level, time, timestamp, hostname, appName, procId, msgId: null, structuredData: {}, message: s };
}
