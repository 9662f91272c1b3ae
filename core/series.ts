import type { Labels } from './types.js';

/**
 * Canonical text of a series, Prometheus-style: `metric{a="1",b="2"}` with sorted label keys.
 * It is the identity of a series everywhere (bus, state, storage).
 */
export function seriesKey(metric: string, labels: Labels): string {
  return metric + labelsText(labels);
}

/** The label part of a series key: `{a="1",b="2"}` with sorted keys, or '' without labels. */
export function labelsText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0) s += ',';
    s += k + '="' + escapeLabel(labels[k]!) + '"';
  }
  return s + '}';
}

const NEEDS_ESCAPE = /[\\"\n]/;

function escapeLabel(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/**
 * 64-bit FNV-1a of the series key, as an unsigned decimal string (ClickHouse UInt64).
 * Stable across processes and versions: it is stored, so it must never change.
 */
export function seriesId(key: string): string {
  // Two 32-bit halves in plain numbers are much faster than BigInt per byte.
  let h = FNV_OFFSET;
  const bytes = Buffer.from(key, 'utf8');
  let lo = Number(h & 0xffffffffn);
  let hi = Number(h >> 32n);
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    // multiply (hi:lo) by FNV prime 0x100_000001b3 = 2^40 + 0x1b3
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x100000000);
    const newLo = loMul >>> 0;
    const newHi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0; // 2^40 term: lo << 8 into hi
    lo = newLo;
    hi = newHi;
  }
  h = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  return (h & MASK64).toString();
}

/** Reference implementation, used by tests to check the fast path. */
export function seriesIdReference(key: string): string {
  let h = FNV_OFFSET;
  for (const b of Buffer.from(key, 'utf8')) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK64;
  }
  return h.toString();
}

/** Memoising series identity: series keys repeat every poll, hashing them once is enough. */
export class SeriesCache {
  private readonly map = new Map<string, string>();
  constructor(private readonly max = 1_000_000) {}
  id(key: string): string {
    let id = this.map.get(key);
    if (id === undefined) {
      id = seriesId(key);
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(key, id);
    }
    return id;
  }
}
