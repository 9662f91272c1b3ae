import type { Labels, NetEvent, Sample, SampleBatch } from './types.js';
import { SEVERITIES } from './types.js';

/**
 * Compact binary codec for sample batches (one message per poll of one device).
 *
 * Layout (v1), all integers unsigned LEB128 varints unless noted:
 *   'N' 0x01                       magic + version
 *   nStrings, (len, utf8)*          string table: metric names, label keys and values, device, source
 *   deviceIdx, sourceIdx
 *   batchTs                        float64 LE
 *   nLabelSets, (nPairs, (k, v)*)* label sets, shared by the samples of one interface
 *   nSamples, (metricIdx, labelSetIdx, zigzag(ts - batchTs), value float64 LE)*
 *
 * Strings and label sets repeat heavily within a poll (48 interfaces x 20 metrics share
 * 48 label sets), which is where the size win over JSON comes from; see benchmarks/codec.ts.
 */
export const BATCH_MAGIC = 0x4e;
export const BATCH_VERSION = 1;

export class CodecError extends Error {
  constructor(message: string, readonly offset?: number) {
    super(offset === undefined ? message : `${message} at byte ${offset}`);
    this.name = 'CodecError';
  }
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Growable little-endian writer of varints, float64s and strings (shared by the project's binary records). */
export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }
  f64(v: number): void {
    this.ensure(8);
    if (LITTLE_ENDIAN) {
      // byte copies from a shared view: cheaper than writeDoubleLE's checks on the hot path
      F64[0] = v;
      const b = this.buf;
      const p = this.pos;
      for (let k = 0; k < 8; k++) b[p + k] = F64_BYTES[k]!;
    } else this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      // ASCII fast path (names, label keys, most values): one length byte, then the chars
      this.ensure(n + 1);
      const b = this.buf;
      let p = this.pos + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.strUtf8(s);
        b[p++] = c;
      }
      b[this.pos] = n;
      this.pos = p;
      return;
    }
    this.strUtf8(s);
  }
  private strUtf8(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += len;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bounds-checked reader matching Writer: every overrun is a CodecError with its byte offset. */
export class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw new CodecError('truncated varint', this.pos);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 0x80;
    }
    throw new CodecError('varint too long', this.pos);
  }
  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new CodecError('truncated float64', this.pos);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  /** Skips a string, checking it fits; returns where it starts (at its length). */
  skipStr(): number {
    const at = this.pos;
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new CodecError(`string of ${len} bytes overruns message`, this.pos);
    this.pos += len;
    return at;
  }
  str(): string {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new CodecError(`string of ${len} bytes overruns message`, this.pos);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  count(what: string, max: number): number {
    const n = this.varint();
    if (n > max) throw new CodecError(`${what} count ${n} exceeds ${max}`, this.pos);
    return n;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
}

export const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);
export const unzigzag = (n: number): number => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

