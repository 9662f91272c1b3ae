import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { counter, M } from '../core/metrics.js';
import type { Logger } from '../core/log.js';
import type { OutMessage } from '../core/bus.js';

/**
 * An outbox's items on disk while the bus does not take them, so a process killed during a broker
 * outage sends them when it starts again instead of losing them (a disk-assisted queue, as rsyslog's
 * and Vector's disk buffers). The file holds frames in the outbox's order; a second small file counts
 * how many leading frames the bus has taken, written (write, then rename) after each send. Once
 * everything spooled was taken the file is emptied: in normal running the spool is not written at all.
 *
 * A frame is [0xA5][u32 length][payload]. A process killed in the middle of a write leaves a torn last
 * frame, cut off at the next start. A frame the bus took just before a kill, before its count was
 * written, is sent once more: the window is one send.
 *
 * One process per spool: a `lock` file holds its pid; a second process on the same data directory
 * while the first lives gets no spool (its outbox then holds in memory only, as without a data dir).
 */

const MAGIC = 0xa5;
const HEAD = 5;

/** Lock files this process holds (a stale lock of its own pid is taken over; one held now is not). */
const held = new Set<string>();

const spooled = counter('noctua_outbox_spooled_total', 'Items written to an outbox spool on disk while the bus did not take them', ['source']);
const replayed = counter('noctua_outbox_replayed_total', 'Items read back from an outbox spool at start (held by a process that stopped before the bus took them)', ['source']);

export class Spool {
  private fd: number;
  /** Frames in the file, and how many of the first the bus has taken. */
  private frames = 0;
  private acked = 0;
  /** Bytes of whole frames in the file. */
  private size = 0;
  private broken = false;

  private constructor(private readonly dir: string, private readonly source: string, private readonly log?: Logger) {
    this.fd = openSync(join(dir, 'items'), 'a+');
  }

