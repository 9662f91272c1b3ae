import snmp, { type Varbind } from 'net-snmp';

/** A decoded varbind value: numbers for numeric types, strings for text and OIDs, undefined for exceptions. */
export type Value = number | string | undefined;

const T = snmp.ObjectType;

/** Counter64 arrives as a big-endian Buffer of 1..9 bytes; BigInt keeps every bit. */
export function counter64(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  return BigInt('0x' + buf.toString('hex'));
}

/**
 * The number a sample carries. Counter64 goes through BigInt so the conversion is exact up to 2^53 and
 * correctly rounded beyond (a rate over any interval stays exact to 1e-15 relative).
 */
export function numeric(vb: Varbind): number | undefined {
  switch (vb.type) {
    case T.Integer:
    case T.Counter:
    case T.Gauge:
    case T.TimeTicks:
      return typeof vb.value === 'number' ? vb.value : undefined;
    case T.Counter64:
      if (Buffer.isBuffer(vb.value)) return Number(counter64(vb.value));
      if (typeof vb.value === 'number' || typeof vb.value === 'bigint') return Number(vb.value);
      return undefined;
    case T.OctetString: {
      // Some agents report gauges as strings (e.g. UCD laLoad); accept plain decimals only.
      const s = Buffer.isBuffer(vb.value) ? vb.value.toString('latin1') : String(vb.value);
      return /^-?\d+(\.\d+)?$/.test(s.trim()) ? Number(s.trim()) : undefined;
    }
    default:
      return undefined;
  }
}

/** Text for a label: UTF-8 with control characters removed; OIDs as dotted strings. */
export function text(vb: Varbind): string | undefined {
  if (vb.type === T.OctetString) {
    const b = vb.value as Buffer | string;
    const s = Buffer.isBuffer(b) ? b.toString('utf8') : String(b);
    // eslint-disable-next-line no-control-regex
    return s.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  }
  if (vb.type === T.OID) return String(vb.value);
  const n = numeric(vb);
  return n === undefined ? undefined : String(n);
}

/** noSuchObject, noSuchInstance, endOfMibView. */
export function isException(vb: Varbind): boolean {
  return vb.type === T.NoSuchObject || vb.type === T.NoSuchInstance || vb.type === T.EndOfMibView || vb.type === T.Null;
}
