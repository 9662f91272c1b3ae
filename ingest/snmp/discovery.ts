import type { Static } from '@sinclair/typebox';
import type { Session } from 'net-snmp';
import { counter } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { resolveTarget, type Credential, type SnmpConfig, type Target } from './config.js';
import { classify, openSession } from './poller.js';
import { SYSTEM } from './oids.js';
import { get, walkColumns } from './walk.js';
import { numeric, text } from './varbind.js';

/**
 * Discovery over a list of addresses and/or IPv4 CIDR ranges: each address is tried with the
 * configured credentials, in order (nothing is guessed); the first that answers identifies the
 * device (sysObjectID, sysDescr, sysName) and lists its interfaces. The result carries a ready
 * target for the poller.
 */

const probes = counter('noctua_snmp_discovery_probes_total', 'Discovery probes by result', ['result']);

export interface DiscoveredInterface {
  readonly ifIndex: string;
  readonly ifName?: string;
  readonly ifDescr?: string;
  readonly ifAlias?: string;
  readonly ifType?: number;
  readonly ifHighSpeed?: number;
}

export interface DiscoveredDevice {
  readonly address: string;
  readonly sysObjectID?: string;
  readonly sysDescr?: string;
  readonly sysName?: string;
  readonly interfaces: DiscoveredInterface[];
  /** The target to poll it with (the credential that worked); its id is the address, sysName may repeat across devices. */
  readonly target: Target;
}

export interface DiscoveryResult {
  readonly found: DiscoveredDevice[];
  /** Addresses that answered no credential, with the last error. */
  readonly failed: Array<{ address: string; error: string }>;
}

/** Hosts of an IPv4 CIDR (without network and broadcast addresses below /31). */
export function expandCidr(cidr: string, max: number): string[] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`discovery: ${cidr} is not an IPv4 CIDR (a.b.c.d/n)`);
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) throw new Error(`discovery: ${cidr} is not a valid IPv4 CIDR`);
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const size = 2 ** (32 - bits);
  const network = bits === 0 ? 0 : (base & (~0 << (32 - bits))) >>> 0;
  const first = bits >= 31 ? network : network + 1;
  const last = bits >= 31 ? network + size - 1 : network + size - 2;
  const count = last - first + 1;
  if (count > max) throw new Error(`discovery: ${cidr} has ${count} addresses, more than discovery.maxAddresses (${max})`);
  const out: string[] = [];
  for (let a = first; a <= last; a++) out.push([a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'));
  return out;
}

const IF_DISCOVERY = {
  ifDescr: '1.3.6.1.2.1.2.2.1.2',
  ifType: '1.3.6.1.2.1.2.2.1.3',
  ifName: '1.3.6.1.2.1.31.1.1.1.1',
  ifHighSpeed: '1.3.6.1.2.1.31.1.1.1.15',
  ifAlias: '1.3.6.1.2.1.31.1.1.1.18',
};

export async function discover(cfg: SnmpConfig, opts: { log?: Logger } = {}): Promise<DiscoveryResult> {
  const d = cfg.discovery;
  const addresses = [...new Set([...d.addresses, ...d.cidrs.flatMap((c) => expandCidr(c, d.maxAddresses))])];
  if (addresses.length > d.maxAddresses) throw new Error(`discovery: ${addresses.length} addresses, more than discovery.maxAddresses (${d.maxAddresses})`);
  const credentials: Array<Static<typeof Credential>> = d.credentials.length > 0
    ? d.credentials
    : [{ version: cfg.defaults.version, ...(cfg.defaults.community ? { community: cfg.defaults.community } : {}), ...(cfg.defaults.user ? { user: cfg.defaults.user } : {}) }];
  const found: DiscoveredDevice[] = [];
  const failed: DiscoveryResult['failed'] = [];
  let next = 0;
  const worker = async () => {
    while (next < addresses.length) {
      const address = addresses[next++]!;
      const r = await probe(address, credentials, cfg, d.port, d.timeoutMs);
      if ('error' in r) {
        failed.push({ address, error: r.error });
        probes.inc({ result: 'failed' });
      } else {
        found.push(r);
        probes.inc({ result: 'found' });
        opts.log?.info({ address, sysName: r.sysName, sysObjectID: r.sysObjectID, interfaces: r.interfaces.length }, 'snmp device discovered');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(d.concurrency, addresses.length) }, worker));
  const order = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  found.sort((a, b) => order(a.address) - order(b.address));
  failed.sort((a, b) => order(a.address) - order(b.address));
  return { found, failed };
}

async function probe(address: string, credentials: Array<Static<typeof Credential>>, cfg: SnmpConfig, port: number, timeoutMs: number): Promise<DiscoveredDevice | { error: string }> {
  let lastError = 'no credentials configured';
  for (const cred of credentials) {
    let target: Target;
    try {
      target = resolveTarget({ address, port, version: cred.version, ...(cred.community ? { community: cred.community } : {}), ...(cred.user ? { user: cred.user } : {}), timeoutMs, retries: 0 }, cfg.defaults);
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    const session: Session = openSession(target);
    try {
      const sys = new Map((await get(session, [SYSTEM.sysObjectID, SYSTEM.sysDescr, SYSTEM.sysName])).map((vb) => [vb.oid, vb]));
      const w = await walkColumns(session, Object.values(IF_DISCOVERY), { maxRepetitions: target.maxRepetitions, deadline: Date.now() + 30_000, v1: target.version === 'v1' });
      const col = (oid: string) => w.columns.get(oid);
      const indexes = new Set<string>();
      for (const oid of Object.values(IF_DISCOVERY)) for (const i of col(oid)?.keys() ?? []) indexes.add(i);
      const interfaces: DiscoveredInterface[] = [...indexes].sort((a, b) => Number(a) - Number(b)).map((ifIndex) => {
        const t = (oid: string) => { const vb = col(oid)?.get(ifIndex); return vb ? text(vb) : undefined; };
        const n = (oid: string) => { const vb = col(oid)?.get(ifIndex); return vb ? numeric(vb) : undefined; };
        const i: Record<string, unknown> = { ifIndex };
        for (const [k, v] of [['ifName', t(IF_DISCOVERY.ifName)], ['ifDescr', t(IF_DISCOVERY.ifDescr)], ['ifAlias', t(IF_DISCOVERY.ifAlias)], ['ifType', n(IF_DISCOVERY.ifType)], ['ifHighSpeed', n(IF_DISCOVERY.ifHighSpeed)]] as const) {
          if (v !== undefined && v !== '') i[k] = v;
        }
        return i as unknown as DiscoveredInterface;
      });
      const s = (oid: string) => { const vb = sys.get(oid); return vb ? text(vb) : undefined; };
      const sysName = s(SYSTEM.sysName);
      const device: DiscoveredDevice = {
        address,
        ...(s(SYSTEM.sysObjectID) ? { sysObjectID: s(SYSTEM.sysObjectID)! } : {}),
        ...(s(SYSTEM.sysDescr) ? { sysDescr: s(SYSTEM.sysDescr)! } : {}),
        ...(sysName ? { sysName } : {}),
        interfaces,
        target: resolveTarget({ address, port, version: cred.version, ...(cred.community ? { community: cred.community } : {}), ...(cred.user ? { user: cred.user } : {}) }, cfg.defaults),
      };
      return device;
    } catch (err) {
      lastError = classify(err, target, session).error;
    } finally {
      session.close();
    }
  }
  return { error: lastError };
}
