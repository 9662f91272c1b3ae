import { createSocket, type Socket } from 'node:dgram';
import { tlv, uintBytes, encodeOid, decodeOid } from '../../peers/ber.js';

/**
 * Tiny hand-rolled SNMPv2c agents for the failure modes a real agent will not produce on demand:
 * silence, garbage, truncated PDUs, tooBig. BER is encoded and decoded here, by hand, on purpose:
 * the code under test (net-snmp) must not also be the code that builds its test input.
 */

export type Behaviour = 'silent' | 'garbage' | 'truncated' | 'tooBig' | 'good';

export interface FakeAgent {
  readonly port: number;
  /** Requests received, by PDU tag (0xa0 GET, 0xa5 GETBULK...) with their max-repetitions. */
  readonly requests: Array<{ tag: number; maxRep: number; oids: string[] }>;
  close(): Promise<void>;
}

export async function startFakeAgent(behaviour: Behaviour, opts: { tooBigAbove?: number } = {}): Promise<FakeAgent> {
  const sock: Socket = createSocket('udp4');
  const requests: FakeAgent['requests'] = [];
  const tooBigAbove = opts.tooBigAbove ?? 3;
  sock.on('message', (msg, rinfo) => {
    let req: Request;
    try {
      req = parseRequest(msg);
    } catch {
      return;
    }
    requests.push({ tag: req.tag, maxRep: req.maxRep, oids: req.oids });
    const reply = (b: Buffer) => sock.send(b, rinfo.port, rinfo.address);
    if (behaviour === 'silent') return;
    if (behaviour === 'garbage') return reply(Buffer.from('\x30\x84\xff\xff\xffnot an snmp message at all\x00\x01', 'latin1'));
    const good = respond(req, behaviour === 'tooBig' ? tooBigAbove : 1000);
    if (behaviour === 'truncated') return reply(good.subarray(0, Math.floor(good.length / 2)));
    reply(good);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return {
    port: sock.address().port,
    requests,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

interface Request {
  community: Buffer;
  tag: number;
  reqId: Buffer;
  nonRep: number;
  maxRep: number;
  oids: string[];
}

/** The MIB the fake serves, in OID order: sysUpTime and a 5-interface ifTable (descr, oper status, in-octets). */
const MIB: Array<[string, Buffer]> = (() => {
  const rows: Array<[string, Buffer]> = [['1.3.6.1.2.1.1.3.0', tlv(0x43, uintBytes(4242))]];
  for (const idx of [1, 2, 3, 4, 5]) rows.push([`1.3.6.1.2.1.2.2.1.2.${idx}`, tlv(0x04, Buffer.from(`port${idx}`))]);
  for (const idx of [1, 2, 3, 4, 5]) rows.push([`1.3.6.1.2.1.2.2.1.8.${idx}`, tlv(0x02, uintBytes(1))]);
  for (const idx of [1, 2, 3, 4, 5]) rows.push([`1.3.6.1.2.1.2.2.1.10.${idx}`, tlv(0x41, uintBytes(idx * 1000))]);
  return rows;
})();

function cmp(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return pa.length - pb.length;
}

const nextCache = new Map<string, [string, Buffer] | undefined>();
/** GETNEXT over the fake MIB, memoised: hundreds of pollers ask the same few OIDs. */
function next(oid: string): [string, Buffer] | undefined {
  if (!nextCache.has(oid)) nextCache.set(oid, MIB.find(([o]) => cmp(o, oid) > 0));
  return nextCache.get(oid);
}

function respond(req: Request, tooBigAbove: number): Buffer {
  const vbs: Buffer[] = [];
  let errStatus = 0;
  if (req.tag === 0xa0) {
    for (const oid of req.oids) vbs.push(varbind(oid, MIB.find(([o]) => o === oid)?.[1] ?? Buffer.from([0x80, 0x00])));
  } else if (req.tag === 0xa5 && req.maxRep > tooBigAbove) {
    errStatus = 1; // tooBig
    for (const oid of req.oids) vbs.push(varbind(oid, Buffer.from([0x05, 0x00])));
  } else if (req.tag === 0xa5) {
    let cur = [...req.oids];
    for (let r = 0; r < req.maxRep; r++) {
      cur = cur.map((oid) => {
        const n = next(oid);
        vbs.push(n ? varbind(n[0], n[1]) : varbind(oid, Buffer.from([0x82, 0x00])));
        return n ? n[0] : oid;
      });
    }
  }
  const pdu = tlv(0xa2, Buffer.concat([tlv(0x02, req.reqId), tlv(0x02, uintBytes(errStatus)), tlv(0x02, uintBytes(0)), tlv(0x30, Buffer.concat(vbs))]));
  return tlv(0x30, Buffer.concat([tlv(0x02, uintBytes(1)), tlv(0x04, req.community), pdu]));
}

function parseRequest(buf: Buffer): Request {
  const msg = read(buf, 0);
  const version = read(buf, msg.start);
  const community = read(buf, version.end);
  const pdu = read(buf, community.end);
  const reqId = read(buf, pdu.start);
  const a = read(buf, reqId.end);
  const b = read(buf, a.end);
  const list = read(buf, b.end);
  const oids: string[] = [];
  let p = list.start;
  while (p < list.end) {
    const vb = read(buf, p);
    const oid = read(buf, vb.start);
    oids.push(decodeOid(buf, oid.start, oid.end));
    p = vb.end;
  }
  return {
    community: buf.subarray(community.start, community.end),
    tag: pdu.tag,
    reqId: buf.subarray(reqId.start, reqId.end),
    nonRep: intOf(buf.subarray(a.start, a.end)),
    maxRep: intOf(buf.subarray(b.start, b.end)),
    oids,
  };
}

function read(buf: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) throw new Error('truncated');
  return { tag, start, end: start + len };
}

function intOf(b: Buffer): number {
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

function varbind(oid: string, value: Buffer): Buffer {
  return tlv(0x30, Buffer.concat([encodeOid(oid), value]));
}

