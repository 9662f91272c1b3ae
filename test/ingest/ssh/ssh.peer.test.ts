import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSshd, sshdMissing, type Sshd } from '../../peers/sshd.js';
import { startSnmpd, snmpdMissing, type Snmpd } from '../../peers/snmpd.js';
import { parseSshConfig } from '../../../ingest/ssh/config.js';
import { LINUX_COMMAND, parseLinux } from '../../../ingest/ssh/linux.js';
import { sshExec, startSshSource } from '../../../ingest/ssh/source.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { parseSnmpConfig, resolveTarget } from '../../../ingest/snmp/config.js';
import { MemoryBus } from '../../../core/bus-memory.js';
import { decodeBatch, decodeEvent } from '../../../core/codec.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../../core/types.js';
import { waitFor } from '../../peers/util.js';

const skip = sshdMissing() ?? snmpdMissing();
let sshd: Sshd;
let snmpd: Snmpd;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  snmpd = await startSnmpd();
});
after(async () => {
  await sshd?.stop();
  await snmpd?.stop();
});

const target = (over: Record<string, unknown> = {}) => parseSshConfig({ targets: [{ address: '127.0.0.1', port: sshd.port, user: sshd.user, privateKeyFile: sshd.keyFile, hostKey: sshd.hostKey, name: 'linux-1', timeoutMs: 5000, ...over }] }).targets[0]!;

test('a Linux host over SSH gives the samples SNMP gives for it: the same kernel counters, memory and interfaces as Net-SNMP\'s snmpd on the same host', { skip }, async () => {
  const r = await sshExec(target(), LINUX_COMMAND);
  assert.equal(r.outcome, 'ok', r.error);
  const poller = new SnmpPoller({ concurrency: 2, sink: { emit: () => {} } });
  const snmpBatches: SampleBatch[] = [];
  const p2 = new SnmpPoller({ concurrency: 2, sink: { emit: (b) => void snmpBatches.push(b) } });
  const st = resolveTarget({ address: '127.0.0.1', port: snmpd.port, community: snmpd.community, timeoutMs: 1000 } as never, parseSnmpConfig({}).config.defaults);
  p2.addTarget(st);
  const ts = Date.now();
  const [viaSnmp, again] = await Promise.all([p2.poll(st.id), sshExec(target(), LINUX_COMMAND)]);
  await p2.stop();
  await poller.stop();
  assert.equal(viaSnmp.outcome, 'ok', viaSnmp.error);
  assert.equal(again.outcome, 'ok');
  const ssh = parseLinux(again.output!, 'linux-1', {}, ts, null);
  assert.deepEqual(ssh.problems, []);
  const snmp = snmpBatches[0]!.samples;
  const one = (samples: SampleBatch['samples'], metric: string, ifName?: string) => samples.find((s) => s.metric === metric && (!ifName || s.labels.ifName === ifName));
  // Memory: both read MemTotal of /proc/meminfo.
  assert.equal(one(ssh.samples, 'memTotalReal')!.value, one(snmp, 'memTotalReal')!.value);
  // The loopback: the same ifIndex, up, and counters within the bytes these two polls themselves moved.
  const [a, b] = [one(ssh.samples, 'ifHCInOctets', 'lo')!, one(snmp, 'ifHCInOctets', 'lo')!];
  assert.equal(a.labels.ifIndex, b.labels.ifIndex);
  assert.ok(Math.abs(a.value - b.value) < 5_000_000, `lo in: ssh ${a.value}, snmp ${b.value}`);
  assert.equal(one(ssh.samples, 'ifOperStatus', 'lo')!.value, one(snmp, 'ifOperStatus', 'lo')!.value);
  assert.equal(one(ssh.samples, 'ifAdminStatus', 'lo')!.value, 1);
  // Uptime in TimeTicks, the load average x 100, as UCD-SNMP gives them.
  assert.ok(one(ssh.samples, 'sysUpTime')!.value >= one(snmp, 'sysUpTime')!.value, 'the host has been up longer than the snmpd started for this test (sysUpTime is the agent\'s)');
  assert.deepEqual(ssh.samples.filter((s) => s.metric === 'laLoadInt').map((s) => s.labels.la), ['1', '5', '15']);
  // CPU load needs two polls.
  const first = parseLinux(r.output!, 'linux-1', {}, ts, null);
  const second = parseLinux(again.output!, 'linux-1', {}, ts, first.cpu);
  const cpu = one(second.samples, 'hrProcessorLoad');
  assert.ok(cpu && cpu.value >= 0 && cpu.value <= 100);
});

test('the SSH source on the bus: batches with ssh_up on its interval; a refused key, a wrong host key and a closed port are each said once, counted, and the others go on', { skip }, async () => {
  const bus = new MemoryBus({ retainConsumed: 0 });
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 1 }, { topic: TOPICS.events, partitions: 1 }]);
  const batches: SampleBatch[] = [];
  const events: NetEvent[] = [];
  const consumer = await bus.consumer({ groupId: 'ssh-test' });
  await consumer.subscribe([TOPICS.samples, TOPICS.events]);
  await consumer.run({ eachBatch: async ({ topic, messages }) => {
    for (const m of messages) topic === TOPICS.samples ? batches.push(decodeBatch(m.value!)) : events.push(decodeEvent(m.value!));
  } });
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, intervalMs: 1000, timeoutMs: 3000 };
  const src = await startSshSource({ bus, ssh: { targets: [
    { ...base, name: 'good', privateKeyFile: sshd.keyFile, hostKey: sshd.hostKey },
    { ...base, name: 'stranger', address: '127.0.0.3', privateKeyFile: sshd.strangerKeyFile },
    { ...base, name: 'impostor', address: '127.0.0.2', privateKeyFile: sshd.keyFile, hostKey: 'SHA256:' + 'A'.repeat(43) },
    { ...base, name: 'closed', port: 1, privateKeyFile: sshd.keyFile },
  ] } });
  try {
    await waitFor('three polls of each', () => ['good', 'stranger', 'impostor', 'closed'].every((d) => batches.filter((b) => b.device === d).length >= 3), 30_000, 200);
    const up = (d: string) => batches.filter((b) => b.device === d).map((b) => b.samples.find((s) => s.metric === 'ssh_up')!.value);
    assert.ok(up('good').every((v) => v === 1));
    for (const d of ['stranger', 'impostor', 'closed']) assert.ok(up(d).every((v) => v === 0), d);
    const good = batches.find((b) => b.device === 'good' && b.samples.length > 20)!;
    assert.ok(good.samples.some((s) => s.metric === 'ifHCInOctets' && s.labels.ifName === 'lo'));
    const said = (d: string) => events.filter((e) => e.device === d);
    assert.deepEqual(said('good'), []);
    for (const [d, outcome] of [['stranger', 'auth'], ['impostor', 'hostkey'], ['closed', 'unreachable']] as const) {
      assert.equal(said(d).length, 1, `${d} said once: ${JSON.stringify(said(d))}`);
      assert.equal((said(d)[0]!.fields as { outcome: string }).outcome, outcome);
    }
    assert.match(said('impostor')[0]!.message, /host key is not the one configured/);
  } finally {
    await src.stop();
    await consumer.stop();
    await bus.close();
  }
});
