import { createHash } from 'node:crypto';
import type { Socket } from 'node:dgram';
import snmp, { type Notification, type Receiver, type Varbind } from 'net-snmp';
import type { NetEvent, Severity } from '../../core/types.js';
import { M, counter } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import type { SnmpConfig } from './config.js';
import { v3User } from './poller.js';
import { numeric, text } from './varbind.js';

/**
 * Receives SNMP traps and informs (v1, v2c, v3) on a UDP port and turns each into a NetEvent for the
 * events topic. Informs are acknowledged by net-snmp's receiver before the event is emitted.
 * Unknown communities or users, bad digests and undecodable packets are rejected and counted; they
 * never reach the events topic and never stop the listener.
 */

const received = counter('noctua_snmp_traps_total', 'Traps and informs accepted, by kind', ['kind']);
const rejected = counter('noctua_snmp_traps_rejected_total', 'Notifications rejected (auth, malformed, unexpected PDU)', ['reason']);

const SNMP_TRAP_OID = '1.3.6.1.6.3.1.1.4.1.0';
const SYS_UPTIME = '1.3.6.1.2.1.1.3.0';
const GENERIC: Readonly<Record<string, { name: string; severity: Severity }>> = {
  '1.3.6.1.6.3.1.1.5.1': { name: 'coldStart', severity: 'warning' },
  '1.3.6.1.6.3.1.1.5.2': { name: 'warmStart', severity: 'warning' },
  '1.3.6.1.6.3.1.1.5.3': { name: 'linkDown', severity: 'major' },
  '1.3.6.1.6.3.1.1.5.4': { name: 'linkUp', severity: 'info' },
  '1.3.6.1.6.3.1.1.5.5': { name: 'authenticationFailure', severity: 'minor' },
  '1.3.6.1.6.3.1.1.5.6': { name: 'egpNeighborLoss', severity: 'minor' },
};
const IF_INDEX = '1.3.6.1.2.1.2.2.1.1.';

export interface TrapListenerOptions {
  readonly traps: SnmpConfig['traps'];
  readonly emitEvent: (e: NetEvent) => void;
  /** Maps a sender address to the device name used by polling, so traps and samples line up. */
  readonly deviceFor?: (address: string) => string | undefined;
  readonly log?: Logger;
}

export interface TrapListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function startTrapListener(opts: TrapListenerOptions): Promise<TrapListener> {
  const t = opts.traps;
  let ready: (err?: Error) => void = () => {};
  const listening = new Promise<void>((resolve, reject) => {
    ready = (err) => (err ? reject(err) : resolve());
  });
  const receiver: Receiver = snmp.createReceiver({ port: t.port, address: t.address, transport: 'udp4', includeAuthentication: false }, (err, n) => {
    if (err) {
      const e = err as Error & { code?: string; rinfo?: { address: string; port: number } };
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') return ready(new Error(`trap listener cannot bind udp ${t.address}:${t.port}: ${e.message}`));
      const reason = /user|digest|community|auth/i.test(e.message) ? 'auth' : /Failure to process|decode|Expected|length/i.test(e.message) ? 'malformed' : 'unexpected';
      rejected.inc({ reason });
      M.errors.inc({ component: 'snmp-traps', kind: reason });
      opts.log?.warn({ from: e.rinfo?.address, reason, err: e.message.slice(0, 200) }, 'snmp notification rejected');
      return;
    }
    if (!n) return;
    try {
      const ev = toEvent(n, opts.deviceFor);
      received.inc({ kind: ev.kind });
      opts.emitEvent(ev);
    } catch (e2) {
      rejected.inc({ reason: 'malformed' });
      opts.log?.warn({ from: n.rinfo.address, err: (e2 as Error).message }, 'snmp notification could not be converted');
    }
  });
  const auth = receiver.getAuthorizer();
  for (const c of t.communities) auth.addCommunity(c);
  for (const u of t.users) auth.addUser(v3User(u));

  // net-snmp does not report 'listening'; its dgram sockets are reachable on the listener.
  const sockets = Object.values((receiver as unknown as { listener: { sockets: Record<string, Socket> } }).listener.sockets);
  const sock = sockets[0]!;
  sock.once('listening', () => ready());
  await listening.catch((err: Error) => {
    receiver.close();
    throw err;
  });
  return {
    port: sock.address().port,
    close: () => new Promise<void>((resolve) => receiver.close(() => resolve())),
  };
}

function trapOidOf(n: Notification): string {
  const p = n.pdu;
  if (p.type === snmp.PduType.Trap) {
    // SNMPv1 (RFC 3584 3.1): generic traps map to snmpTraps; enterprise-specific ones to enterprise.0.specific.
    const generic = p.generic ?? 6;
    return generic < 6 ? `1.3.6.1.6.3.1.1.5.${generic + 1}` : `${p.enterprise}.0.${p.specific}`;
  }
  const vb = p.varbinds.find((v) => v.oid === SNMP_TRAP_OID);
  return vb ? String(vb.value) : 'unknown';
}

function valueOf(vb: Varbind): string | number | null {
  const n = numeric(vb);
  if (n !== undefined && vb.type !== snmp.ObjectType.OctetString) return n;
  return text(vb) ?? null;
}

export function toEvent(n: Notification, deviceFor?: (address: string) => string | undefined): NetEvent {
  const p = n.pdu;
  const trapOid = trapOidOf(n);
  const generic = GENERIC[trapOid];
  const sender = p.type === snmp.PduType.Trap && p.agentAddr && p.agentAddr !== '0.0.0.0' ? p.agentAddr : n.rinfo.address;
  const device = deviceFor?.(sender) ?? sender;
  const varbinds: Record<string, string | number | null> = {};
  for (const vb of p.varbinds) if (vb.oid !== SNMP_TRAP_OID && vb.oid !== SYS_UPTIME) varbinds[vb.oid] = valueOf(vb);
  const ifIndexOid = Object.keys(varbinds).find((o) => o.startsWith(IF_INDEX));
  const ifIndex = ifIndexOid ? ifIndexOid.slice(IF_INDEX.length) : undefined;
  const inform = p.type === snmp.PduType.InformRequest;
  const name = generic?.name ?? trapOid;
  const ts = Date.now();
  // Same sender, request id, trap and content => same id: a retransmitted inform deduplicates.
  const id = createHash('sha1').update(`trap\0${sender}\0${p.id}\0${trapOid}\0${JSON.stringify(varbinds)}`).digest('hex').slice(0, 20);
  const version = p.type === snmp.PduType.Trap ? 'v1' : p.user !== undefined || p.contextEngineID !== undefined ? 'v3' : 'v2c';
  return {
    id,
    ts,
    source: 'snmp-trap',
    kind: inform ? 'inform' : 'trap',
    severity: generic?.severity ?? 'warning',
    device,
    message: `${name} from ${device}${ifIndex ? ` ifIndex ${ifIndex}` : ''}`,
    fields: {
      trapOid,
      trap: name,
      sender: n.rinfo.address,
      version,
      ...(ifIndex ? { ifIndex } : {}),
      ...(p.upTime !== undefined ? { upTime: p.upTime } : {}),
      varbinds,
    },
  };
}
