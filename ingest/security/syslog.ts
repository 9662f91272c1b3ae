import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { NetEvent } from '../../core/types.js';
import { M, counter } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import type { SecurityConfig } from './config.js';
import { FACILITIES, LEVELS, parseSyslog, severityOf, type SyslogMessage } from './syslog-parse.js';

/**
 * The syslog receiver: UDP datagrams (RFC 5426, one message each) and TCP streams (RFC 6587: octet
 * counting, "LEN SP MSG", or non-transparent framing, one message per LF or NUL). A message that does
 * not parse is rejected and counted; it never stops the listener nor takes the messages around it along.
 */

const received = counter('noctua_syslog_messages_total', 'Syslog messages accepted, by transport and format', ['transport', 'format']);
const rejected = counter('noctua_syslog_rejected_total', 'Syslog messages or connections rejected, by reason', ['reason']);
const truncated = counter('noctua_syslog_truncated_total', 'Syslog messages longer than syslog.maxMessageBytes, cut there');

export interface SyslogListenerOptions {
  readonly config: SecurityConfig['syslog'];
  readonly emitEvent: (e: NetEvent) => void;
  /** Maps a sender address to the device name used by polling, so syslog, traps and samples line up. */
  readonly deviceFor?: (address: string) => string | undefined;
  readonly log?: Logger;
  /** Receive time (tests). */
  readonly now?: () => number;
}

export interface SyslogListener {
  readonly udpPort: number | null;
  readonly tcpPort: number | null;
  close(): Promise<void>;
}

let sequence = 0;
/** This process's part of every syslog event id (with the receive time and a sequence: unique across processes and restarts). */
const PROCESS_ID = randomBytes(6).toString('hex');

/** The event for one received message; null when it is rejected (counted and logged here). */
export function syslogEvent(raw: Buffer, sender: string, transport: 'udp' | 'tcp', opts: Pick<SyslogListenerOptions, 'config' | 'deviceFor' | 'log' | 'now'>): NetEvent | null {
  const max = opts.config.maxMessageBytes;
  const cut = raw.length > max;
  if (cut) truncated.inc();
  const text = (cut ? raw.subarray(0, max) : raw).toString('utf8');
  const r = parseSyslog(text);
  if (!r.ok) {
    rejected.inc({ reason: r.reason });
    if (r.reason !== 'empty') opts.log?.warn({ sender, transport, reason: r.reason, detail: r.detail, head: JSON.stringify(text.slice(0, 80)) }, 'syslog message rejected');
    return null;
  }
  received.inc({ transport, format: r.msg.format });
  const receivedAt = (opts.now ?? Date.now)();
  return toEvent(r.msg, sender, receivedAt, cut, opts.deviceFor);
}

function toEvent(m: SyslogMessage, sender: string, receivedAt: number, cut: boolean, deviceFor?: (a: string) => string | undefined): NetEvent {
  const device = deviceFor?.(sender) ?? m.hostname ?? sender;
  // A BSD timestamp has no year and no zone: the receive time is the truer event time (the device's
  // own stays in the fields). A full timestamp is the event time unless a clock is a day off.
  const ts = m.time !== null && Math.abs(m.time - receivedAt) < 86_400_000 ? m.time : receivedAt;
  // Syslog is never replayed from its sender: the id only has to be unique, and stable once made (a
  // replay from the bus carries it). No hash of the text: that was a tenth of a message's cost.
  const id = `s${PROCESS_ID}${receivedAt.toString(36)}${(++sequence).toString(36)}`;
  const app = m.appName ? `${m.appName}: ` : '';
  return {
    id,
    ts,
    source: 'syslog',
    kind: 'syslog',
    severity: severityOf(m.level),
    device,
    message: `${app}${m.message}`,
    fields: {
      format: m.format,
      facility: FACILITIES[m.facility] ?? String(m.facility),
      level: LEVELS[m.level],
      sender,
      ...(m.hostname ? { hostname: m.hostname } : {}),
      ...(m.appName ? { appName: m.appName } : {}),
      ...(m.procId ? { procId: m.procId } : {}),
      ...(m.msgId ? { msgId: m.msgId } : {}),
      ...(m.timestamp ? { timestamp: m.timestamp } : {}),
      ...(Object.keys(m.structuredData).length > 0 ? { structuredData: m.structuredData } : {}),
      ...(cut ? { truncated: true } : {}),
      receivedAt,
    },
  };
}

