import { CodecError, Reader, Writer, zigzag, unzigzag } from '../core/codec.js';
import { labelsText, seriesKey } from '../core/series.js';
import type { SketchJSON } from './sketch.js';
import type { RollupRecord } from './runner.js';

/**
 * Binary rollup records for the rollups topic: the processors write one per closed (or corrected)
 * window and series, several hundred thousand per minute on a large network, so JSON's encoding
 * time and size (~520 B, most of it repeated field names) were the biggest cost of the Kafka path
 * after the produce round trips themselves.
 *
 * One message carries the records of one key (device) from one transaction: per-record overhead in
 * the Kafka client (record encoding, checksums) cost more than the bytes themselves.
 *
 * Layout (v1), integers unsigned LEB128 varints, floats float64 LE:
 *   'R' 0x01                              magic + version
 *   n                                     records that follow, each:
 *   flags                                 1 rate present, 2 positive store, 4 negative store,
 *                                         8 zero count, 16 correction, 32 bucket counts as float64,
 *                                         64 key written, 128 integer times, 256 integer count
 *   window, metric                        strings (varint length + utf8)
 *   nLabels, (key, value)*                strings
 *   [key]                                 only when it is not seriesKey(metric, labels) (it always is
 *                                         for the window operator's results: the decoder rebuilds it)
 *   revision
 *   times                                 integer times: start, end - start, firstTs - start,
 *                                         lastTs - start as varints; else four float64
 *   count                                 varint when an integer, else float64
 *   sum, min, max, avg, first, last       float64
 *   [rate]                                float64
 *   p50, p95, p99                         float64
 *   alpha                                 float64
 *   per store: n, zigzag(first index), (index delta)*, counts (varint, or float64 with flag 32)
 *   [zero count]                          float64
 *
 * decodeRollups also reads the JSON records written before this format (first byte '{', one record
 * per message), so a topic that holds both decodes whole during an upgrade.
 */
export const ROLLUP_MAGIC = 0x52;
export const ROLLUP_VERSION = 1;
const JSON_START = 0x7b;

const F_RATE = 1;
const F_POS = 2;
const F_NEG = 4;
const F_ZERO = 8;
const F_CORRECTION = 16;
const F_FLOAT_COUNTS = 32;
const F_KEY = 64;
const F_INT_TIMES = 128;
const F_INT_COUNT = 256;
const F_ALL = 511;
const MAX_BUCKETS = 1 << 20;
const MAX_LABELS = 4096;
/** The smallest record: flags, window, metric, label count, revision, 4 times, count (10 bytes) and 10 float64s. */
const MIN_RECORD_BYTES = 10 + 10 * 8;

function integral(a: readonly number[] | undefined): boolean {
  if (a) for (let i = 0; i < a.length; i++) if (!Number.isSafeInteger(a[i]) || a[i]! < 0) return false;
  return true;
}

/** A series' labels object is shared by all its windows' results: its canonical text once per object. */
const labelTexts = new WeakMap<object, string>();
function labelsTextOf(labels: Readonly<Record<string, string>>): string {
  let t = labelTexts.get(labels);
  if (t === undefined) labelTexts.set(labels, (t = labelsText(labels)));
  return t;
}

/** The records of one message (one key's, in order). */
export function encodeRollups(records: readonly RollupRecord[]): Buffer {
  if (records.length === 0) throw new CodecError('a rollup message holds at least one record');
  const w = new Writer(200 * records.length + 8);
  w.ensure(2);
  w.buf[w.pos++] = ROLLUP_MAGIC;
  w.buf[w.pos++] = ROLLUP_VERSION;
  w.varint(records.length);
  for (const r of records) writeRecord(w, r);
  return w.bytes();
}

function writeRecord(w: Writer, r: RollupRecord): void {
  const sk = r.sketch;
  const pos = sk.pi && sk.pi.length > 0;
  const neg = sk.ni && sk.ni.length > 0;
  const floatCounts = !integral(sk.pc) || !integral(sk.nc);
  const keyed = !r.key.startsWith(r.metric) || r.key.slice(r.metric.length) !== labelsTextOf(r.labels);
  const dEnd = r.end - r.start;
  const dFirst = r.firstTs - r.start;
  const dLast = r.lastTs - r.start;
  const intTimes = Number.isSafeInteger(r.start) && r.start >= 0 && Number.isSafeInteger(dEnd) && dEnd >= 0 && Number.isSafeInteger(dFirst) && dFirst >= 0 && Number.isSafeInteger(dLast) && dLast >= 0;
  const intCount = Number.isSafeInteger(r.count) && r.count >= 0;
  const flags =
    (r.rate !== null ? F_RATE : 0) | (pos ? F_POS : 0) | (neg ? F_NEG : 0) | (sk.z !== undefined ? F_ZERO : 0) | (r.kind === 'correction' ? F_CORRECTION : 0) |
    (floatCounts ? F_FLOAT_COUNTS : 0) | (keyed ? F_KEY : 0) | (intTimes ? F_INT_TIMES : 0) | (intCount ? F_INT_COUNT : 0);
  w.varint(flags);
  w.str(r.window);
  w.str(r.metric);
  const labels = Object.keys(r.labels);
  w.varint(labels.length);
  for (const k of labels) {
    w.str(k);
    w.str(r.labels[k]!);
  }
  if (keyed) w.str(r.key);
  w.varint(r.revision);
  if (intTimes) {
    w.varint(r.start);
    w.varint(dEnd);
    w.varint(dFirst);
    w.varint(dLast);
  } else {
    w.f64(r.start);
    w.f64(r.end);
    w.f64(r.firstTs);
    w.f64(r.lastTs);
  }
  if (intCount) w.varint(r.count);
  else w.f64(r.count);
  w.f64(r.sum);
  w.f64(r.min);
  w.f64(r.max);
  w.f64(r.avg);
  w.f64(r.first);
  w.f64(r.last);
  if (r.rate !== null) w.f64(r.rate);
  w.f64(r.p50);
  w.f64(r.p95);
  w.f64(r.p99);
  w.f64(sk.a);
  if (pos) store(w, sk.pi!, sk.pc!, floatCounts);
  if (neg) store(w, sk.ni!, sk.nc!, floatCounts);
  if (sk.z !== undefined) w.f64(sk.z);
}