export function encodeBatch(batch: SampleBatch): Buffer {
  const strings = new Map<string, number>();
  const table: string[] = [];
  const intern = (s: string): number => {
    let i = strings.get(s);
    if (i === undefined) {
      i = table.length;
      table.push(s);
      strings.set(s, i);
    }
    return i;
  };
  const labelSets = new Map<Labels, number>();
  const labelSetKeys = new Map<string, number>();
  const sets: number[][] = [];
  const setOf = (labels: Labels): number => {
    // Identity first: pollers reuse one labels object per interface.
    const byRef = labelSets.get(labels);
    if (byRef !== undefined) return byRef;
    const pairs: number[] = [];
    for (const k in labels) pairs.push(intern(k), intern(labels[k]!));
    const key = pairs.join(',');
    let idx = labelSetKeys.get(key);
    if (idx === undefined) {
      idx = sets.length;
      sets.push(pairs);
      labelSetKeys.set(key, idx);
    }
    labelSets.set(labels, idx);
    return idx;
  };
  const deviceIdx = intern(batch.device);
  const sourceIdx = intern(batch.source);
  const n = batch.samples.length;
  const metricIdx = new Array<number>(n);
  const setIdx = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const s = batch.samples[i]!;
    if (!Number.isInteger(s.ts)) throw new CodecError(`sample ${i} of ${batch.device} has a non-integer ts ${s.ts}`);
    metricIdx[i] = intern(s.metric);
    setIdx[i] = setOf(s.labels);
  }
  const w = new Writer(64 + n * 14 + table.length * 12);
  w.buf[w.pos++] = BATCH_MAGIC;
  w.buf[w.pos++] = BATCH_VERSION;
  w.varint(table.length);
  for (const s of table) w.str(s);
  w.varint(deviceIdx);
  w.varint(sourceIdx);
  w.f64(batch.ts);
  w.varint(sets.length);
  for (const pairs of sets) {
    w.varint(pairs.length / 2);
    for (const p of pairs) w.varint(p);
  }
  w.varint(n);
  for (let i = 0; i < n; i++) {
    const s = batch.samples[i]!;
    w.varint(metricIdx[i]!);
    w.varint(setIdx[i]!);
    w.varint(zigzag(s.ts - batch.ts));
    w.f64(s.value);
  }
  return w.bytes();
}

const MAX_STRINGS = 1_000_000;

/**
 * Decoded strings (metric names, label names and values, devices) are interned: every message
 * would otherwise bring new instances of the same few thousand strings, and each Map lookup
 * downstream (rates, windows, rules) would hash and compare them byte by byte. Canonical instances
 * keep their hash and compare by pointer. Bounded: cleared when it holds INTERN_MAX strings.
 */
const INTERN_MAX = 200_000;
let internTable = new Map<string, string>();
function interned(s: string): string {
  const c = internTable.get(s);
  if (c !== undefined) return c;
  if (internTable.size >= INTERN_MAX) internTable = new Map();
  internTable.set(s, s);
  return s;
}
const MAX_SAMPLES = 10_000_000;

/**
 * What a device's messages repeat: the string table and the label sets are the same bytes in every
 * poll (only the timestamp and the samples change). The decoded strings and labels objects are kept
 * per device and reused while those bytes stay the same: decoding gets cheaper, and every
 * downstream cache keyed by a labels object (series identity, the sink's series index) hits
 * across messages. Labels objects are therefore shared between batches: they are never mutated.
 */
interface DecodedHead {
  /** Copies of the bytes [2, batchTs) and [after batchTs, samples) they were decoded from. */
  readonly head: Buffer;
  readonly sets: Buffer;
  readonly device: string;
  readonly source: string;
  readonly labelSets: Labels[];
}
const HEAD_CACHE_MAX = 20_000;
const heads = new Map<string, DecodedHead>();