  /**
   * The spool in `dir` with what a stopped process left in it (the frames the bus had not taken, in
   * order), or null when another live process holds it.
   */
  static open(dir: string, source: string, log?: Logger): { spool: Spool; pending: Buffer[] } | null {
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, 'lock');
    if (held.has(lock)) {
      log?.warn({ source, spool: dir }, 'outbox spool already open in this process: holding in memory only');
      return null;
    }
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        log?.warn({ source, spool: dir, pid }, 'outbox spool held by another live process: holding in memory only');
        return null;
      }
      writeFileSync(lock, String(process.pid)); // a stale lock: its process is gone
    }
    const spool = new Spool(dir, source, log);
    held.add(lock);
    return { spool, pending: spool.load() };
  }

  /** The frames the bus had not taken; the file then holds only those. */
  private load(): Buffer[] {
    const data = readFileSync(join(this.dir, 'items'));
    const payloads: Buffer[] = [];
    let at = 0;
    while (at + HEAD <= data.length && data[at] === MAGIC) {
      const len = data.readUInt32BE(at + 1);
      if (at + HEAD + len > data.length) break;
      payloads.push(data.subarray(at + HEAD, at + HEAD + len));
      at += HEAD + len;
    }
    if (at < data.length) {
      M.errors.inc({ component: this.source, kind: 'spool_torn' });
      this.log?.warn({ source: this.source, spool: this.dir, bytes: data.length - at }, 'outbox spool: a torn last write was cut off');
    }
    const taken = Math.min(this.readAcked(), payloads.length);
    const pending = payloads.slice(taken);
    if (taken > 0 || at < data.length) this.rewrite(pending);
    else {
      this.frames = pending.length;
      this.size = at;
    }
    if (pending.length > 0) replayed.inc({ source: this.source }, pending.length);
    return pending;
  }

  /** Appends frames; false when the disk refused them (counted, logged; the items stay in memory). */
  append(payloads: readonly Buffer[]): boolean {
    if (payloads.length === 0) return true;
    if (this.broken) return false;
    const buf = Buffer.concat(payloads.flatMap((p) => [frameHead(p.length), p]));
    try {
      writeSync(this.fd, buf);
    } catch (err) {
      // Whatever part was written is after every frame counted: cut it off and stop spooling until empty.
      this.broken = true;
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        /* the next start cuts a torn frame off */
      }
      M.errors.inc({ component: this.source, kind: 'spool_write' });
      this.log?.error({ source: this.source, spool: this.dir, err: (err as Error).message }, 'outbox spool could not be written: holding in memory only until it is empty');
      return false;
    }
    this.frames += payloads.length;
    this.size += buf.length;
    spooled.inc({ source: this.source }, payloads.length);
    return true;
  }

  /** The bus took the next `n` spooled frames. */
  ack(n: number): void {
    if (n <= 0) return;
    this.acked = Math.min(this.frames, this.acked + n);
    if (this.acked === this.frames) {
      this.clear();
      return;
    }
    this.guard('ack', () => {
      const f = join(this.dir, 'acked');
      writeFileSync(`${f}.tmp`, String(this.acked));
      renameSync(`${f}.tmp`, f);
    });
  }

  /** The file becomes exactly these frames (after items were dropped); false when the disk refused. */
  rewrite(payloads: readonly Buffer[]): boolean {
    return this.guard('rewrite', () => {
      // The count of taken frames goes first: a kill in between leaves the old file counted from 0
      // (sent again), never the new one with the old count (frames skipped).
      rmSync(join(this.dir, 'acked'), { force: true });
      const tmp = join(this.dir, 'items.tmp');
      writeFileSync(tmp, Buffer.concat(payloads.flatMap((p) => [frameHead(p.length), p])));
      renameSync(tmp, join(this.dir, 'items'));
      closeSync(this.fd);
      this.fd = openSync(join(this.dir, 'items'), 'a+');
      this.frames = payloads.length;
      this.acked = 0;
      this.size = fstatSync(this.fd).size;
      this.broken = false;
    });
  }

  /** Everything spooled was taken. */
  clear(): void {
    this.guard('clear', () => {
      rmSync(join(this.dir, 'acked'), { force: true }); // first: see rewrite()
      ftruncateSync(this.fd, 0);
      this.frames = 0;
      this.acked = 0;
      this.size = 0;
      this.broken = false;
    });
  }

  /** A disk that refuses (full, gone): counted, logged, and no more spooling until a rewrite or clear works. */
  private guard(what: string, f: () => void): boolean {
    try {
      f();
      return true;
    } catch (err) {
      this.broken = true;
      M.errors.inc({ component: this.source, kind: 'spool_write' });
      this.log?.error({ source: this.source, spool: this.dir, op: what, err: (err as Error).message }, 'outbox spool could not be written: holding in memory only');
      return false;
    }
  }

  close(): void {
    closeSync(this.fd);
    held.delete(join(this.dir, 'lock'));
    try {
      if (Number(readFileSync(join(this.dir, 'lock'), 'utf8')) === process.pid) rmSync(join(this.dir, 'lock'));
    } catch {
      /* gone already */
    }
  }

  private readAcked(): number {
    const f = join(this.dir, 'acked');
    if (!existsSync(f)) return 0;
    const n = Number(readFileSync(f, 'utf8'));
    return Number.isInteger(n) && n >= 0 ? n : 0;
  }
}

function frameHead(len: number): Buffer {
  const h = Buffer.alloc(HEAD);
  h[0] = MAGIC;
  h.writeUInt32BE(len, 1);
  return h;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Counts a spooled message carries beside itself (e.g. the samples of a batch). */
export type SpoolExtra = Readonly<Record<string, number>>;

/** A message to the bus as a spool frame: [u32 length][JSON of topic, key, timestamp, extra][value]. */
export function frameMessage(topic: string, m: OutMessage, extra: SpoolExtra = {}): Buffer {
  const meta = Buffer.from(JSON.stringify({ t: topic, k: m.key, ts: m.timestamp, x: extra }));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(meta.length);
  return Buffer.concat([h, meta, m.value ?? Buffer.alloc(0)]);
}

export function unframeMessage(frame: Buffer): { topic: string; message: OutMessage; extra: SpoolExtra } {
  const len = frame.readUInt32BE(0);
  if (4 + len > frame.length) throw new Error(`spool frame of ${frame.length} bytes announces ${len} bytes of metadata`);
  const meta = JSON.parse(frame.subarray(4, 4 + len).toString('utf8')) as { t?: unknown; k?: unknown; ts?: unknown; x?: unknown };
  if (typeof meta.t !== 'string') throw new Error('spooled message without a topic');
  const key = typeof meta.k === 'string' ? meta.k : null;
  return { topic: meta.t, message: { key, value: frame.subarray(4 + len), ...(typeof meta.ts === 'number' ? { timestamp: meta.ts } : {}) }, extra: (meta.x && typeof meta.x === 'object' ? meta.x : {}) as SpoolExtra };
}