function store(w: Writer, idx: readonly number[], cnt: readonly number[], floatCounts: boolean): void {
  if (idx.length !== cnt.length) throw new CodecError(`sketch store: ${idx.length} indexes but ${cnt.length} counts`);
  w.varint(idx.length);
  w.varint(zigzag(idx[0]!));
  for (let k = 1; k < idx.length; k++) {
    const d = idx[k]! - idx[k - 1]!;
    if (!(d > 0) || !Number.isSafeInteger(d)) throw new CodecError(`sketch store: indexes must be ascending integers (${idx[k - 1]}, ${idx[k]})`);
    w.varint(d);
  }
  for (const c of cnt) (floatCounts ? w.f64(c) : w.varint(c));
}

function readStore(r: Reader, floatCounts: boolean): { idx: number[]; cnt: number[] } {
  const n = r.count('sketch bucket', Math.min(MAX_BUCKETS, r.remaining));
  if (n === 0) throw new CodecError('empty sketch store', r.pos);
  const idx = new Array<number>(n);
  idx[0] = unzigzag(r.varint());
  for (let k = 1; k < n; k++) {
    const d = r.varint();
    if (d === 0) throw new CodecError('sketch indexes must ascend', r.pos);
    idx[k] = idx[k - 1]! + d;
  }
  const cnt = new Array<number>(n);
  for (let k = 0; k < n; k++) cnt[k] = floatCounts ? r.f64() : r.varint();
  return { idx, cnt };
}

/** The records of one message of the rollups topic, binary (v1) or JSON (before v1); CodecError when neither. */
export function decodeRollups(buf: Buffer): RollupRecord[] {
  if (!Buffer.isBuffer(buf) || buf.length < 3) throw new CodecError('message too short for rollup records');
  if (buf[0] === JSON_START) return [fromJson(buf)];
  if (buf[0] !== ROLLUP_MAGIC) throw new CodecError(`bad magic 0x${buf[0]!.toString(16)}`, 0);
  if (buf[1] !== ROLLUP_VERSION) throw new CodecError(`unsupported rollup version ${buf[1]}`, 1);
  const r = new Reader(buf);
  r.pos = 2;
  const n = r.count('rollup record', Math.floor(r.remaining / MIN_RECORD_BYTES));
  if (n === 0) throw new CodecError('no rollup records', 2);
  const out = new Array<RollupRecord>(n);
  for (let i = 0; i < n; i++) out[i] = readRecord(r);
  if (r.remaining !== 0) throw new CodecError(`${r.remaining} trailing bytes`, r.pos);
  return out;
}

function readRecord(r: Reader): RollupRecord {
  const at = r.pos;
  const flags = r.varint();
  if (flags > F_ALL) throw new CodecError(`unknown flags 0x${flags.toString(16)}`, at);
  const window = r.str();
  const metric = r.str();
  const nl = r.count('label', Math.min(MAX_LABELS, r.remaining));
  const labels: Record<string, string> = {};
  for (let i = 0; i < nl; i++) {
    const k = r.str();
    labels[k] = r.str();
  }
  const key = flags & F_KEY ? r.str() : seriesKey(metric, labels);
  const revision = r.varint();
  let start: number, end: number, firstTs: number, lastTs: number;
  if (flags & F_INT_TIMES) {
    start = r.varint();
    end = start + r.varint();
    firstTs = start + r.varint();
    lastTs = start + r.varint();
  } else {
    start = r.f64();
    end = r.f64();
    firstTs = r.f64();
    lastTs = r.f64();
  }
  const count = flags & F_INT_COUNT ? r.varint() : r.f64();
  const sum = r.f64();
  const min = r.f64();
  const max = r.f64();
  const avg = r.f64();
  const first = r.f64();
  const last = r.f64();
  const rate = flags & F_RATE ? r.f64() : null;
  const p50 = r.f64();
  const p95 = r.f64();
  const p99 = r.f64();
  const sketch: SketchJSON = { a: r.f64() };
  const fc = (flags & F_FLOAT_COUNTS) !== 0;
  if (flags & F_POS) {
    const s = readStore(r, fc);
    sketch.pi = s.idx;
    sketch.pc = s.cnt;
  }
  if (flags & F_NEG) {
    const s = readStore(r, fc);
    sketch.ni = s.idx;
    sketch.nc = s.cnt;
  }
  if (flags & F_ZERO) sketch.z = r.f64();
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new CodecError('window bounds are not finite', at);
  return { window, kind: flags & F_CORRECTION ? 'correction' : 'final', revision, key, metric, labels, start, end, count, sum, min, max, avg, first, firstTs, last, lastTs, rate, p50, p95, p99, sketch };
}

function fromJson(buf: Buffer): RollupRecord {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CodecError(`rollup record is neither binary nor JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || typeof v.window !== 'string' || typeof v.key !== 'string' || typeof v.metric !== 'string' || typeof v.labels !== 'object' || v.labels === null || !Number.isFinite(v.start) || !Number.isFinite(v.end)) {
    throw new CodecError('JSON rollup record lacks window, key, metric, labels, start or end');
  }
  return v as unknown as RollupRecord;
}
