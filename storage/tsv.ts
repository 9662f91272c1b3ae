/**
 * A growable TabSeparated byte builder: the sink's insert bodies are built straight into one Buffer
 * (benchmarks/sink-formats.ts: building strings or row objects costs more than the engine's insert).
 */
export class TsvBuilder {
  private buf: Buffer;
  private pos = 0;
  rows = 0;

  constructor(initialBytes = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Pre-encoded bytes, e.g. a cached `metric\tseries\tdevice\t` row prefix. */
  raw(bytes: Buffer): this {
    this.ensure(bytes.length);
    // TypedArray.set beats Buffer.copy for short row prefixes (measured ~3x).
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** A string field, escaped for TabSeparated. */
  str(s: string): this {
    const e = escapeTsv(s);
    const n = Buffer.byteLength(e, 'utf8');
    this.ensure(n);
    this.buf.write(e, this.pos, 'utf8');
    this.pos += n;
    return this;
  }

  /** ASCII text (number spellings) byte by byte: cheaper than a native write call per value. */
  private ascii(s: string): this {
    this.ensure(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
    return this;
  }

  /** An integer (safe range). */
  int(n: number): this {
    return this.ascii(String(n));
  }

  private lastTs = NaN;
  private lastTsBytes = Buffer.alloc(0);

  /** An integer that repeats row after row (a poll's timestamp): its digits are kept. */
  ts(n: number): this {
    if (n !== this.lastTs) {
      this.lastTs = n;
      this.lastTsBytes = Buffer.from(String(n), 'latin1');
    }
    return this.raw(this.lastTsBytes);
  }

  /** A Float64 in a form ClickHouse reads: integers as digits, nan/inf spelled its way. */
  float(v: number): this {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.int(v);
    let s: string;
    if (Number.isNaN(v)) s = 'nan';
    else if (v === Infinity) s = 'inf';
    else if (v === -Infinity) s = '-inf';
    else s = String(v);
    return this.ascii(s);
  }

  tab(): this {
    this.ensure(1);
    this.buf[this.pos++] = 9;
    return this;
  }

  /** Ends a row. */
  nl(): this {
    this.ensure(1);
    this.buf[this.pos++] = 10;
    this.rows++;
    return this;
  }

  /** The body so far (a view: valid until the next write or reset). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** The body, handed over: the builder continues in a fresh buffer sized like this body (no copy). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(Math.max(1 << 16, Math.ceil(this.pos * 1.25)));
    this.reset();
    return out;
  }

  reset(): void {
    this.pos = 0;
    this.rows = 0;
  }
}

/** TabSeparated escaping: backslash, tab, newline and carriage return (the rest passes as UTF-8). */
export function escapeTsv(s: string): string {
  if (!/[\\\t\n\r\0]/.test(s)) return s;
  return s.replace(/[\\\t\n\r\0]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\0'));
}
