import { open, stat, type FileHandle } from 'node:fs/promises';
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { counter, M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';

/**
 * Follows a log file as `tail -F` does, from a saved position, through rotation (the path names a new
 * file: the old one is read to its end first) and truncation (copytruncate: read again from 0). The
 * position of a line is saved only once what it became is on the bus (see PositionStore), so a killed
 * process reads again from there: lines are delayed, never lost; the ones read twice are the same
 * events, with the same ids (ClickHouse's events table folds them).
 */

const skippedLong = counter('noctua_follow_long_lines_total', 'Lines of followed files longer than maxLineBytes, skipped', ['file']);
const rotations = counter('noctua_follow_rotations_total', 'Followed files seen rotated or truncated', ['file', 'how']);

/** Where reading stands in one file: its inode (a rotated path is another file) and the next byte to read. */
export interface Position {
  readonly ino: number;
  readonly offset: number;
}

export interface Line {
  readonly text: string;
  /** The position after this line. */
  readonly at: Position;
}

export interface FollowOptions {
  readonly path: string;
  /** Saved position; null when the file was never followed. */
  readonly from: Position | null;
  readonly startAt: 'end' | 'beginning';
  readonly maxLineBytes: number;
  readonly onLines: (lines: readonly Line[], end: Position) => void;
  /** True while downstream holds too much: reading waits (the file is the buffer). */
  readonly paused?: () => boolean;
  readonly log?: Logger;
}

const CHUNK = 1024 * 1024;

export class FileFollower {
  private fd: FileHandle | null = null;
  private ino = 0;
  private offset = 0;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private skipping = false;
  private saved: Position | null;
  private busy = false;
  private missingLogged = false;

  constructor(private readonly o: FollowOptions) {
    this.saved = o.from;
  }

  /** Reads what is new; call on a timer. */
  async poll(): Promise<void> {
    if (this.busy || this.o.paused?.()) return;
    this.busy = true;
    try {
      if (!this.fd && !(await this.openFile())) return;
      for (let rounds = 0; rounds < 16 && !this.o.paused?.(); rounds++) {
        const n = await this.readChunk();
        if (n > 0) continue;
        // At the end: has the path moved on to another file, or been truncated?
        const now = await stat(this.o.path).catch(() => null);
        if (now && now.ino !== this.ino) {
          rotations.inc({ file: this.o.path, how: 'rotated' });
          this.o.log?.info({ file: this.o.path }, 'followed file rotated: reading the new one from its start');
          await this.closeFile();
          this.saved = { ino: now.ino, offset: 0 };
          if (!(await this.openFile())) return;
          continue;
        }
        const size = (await this.fd!.stat()).size;
        if (size < this.offset) {
          rotations.inc({ file: this.o.path, how: 'truncated' });
          this.o.log?.info({ file: this.o.path, size, offset: this.offset }, 'followed file truncated: reading it again from its start');
          this.offset = 0;
          this.partial = [];
          this.partialBytes = 0;
          continue;
        }
        return;
      }
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    await this.closeFile();
  }

  private async openFile(): Promise<boolean> {
    let fd: FileHandle;
    try {
      fd = await open(this.o.path, 'r');
    } catch (err) {
      if (!this.missingLogged) this.o.log?.warn({ file: this.o.path, err: (err as Error).message }, 'followed file cannot be opened yet; trying again');
      this.missingLogged = true;
      return false;
    }
    this.missingLogged = false;
    const st = await fd.stat();
    this.fd = fd;
    this.ino = st.ino;
    const s = this.saved;
    if (s && s.ino === st.ino && s.offset <= st.size) this.offset = s.offset;
    else if (s) this.offset = 0; // another file than the one we left (rotated while we were down), or truncated
    else this.offset = this.o.startAt === 'end' ? st.size : 0;
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
    return true;
  }

  private async closeFile(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    await fd?.close().catch(() => {});
  }

  /** Reads one chunk at the offset and hands its whole lines on; returns the bytes read. */
  private async readChunk(): Promise<number> {
    const buf = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await this.fd!.read(buf, 0, CHUNK, this.offset);
    if (bytesRead === 0) return 0;
    const data = buf.subarray(0, bytesRead);
    const lines: Line[] = [];
    let start = 0;
    let base = this.offset - this.partialBytes;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      const end = this.offset + nl + 1;
      if (this.skipping) {
        this.skipping = false;
      } else {
        const piece = data.subarray(start, nl);
        const bytes = this.partialBytes + piece.length;
        if (bytes > this.o.maxLineBytes) {
          skippedLong.inc({ file: this.o.path });
        } else {
          const whole = this.partial.length > 0 ? Buffer.concat([...this.partial, piece]) : piece;
          const text = whole.toString('utf8').replace(/\r$/, '');
          if (text !== '') lines.push({ text, at: { ino: this.ino, offset: end } });
        }
      }
      this.partial = [];
      this.partialBytes = 0;
      base = end;
      start = nl + 1;
    }
    if (start < data.length && !this.skipping) {
      const rest = Buffer.from(data.subarray(start));
      this.partial.push(rest);
      this.partialBytes += rest.length;
      if (this.partialBytes > this.o.maxLineBytes) {
        skippedLong.inc({ file: this.o.path });
        this.partial = [];
        this.partialBytes = 0;
        this.skipping = true;
      }
    }
    this.offset += bytesRead;
    // The position reached by whole lines (a partial line is read again after a restart).
    this.o.onLines(lines, { ino: this.ino, offset: base });
    return bytesRead;
  }
}

/** State saved in the same write as the positions, so that the two always agree (see source.ts). */
export interface SavedWith {
  save(): unknown;
  load(saved: unknown): void;
}

/**
 * The followed files' positions, saved as JSON in the data directory (write, then rename: a crash
 * leaves the old file or the new, never half of one). Like Filebeat's registry: local files, local state.
 * `with` rides in the same file: `{ positions, state }` (a file of positions alone, as written before
 * that, is read too).
 */
export class PositionStore {
  private positions: Record<string, Position> = {};
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly file: string, private readonly log?: Logger, private readonly with_?: SavedWith) {
    try {
      const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (raw && typeof raw === 'object') {
        const saved = raw as { positions?: unknown; state?: unknown };
        const positions = saved.positions && typeof saved.positions === 'object' ? saved.positions : raw;
        for (const [k, v] of Object.entries(positions as Record<string, unknown>)) {
          const p = v as Partial<Position> | null;
          if (typeof p?.ino === 'number' && typeof p.offset === 'number') this.positions[k] = { ino: p.ino, offset: p.offset };
        }
        if ('state' in saved) with_?.load(saved.state);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ file, err: (err as Error).message }, 'followed files positions unreadable: starting over');
    }
  }

  get(path: string): Position | null {
    return this.positions[path] ?? null;
  }

  /** Records a position the bus has taken everything before (in order: a truncated file's go back); saved within a second. */
  set(path: string, p: Position): void {
    this.positions[path] = p;
    this.touch();
  }

  /** The state saved with the positions changed; saved within a second. */
  touch(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      try {
        this.flush();
      } catch (err) {
        // A full disk: kept dirty and tried again at the next change; a restart then reads again from further back.
        M.errors.inc({ component: 'security', kind: 'positions_save' });
        this.log?.error({ file: this.file, err: (err as Error).message }, 'followed files positions could not be saved');
      }
    }, 1000);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.dirty) return;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify({ positions: this.positions, ...(this.with_ ? { state: this.with_.save() } : {}) }));
    renameSync(`${this.file}.tmp`, this.file);
    this.dirty = false;
  }
}
