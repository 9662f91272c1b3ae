import { writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { peerMissing, freeUdpPort, startProcess, tempDir, waitFor, type Proc } from './util.js';

/**
 * Debian's Net-SNMP agent (snmpd) on 127.0.0.1 with its own config and persistent directory:
 * a v2c community and v3 users at each security level (SHA and SHA-256, AES).
 */

export const SNMPD_BIN = '/usr/sbin/snmpd';

export interface SnmpdUser {
  name: string;
  level: 'noAuthNoPriv' | 'authNoPriv' | 'authPriv';
  authProtocol?: 'sha' | 'sha256';
  authKey?: string;
  privProtocol?: 'aes';
  privKey?: string;
}

export const SNMPD_USERS: readonly SnmpdUser[] = [
  { name: 'noauth', level: 'noAuthNoPriv' },
  { name: 'authsha', level: 'authNoPriv', authProtocol: 'sha', authKey: 'auth-pass-1' },
  { name: 'privsha256', level: 'authPriv', authProtocol: 'sha256', authKey: 'auth-pass-256', privProtocol: 'aes', privKey: 'priv-pass-aes' },
];

export interface Snmpd {
  readonly port: number;
  readonly community: string;
  readonly users: readonly SnmpdUser[];
  readonly proc: Proc;
  stop(): Promise<void>;
}

/** Skips (locally) or fails (CI) when snmpd is not installed; returns a reason to skip or undefined. */
export function snmpdMissing(): string | undefined {
  return peerMissing(existsSync(SNMPD_BIN), SNMPD_BIN, 'apt-get install -y snmpd');
}

export async function startSnmpd(opts: { community?: string } = {}): Promise<Snmpd> {
  const dir = tempDir('snmpd');
  const port = await freeUdpPort();
  const community = opts.community ?? 'noctua-ro';
  const persist = join(dir.path, 'persist');
  mkdirSync(persist);
  const lines = [
    `agentAddress udp:127.0.0.1:${port}`,
    `rocommunity ${community} 127.0.0.1`,
    ...SNMPD_USERS.map((u) => {
      const auth = u.level === 'noAuthNoPriv' ? '' : ` ${u.authProtocol === 'sha256' ? 'SHA-256' : 'SHA'} ${u.authKey}`;
      const priv = u.level === 'authPriv' ? ` AES ${u.privKey}` : '';
      return `createUser ${u.name}${auth}${priv}`;
    }),
    ...SNMPD_USERS.map((u) => `rouser ${u.name} ${u.level === 'noAuthNoPriv' ? 'noauth' : u.level === 'authNoPriv' ? 'auth' : 'priv'}`),
    'sysName noctua-test-agent',
    'sysLocation test rack',
    'sysContact noc@example.invalid',
    '',
  ];
  writeFileSync(join(dir.path, 'snmpd.conf'), lines.join('\n'));
  const proc = startProcess(SNMPD_BIN, ['-f', '-Lo', '-C', '-c', join(dir.path, 'snmpd.conf'), `--persistentDir=${persist}`], {
    env: { ...process.env, MIBS: '', MIBDIRS: '' },
  });
  try {
    await waitFor(`snmpd on udp/${port}`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`snmpd exited: ${proc.output()}`);
      return udpAnswers(port, community);
    }, 20_000, 100);
  } catch (err) {
    await proc.stop(1000);
    dir.remove();
    throw err;
  }
  return {
    port,
    community,
    users: SNMPD_USERS,
    proc,
    async stop() {
      await proc.stop(3000);
      dir.remove();
    },
  };
}

/** Sends one v2c GET sysUpTime.0 by hand and resolves true on any answer within 300 ms. */
export function udpAnswers(port: number, community: string): Promise<boolean> {
  const oid = Buffer.from([0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00]);
  const vb = tlv(0x30, Buffer.concat([oid, Buffer.from([0x05, 0x00])]));
  const pdu = tlv(0xa0, Buffer.concat([Buffer.from([0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]), tlv(0x30, vb)]));
  const msg = tlv(0x30, Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), tlv(0x04, Buffer.from(community)), pdu]));
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), 300);
    s.on('message', () => done(true));
    s.on('error', () => done(false));
    s.send(msg, port, '127.0.0.1');
  });
}

function tlv(tag: number, body: Buffer): Buffer {
  if (body.length < 128) return Buffer.concat([Buffer.from([tag, body.length]), body]);
  return Buffer.concat([Buffer.from([tag, 0x82, body.length >> 8, body.length & 0xff]), body]);
}