/** Decodes a batch; throws CodecError (never anything else) on malformed input. */
export function decodeBatch(buf: Buffer): SampleBatch {
  if (!Buffer.isBuffer(buf) || buf.length < 2) throw new CodecError('message too short for a sample batch');
  if (buf[0] !== BATCH_MAGIC) throw new CodecError(`bad magic 0x${buf[0]!.toString(16)}`, 0);
  if (buf[1] !== BATCH_VERSION) throw new CodecError(`unsupported batch version ${buf[1]}`, 1);
  const r = new Reader(buf);
  r.pos = 2;
  const nStrings = r.count('string', Math.min(MAX_STRINGS, r.remaining));
  const starts = new Array<number>(nStrings);
  for (let i = 0; i < nStrings; i++) starts[i] = r.skipStr();
  const strAt = (i: number, at: number): string => {
    if (!(i < nStrings)) throw new CodecError(`string index ${i} out of range (${nStrings})`, at);
    const p = starts[i]!;
    r.pos = p;
    const s = r.str();
    return s;
  };
  const deviceIdx = r.varint();
  const sourceIdx = r.varint();
  const headEnd = r.pos;
  const ts = r.f64();
  if (!Number.isFinite(ts)) throw new CodecError('batch ts is not finite', r.pos);
  const setsStart = r.pos;
  const nSets = r.count('label set', r.remaining);
  for (let i = 0; i < nSets; i++) {
    const nPairs = r.count('label', r.remaining);
    for (let j = 0; j < 2 * nPairs; j++) r.varint();
  }
  const setsEnd = r.pos;
  const device = interned(strAt(deviceIdx, headEnd));
  let h = heads.get(device);
  if (h === undefined || buf.compare(h.head, 0, h.head.length, 2, headEnd) !== 0 || buf.compare(h.sets, 0, h.sets.length, setsStart, setsEnd) !== 0) {
    const table = new Array<string>(nStrings);
    for (let i = 0; i < nStrings; i++) table[i] = interned(strAt(i, headEnd));
    const at = (i: number, pos: number): string => {
      const s = table[i];
      if (s === undefined) throw new CodecError(`string index ${i} out of range (${nStrings})`, pos);
      return s;
    };
    r.pos = setsStart;
    r.count('label set', r.remaining);
    const labelSets = new Array<Labels>(nSets);
    for (let i = 0; i < nSets; i++) {
      const nPairs = r.count('label', r.remaining);
      const labels: Record<string, string> = {};
      for (let j = 0; j < nPairs; j++) {
        const k = at(r.varint(), r.pos);
        labels[k] = at(r.varint(), r.pos);
      }
      labelSets[i] = labels;
    }
    h = { head: Buffer.from(buf.subarray(2, headEnd)), sets: Buffer.from(buf.subarray(setsStart, setsEnd)), device, source: at(sourceIdx, headEnd), labelSets };
    // Beyond HEAD_CACHE_MAX devices the longest-cached one goes (a changed head is re-inserted, so
    // insertion order roughly follows recency): no cliff where every device misses at once.
    heads.delete(device);
    if (heads.size >= HEAD_CACHE_MAX) heads.delete(heads.keys().next().value!);
    heads.set(device, h);
  }
  r.pos = setsEnd;
  const sets = h.labelSets;
  // Metric names are strings of the table: decode each once per message, interned.
  const metrics = new Array<string | undefined>(nStrings);
  const n = r.count('sample', Math.min(MAX_SAMPLES, Math.floor(r.remaining / 11)));
  const samples = new Array<Sample>(n);
  for (let i = 0; i < n; i++) {
    const mi = r.varint();
    let metric = metrics[mi];
    if (metric === undefined) {
      const back = r.pos;
      metric = metrics[mi] = interned(strAt(mi, back));
      r.pos = back;
    }
    const si = r.varint();
    const labels = sets[si];
    if (labels === undefined) throw new CodecError(`label set index ${si} out of range (${nSets})`, r.pos);
    const t = ts + unzigzag(r.varint());
    samples[i] = { metric, labels, ts: t, value: r.f64() };
  }
  if (r.remaining !== 0) throw new CodecError(`${r.remaining} trailing bytes`, r.pos);
  return { device, source: h.source, ts, samples };
}

/** Events are low-volume and keep their original fields: JSON, validated on decode. */
export function encodeEvent(e: NetEvent): Buffer {
  return Buffer.from(JSON.stringify(e), 'utf8');
}

export function decodeEvent(buf: Buffer): NetEvent {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new CodecError(`event is not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new CodecError('event is not an object');
  const e = v as Record<string, unknown>;
  for (const f of ['id', 'source', 'kind', 'device', 'message'] as const) {
    if (typeof e[f] !== 'string') throw new CodecError(`event field ${f} must be a string`);
  }
  if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) throw new CodecError('event field ts must be a finite number');
  if (!SEVERITIES.includes(e.severity as never)) throw new CodecError(`event severity ${String(e.severity)} is not one of ${SEVERITIES.join(', ')}`);
  if (typeof e.fields !== 'object' || e.fields === null) throw new CodecError('event field fields must be an object');
  return e as unknown as NetEvent;
}
