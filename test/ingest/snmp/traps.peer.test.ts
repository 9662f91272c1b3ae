import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { promisify } from 'node:util';
import { startTrapListener, type TrapListener } from '../../../ingest/snmp/traps.js';
import { parseSnmpConfig } from '../../../ingest/snmp/config.js';
import type { NetEvent } from '../../../core/types.js';
import { registry } from '../../../core/metrics.js';
import { IN_CI, freeUdpPort, waitFor } from '../../peers/util.js';

const run = promisify(execFile);
const SNMPTRAP = '/usr/bin/snmptrap';
const skip = existsSync(SNMPTRAP) ? undefined : IN_CI ? assert.fail(`${SNMPTRAP} missing: apt-get install -y snmp`) : `${SNMPTRAP} missing`;

const USER = { name: 'trapper', level: 'authPriv' as const, authProtocol: 'sha256' as const, authKey: 'trap-auth-key', privProtocol: 'aes' as const, privKey: 'trap-priv-key' };
const events: NetEvent[] = [];
let listener: TrapListener;

before(async () => {
  if (skip) return;
  const port = await freeUdpPort();
  const { config } = parseSnmpConfig({ traps: { enabled: true, address: '127.0.0.1', port, communities: ['trapcomm'], users: [USER] } });
  listener = await startTrapListener({ traps: config.traps, emitEvent: (e) => void events.push(e), deviceFor: (a) => (a === '127.0.0.1' ? 'lab-switch' : undefined) });
});
after(async () => {
  await listener?.close();
});

const target = () => `127.0.0.1:${listener.port}`;
const linkDown = ['1.3.6.1.6.3.1.1.5.3', '1.3.6.1.2.1.2.2.1.1.7', 'i', '7', '1.3.6.1.2.1.2.2.1.8.7', 'i', '2'];
const snmptrap = (args: string[]) => run(SNMPTRAP, ['-M', '/dev/null', ...args], { env: { ...process.env, MIBS: '' }, timeout: 15_000 });

test('a v2c trap becomes an event naming the device, the trap and the interface', { skip }, async () => {
  await snmptrap(['-v2c', '-c', 'trapcomm', target(), '', ...linkDown]);
  const e = await waitFor('the linkDown event', () => events.find((x) => x.fields.trap === 'linkDown' && x.kind === 'trap'), 10_000, 20);
  assert.equal(e.device, 'lab-switch');
  assert.equal(e.severity, 'major');
  assert.equal(e.source, 'snmp-trap');
  assert.equal(e.fields.version, 'v2c');
  assert.equal(e.fields.ifIndex, '7');
  assert.equal((e.fields.varbinds as Record<string, unknown>)['1.3.6.1.2.1.2.2.1.8.7'], 2);
  assert.equal(e.message, 'linkDown from lab-switch ifIndex 7');
  assert.ok(!JSON.stringify(e).includes('trapcomm'), 'the community is not carried into the event');
});

test('a v2c inform is acknowledged (snmptrap -Ci exits 0) and becomes an event', { skip }, async () => {
  await snmptrap(['-v2c', '-Ci', '-r', '1', '-t', '2', '-c', 'trapcomm', target(), '', '1.3.6.1.6.3.1.1.5.1']);
  const e = await waitFor('the coldStart inform', () => events.find((x) => x.kind === 'inform' && x.fields.trap === 'coldStart'), 10_000, 20);
  assert.equal(e.severity, 'warning');
});

test('v3 authPriv (SHA-256, AES) traps and informs are accepted', { skip }, async () => {
  const v3 = ['-v3', '-u', USER.name, '-l', 'authPriv', '-a', 'SHA-256', '-A', USER.authKey, '-x', 'AES', '-X', USER.privKey];
  await snmptrap([...v3, '-e', '0x80001f8880aabbccdd', target(), '', '1.3.6.1.6.3.1.1.5.4', '1.3.6.1.2.1.2.2.1.1.9', 'i', '9']);
  const up = await waitFor('the v3 linkUp trap', () => events.find((x) => x.fields.trap === 'linkUp'), 10_000, 20);
  assert.equal(up.fields.ifIndex, '9');
  assert.equal(up.fields.version, 'v3');
  await snmptrap([...v3, '-Ci', '-r', '1', '-t', '2', target(), '', '1.3.6.1.4.1.99999.0.42', '1.3.6.1.4.1.99999.1', 's', 'fan tray 2 failed']);
  const custom = await waitFor('the v3 inform', () => events.find((x) => x.kind === 'inform' && x.fields.trapOid === '1.3.6.1.4.1.99999.0.42'), 10_000, 20);
  assert.equal((custom.fields.varbinds as Record<string, unknown>)['1.3.6.1.4.1.99999.1'], 'fan tray 2 failed');
});

test('wrong community, wrong v3 key and garbage are rejected and counted; the listener keeps working', { skip }, async () => {
  const before = events.length;
  await snmptrap(['-v2c', '-c', 'not-the-community', target(), '', '1.3.6.1.6.3.1.1.5.5']);
  await snmptrap(['-v3', '-u', USER.name, '-l', 'authNoPriv', '-a', 'SHA-256', '-A', 'wrong-auth-key', '-e', '0x80001f8880aabbccdd', target(), '', '1.3.6.1.6.3.1.1.5.5']);
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.send(Buffer.from('\x30\x03\x02\x01garbage', 'latin1'), listener.port, '127.0.0.1', () => r()));
  s.close();
  await waitFor('rejections counted', async () => {
    const text = await registry.metrics();
    const sum = [...text.matchAll(/^noctua_snmp_traps_rejected_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    return sum >= 3;
  }, 10_000, 50);
  await snmptrap(['-v2c', '-c', 'trapcomm', target(), '', '1.3.6.1.6.3.1.1.5.2']);
  await waitFor('a good trap after the bad ones', () => events.find((x) => x.fields.trap === 'warmStart'), 10_000, 20);
  assert.equal(events.length, before + 1, 'only the good trap became an event');
});
