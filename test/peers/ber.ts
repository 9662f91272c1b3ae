/**
 * The little BER (ASN.1) an SNMP agent simulator needs: TLVs, unsigned integers, object
 * identifiers. Shared by the fake agent of the SNMP tests and the agents of bench:snmp; the product
 * itself speaks SNMP through net-snmp.
 */

export function tlv(tag: number, body: Buffer): Buffer {
  const len = body.length;
  if (len < 128) return Buffer.concat([Buffer.from([tag, len]), body]);
  if (len < 256) return Buffer.concat([Buffer.from([tag, 0x81, len]), body]);
  if (len < 65536) return Buffer.concat([Buffer.from([tag, 0x82, len >> 8, len & 0xff]), body]);
  return Buffer.concat([Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]), body]);
}

/** Content octets of a non-negative INTEGER/Counter/Gauge/TimeTicks (a leading 0 keeps it positive). */
export function uintBytes(n: number | bigint): Buffer {
  let v = BigInt(n);
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return Buffer.from(bytes);
}

/** Content octets of an OBJECT IDENTIFIER. */
export function oidBody(oid: string): Buffer {
  const p = oid.split('.').map(Number);
  const bytes = [p[0]! * 40 + p[1]!];
  for (const n of p.slice(2)) {
    const chunk = [n & 0x7f];
    let x = Math.floor(n / 128);
    while (x > 0) {
      chunk.unshift((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    bytes.push(...chunk);
  }
  return Buffer.from(bytes);
}

/** A whole OBJECT IDENTIFIER TLV. */
export function encodeOid(oid: string): Buffer {
  return tlv(0x06, oidBody(oid));
}

/** Dotted text of the OBJECT IDENTIFIER content octets b[start, end). */
export function decodeOid(b: Buffer, start = 0, end = b.length): string {
  const first = b[start]!;
  let s = `${Math.floor(first / 40)}.${first % 40}`;
  let v = 0;
  for (let i = start + 1; i < end; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      s += '.' + v;
      v = 0;
    }
  }
  return s;
}