export async function startSyslogListener(opts: SyslogListenerOptions): Promise<SyslogListener> {
  const c = opts.config;
  const emit = (raw: Buffer, sender: string, transport: 'udp' | 'tcp') => {
    try {
      const e = syslogEvent(raw, sender, transport, opts);
      if (e) opts.emitEvent(e);
    } catch (err) {
      rejected.inc({ reason: 'internal' });
      M.errors.inc({ component: 'syslog', kind: 'convert' });
      opts.log?.error({ sender, transport, err: (err as Error).message }, 'syslog message could not be converted');
    }
  };
  let udp: Socket | null = null;
  let tcp: Server | null = null;
  const conns = new Set<TcpSocket>();
  try {
    if (c.udpPort !== undefined) {
      const s = createSocket({ type: c.address.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 });
      udp = s;
      // Datagrams of one turn of the event loop are handled together once it has read them all: the
      // outbox then sends them as one batch, not one send each (which took a quarter of a burst at most).
      const pending: Array<[Buffer, string]> = [];
      const drain = () => {
        for (const [msg, address] of pending.splice(0)) emit(msg, address, 'udp');
      };
      s.on('message', (msg, rinfo) => {
        if (pending.push([msg, rinfo.address]) === 1) setImmediate(drain);
      });
      s.on('error', (err) => {
        M.errors.inc({ component: 'syslog', kind: 'udp' });
        opts.log?.error({ err: err.message }, 'syslog udp socket error');
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => reject(new Error(`syslog cannot bind udp ${c.address}:${c.udpPort}: ${err.message}`)));
        s.bind(c.udpPort, c.address, () => resolve());
      });
    }
    if (c.tcpPort !== undefined) {
      const srv = createServer((sock) => {
        if (conns.size >= c.maxConnections) {
          rejected.inc({ reason: 'too_many_connections' });
          sock.destroy();
          return;
        }
        conns.add(sock);
        const sender = (sock.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
        const framer = new SyslogFramer(c.maxMessageBytes, (m) => emit(m, sender, 'tcp'), (reason, detail) => {
          rejected.inc({ reason });
          opts.log?.warn({ sender, reason, detail }, 'syslog tcp stream rejected');
          sock.destroy();
        });
        sock.on('data', (d) => framer.push(d));
        sock.on('end', () => framer.end());
        sock.on('error', () => {});
        sock.on('close', () => conns.delete(sock));
      });
      tcp = srv;
      srv.on('error', (err) => {
        M.errors.inc({ component: 'syslog', kind: 'tcp' });
        opts.log?.error({ err: err.message }, 'syslog tcp server error');
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', (err) => reject(new Error(`syslog cannot listen on tcp ${c.address}:${c.tcpPort}: ${err.message}`)));
        srv.listen(c.tcpPort, c.address, () => resolve());
      });
    }
  } catch (err) {
    udp?.close();
    tcp?.close();
    throw err;
  }
  const udpAddr = udp?.address();
  const tcpAddr = tcp?.address();
  return {
    udpPort: udpAddr ? udpAddr.port : null,
    tcpPort: tcpAddr && typeof tcpAddr === 'object' ? tcpAddr.port : null,
    async close() {
      await new Promise<void>((r) => (udp ? udp.close(() => r()) : r()));
      for (const s of conns) s.end();
      await new Promise<void>((r) => (tcp ? tcp.close(() => r()) : r()));
    },
  };
}

