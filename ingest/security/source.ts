import { hostname } from 'node:os';
import { join } from 'node:path';
import { messageBytes, type Bus, type BusProducer, type OutMessage } from '../../core/bus.js';
import { TOPICS, type NetEvent } from '../../core/types.js';
import { decodeEvent, encodeBatch, encodeEvent } from '../../core/codec.js';
import { counter, M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { Outbox } from '../outbox.js';
import { frameMessage, unframeMessage } from '../spool.js';
import { parseSecurityConfig, type FileSpec, type SecurityConfig } from './config.js';
import { startSyslogListener, type SyslogListener } from './syslog.js';
import { eveEvent } from './eve.js';
import { fail2banEvent } from './fail2ban.js';
import { EventCounts } from './counts.js';
import { FileFollower, PositionStore, type Line, type Position } from './follow.js';

/**
 * Security events on the bus: the syslog receiver, Suricata EVE files and fail2ban logs, each event to
 * the events topic keyed by device. Events wait in an outbox while the bus is away; a followed file's
 * position is saved once the bus has taken everything before it.
 */

const lines = counter('noctua_security_lines_total', 'Lines read from followed files, by kind and outcome', ['kind', 'outcome']);

export interface SecuritySourceOptions {
  readonly bus: Bus;
  /** The raw `cfg.security` section; validated here. */
  readonly security: unknown;
  /** Where followed files' positions are kept. */
  readonly dataDir: string;
  /** Maps a sender address to a polled device's name. */
  readonly deviceFor?: (address: string) => string | undefined;
  readonly log?: Logger;
}

export interface SecuritySource {
  readonly config: SecurityConfig;
  readonly syslog?: SyslogListener;
  /** Resolves when everything read so far is on the bus and its positions are saved (tests). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** An event or a batch of counts on its way to the bus, or only a position (lines that made no event still move it on). */
interface Outgoing {
  readonly topic?: string;
  readonly message?: OutMessage;
  /** The event, counted in security_events_5m once the bus has it. */
  readonly event?: NetEvent;
  /** A batch of counts: how many samples. */
  readonly samples?: number;
  readonly file?: string;
  readonly at?: Position;
}

/** Downstream holds this much: followed files wait (their lines stay in the file until then). */
const PAUSE_BYTES = 16 * 1024 * 1024;

export async function startSecuritySource(opts: SecuritySourceOptions): Promise<SecuritySource> {
  const config = parseSecurityConfig(opts.security);
  const log = opts.log;
  const producer: BusProducer = await opts.bus.producer();
  // Counted when the bus has the event, and saved in the same write as the positions: after a kill,
  // the counts hold exactly the events before the saved positions, and the lines read again from
  // there are counted once more, as they are sent once more.
  const counts = new EventCounts(config.countStepMs);
  const store = new PositionStore(join(opts.dataDir, 'security', 'positions.json'), log, { save: () => counts.toJSON(), load: (s) => counts.restore(s) });
  const outbox = new Outbox<Outgoing>({
    source: 'security',
    ...(log ? { log } : {}),
    bytes: (o) => (o.message ? messageBytes(o.message) : 64),
    lane: (o) => o.topic ?? TOPICS.events,
    describe: (os) => ({ topic: os[0]?.topic ?? TOPICS.events, messages: os.length }),
    // Syslog events and count batches while the bus is away; a followed file's lines are in the file.
    spool: {
      dir: join(opts.dataDir, 'spool', 'security'),
      encode: (o) => (o.file || !o.message ? null : frameMessage(o.topic ?? TOPICS.events, o.message, { ...(o.samples !== undefined ? { samples: o.samples } : {}), ...(o.event ? { event: 1 } : {}) })),
      decode: (frame) => {
        const { topic, message, extra } = unframeMessage(frame);
        return { topic, message, ...(extra.event ? { event: decodeEvent(message.value!) } : {}), ...(extra.samples !== undefined ? { samples: extra.samples } : {}) };
      },
    },
    send: async (os) => {
      const messages = os.flatMap((o) => (o.message ? [o.message] : []));
      if (messages.length > 0) await producer.send(os[0]!.topic ?? TOPICS.events, messages);
      const now = Date.now();
      for (const o of os) {
        if (o.event) {
          counts.add(o.event, now);
          store.touch();
        }
        if (o.samples !== undefined) {
          M.batchesIngested.inc({ source: 'security' });
          M.samplesIngested.inc({ source: 'security' }, o.samples);
        }
        if (o.file && o.at) store.set(o.file, o.at);
      }
    },
  });
  const emit = (e: NetEvent, file?: string, at?: Position) => {
    outbox.push({ message: { key: e.device, value: encodeEvent(e), timestamp: e.ts }, event: e, ...(file && at ? { file, at } : {}) });
  };
  const sendCounts = () => {
    for (const b of counts.batches(Date.now())) outbox.push({ topic: TOPICS.samples, message: { key: b.device, value: encodeBatch(b), timestamp: b.ts }, samples: b.samples.length });
  };

  let syslog: SyslogListener | undefined;
  const followers: FileFollower[] = [];
  const timers: NodeJS.Timeout[] = [];
  const here = hostname();
  const follow = (kind: 'eve' | 'fail2ban', spec: FileSpec, toEvent: (line: string, device: string, where: string) => { ok: true; event: NetEvent } | { ok: false; reason: string; detail: string }) => {
    const device = spec.device ?? here;
    const f = new FileFollower({
      path: spec.path,
      from: store.get(spec.path),
      startAt: config.startAt,
      maxLineBytes: config.maxLineBytes,
      paused: () => outbox.bytes > PAUSE_BYTES,
      ...(log ? { log } : {}),
      onLines: (ls: readonly Line[], end: Position) => {
        let lastEmitted = false;
        for (const l of ls) {
          const r = toEvent(l.text, device, `${l.at.ino}:${l.at.offset}`);
          if (r.ok) {
            lines.inc({ kind, outcome: 'event' });
            emit(r.event, spec.path, l.at);
            lastEmitted = true;
          } else {
            lines.inc({ kind, outcome: r.reason });
            if (r.reason !== 'skipped' && r.reason !== 'skipped_type') log?.warn({ file: spec.path, offset: l.at.offset, reason: r.reason, detail: r.detail.slice(0, 120) }, `${kind} line rejected`);
            lastEmitted = false;
          }
        }
        if (!lastEmitted) outbox.push({ file: spec.path, at: end });
      },
    });
    followers.push(f);
    const tick = () => {
      f.poll().catch((err) => log?.error({ file: spec.path, err: (err as Error).message }, 'followed file read failed'));
    };
    tick();
    timers.push(setInterval(tick, config.pollMs));
  };

  timers.push(setInterval(sendCounts, config.countStepMs));
  try {
    if (config.syslog.enabled) {
      syslog = await startSyslogListener({ config: config.syslog, emitEvent: (e) => emit(e), ...(opts.deviceFor ? { deviceFor: opts.deviceFor } : {}), ...(log ? { log } : {}) });
    }
    for (const spec of config.eve.files) follow('eve', spec, (line, device, where) => eveEvent(line, { types: config.eve.types, device, where }));
    for (const spec of config.fail2ban.files) follow('fail2ban', spec, (line, device, where) => fail2banEvent(line, { device, found: config.fail2ban.found, where }));
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await producer.close();
    throw err;
  }
  log?.info({ syslogUdp: syslog?.udpPort ?? false, syslogTcp: syslog?.tcpPort ?? false, eve: config.eve.files.length, fail2ban: config.fail2ban.files.length }, 'security source started');

  return {
    config,
    ...(syslog ? { syslog } : {}),
    async idle() {
      await Promise.all(followers.map((f) => f.poll()));
      await outbox.idle();
      store.flush();
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      await syslog?.close();
      for (const f of followers) await f.close();
      await outbox.close(15_000);
      store.flush();
      await producer.close();
    },
  };
}