/**
 * RFC 6587 framing of a TCP stream. Each frame is either octet-counted ("123 <123 bytes>") or ends at
 * LF (or NUL); a sender keeps to one, but the framer decides per frame, as rsyslog does. A frame longer
 * than the bound is cut there (the rest is skipped up to its end), so a connection holds at most the
 * bound whatever it announces; an octet count beyond 64 MiB is
 * a stream no one can resynchronise, and ends the connection.
 */
/** An octet count beyond this is no syslog message but a stream out of step: the connection ends. */
const MAX_OCTET_COUNT = 64 * 1024 * 1024;

export class SyslogFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** An over-long newline frame is being skipped up to its end (its head was emitted). */
  private skipping = false;
  /** Bytes of an over-long octet-counted frame still to skip (its head was emitted). */
  private skipBytes = 0;
  private dead = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (m: Buffer) => void,
    private readonly onFatal: (reason: 'bad_frame', detail: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.dead) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length === 0) return;
      if (this.skipBytes > 0) {
        const n = Math.min(this.skipBytes, this.buf.length);
        this.skipBytes -= n;
        this.buf = this.buf.subarray(n);
        continue;
      }
      if (this.skipping) {
        const nl = this.lineEnd();
        if (nl < 0) {
          this.buf = Buffer.alloc(0);
          return;
        }
        this.buf = this.buf.subarray(nl + 1);
        this.skipping = false;
        continue;
      }
      const first = this.buf[0]!;
      if (first >= 0x31 && first <= 0x39) {
        // Octet counting: digits, a space, then that many bytes.
        let i = 0;
        while (i < this.buf.length && i < 8 && this.buf[i]! >= 0x30 && this.buf[i]! <= 0x39) i++;
        if (i === this.buf.length) return;
        if (this.buf[i] === 0x20) {
          const len = Number(this.buf.subarray(0, i).toString('latin1'));
          if (len > MAX_OCTET_COUNT) {
            this.dead = true;
            this.onFatal('bad_frame', `octet count ${len} beyond any message size`);
            return;
          }
          if (len > this.maxBytes) {
            // Held only up to the bound (a connection's memory is the bound, whatever it announces):
            // the head goes on, cut, and the rest is skipped as it comes.
            if (this.buf.length < i + 2 + this.maxBytes) return;
            this.onMessage(this.buf.subarray(i + 1, i + 2 + this.maxBytes));
            this.skipBytes = len - (this.maxBytes + 1);
            this.buf = this.buf.subarray(i + 2 + this.maxBytes);
            continue;
          }
          if (this.buf.length < i + 1 + len) return;
          this.onMessage(this.buf.subarray(i + 1, i + 1 + len));
          this.buf = this.buf.subarray(i + 1 + len);
          continue;
        }
        // Digits without a space: an unframed message that starts with a number; newline framing.
      }
      const nl = this.lineEnd();
      if (nl < 0) {
        if (this.buf.length > this.maxBytes) {
          this.onMessage(this.buf.subarray(0, this.maxBytes + 1));
          this.skipping = true;
          this.buf = Buffer.alloc(0);
        }
        return;
      }
      const line = this.buf.subarray(0, nl);
      this.buf = this.buf.subarray(nl + 1);
      if (line.length > 0 && !(line.length === 1 && line[0] === 0x0d)) this.onMessage(line);
    }
  }

  /** The stream ended: a last message without its LF still counts. */
  end(): void {
    if (!this.dead && !this.skipping && this.buf.length > 0 && !(this.buf[0]! >= 0x31 && this.buf[0]! <= 0x39 && /^\d+ /.test(this.buf.subarray(0, 9).toString('latin1')))) this.onMessage(this.buf);
    this.buf = Buffer.alloc(0);
  }

  private lineEnd(): number {
    const lf = this.buf.indexOf(0x0a);
    const nul = this.buf.indexOf(0x00);
    return lf < 0 ? nul : nul < 0 ? lf : Math.min(lf, nul);
  }
}
