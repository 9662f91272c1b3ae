import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSnmpd, snmpdMissing, type Snmpd } from '../../peers/snmpd.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { resolveTarget, parseSnmpConfig, type Target } from '../../../ingest/snmp/config.js';
import type { NetEvent, SampleBatch } from '../../../core/types.js';
import { targetStatus } from '../../../ingest/snmp/status.js';
import { RateState } from '../../../processors/rate.js';
import { waitFor } from '../../peers/util.js';
import { discover, expandCidr } from '../../../ingest/snmp/discovery.js';

const skip = snmpdMissing();
let agent: Snmpd;

before(async () => {
  if (!skip) agent = await startSnmpd();
});
after(async () => {
  await agent?.stop();
});

const defaults = parseSnmpConfig({}).config.defaults;
function target(over: Record<string, unknown>): Target {
  return resolveTarget({ address: '127.0.0.1', port: agent.port, timeoutMs: 500, retries: 1, ...over } as never, defaults);
}

function collector() {
  const batches: SampleBatch[] = [];
  const events: NetEvent[] = [];
  return { batches, events, sink: { emit: (b: SampleBatch) => void batches.push(b), emitEvent: (e: NetEvent) => void events.push(e) } };
}

test('v2c: one batch with system, IF-MIB, HOST-RESOURCES and UCD samples from a real snmpd', { skip }, async () => {
  const c = collector();
  const poller = new SnmpPoller({ concurrency: 4, sink: c.sink });
  const t = target({ name: 'agent-v2c', community: agent.community, labels: { site: 'lab' } });
  poller.addTarget(t);
  const r = await poller.poll(t.id);
  await poller.stop();
  assert.equal(r.outcome, 'ok', r.error);
  assert.equal(c.batches.length, 1);
  const b = c.batches[0]!;
  assert.equal(b.device, 'agent-v2c');
  assert.equal(b.source, 'snmp');
  const metrics = new Set(b.samples.map((s) => s.metric));
  // hrProcessorLoad is absent here: snmpd serves it only after a minute of CPU samples (the snmpsim test covers it).
  for (const m of ['sysUpTime', 'ifOperStatus', 'ifAdminStatus', 'ifHCInOctets', 'ifHCOutOctets', 'ifHighSpeed', 'ifInErrors', 'hrStorageSizeBytes', 'laLoadInt', 'memAvailReal', 'memTotalReal']) {
    assert.ok(metrics.has(m), `missing ${m}; got ${[...metrics].join(', ')}`);
  }
  const lo = b.samples.find((s) => s.metric === 'ifHCInOctets' && s.labels.ifName === 'lo');
  assert.ok(lo, 'the loopback interface is listed by ifName');
  assert.equal(lo.labels.site, 'lab');
  assert.equal(lo.labels.device, 'agent-v2c');
  // One labels object per interface, shared by all its samples.
  const loSamples = b.samples.filter((s) => s.labels.ifIndex === lo.labels.ifIndex);
  assert.ok(loSamples.length > 5 && loSamples.every((s) => s.labels === lo.labels));
  assert.equal(r.info?.sysName, 'noctua-test-agent');
  assert.match(r.info?.sysObjectID ?? '', /^1\.3\.6\.1\.4\.1\.8072\./);
  assert.ok(r.varbinds > 50);
  assert.equal(c.events.length, 0);
});

test('v3 at every security level (SHA, SHA-256, AES) polls the same agent', { skip }, async () => {
  const c = collector();
  const poller = new SnmpPoller({ concurrency: 4, sink: c.sink });
  for (const u of agent.users) {
    const t = target({ name: `agent-${u.name}`, version: 'v3', user: u });
    poller.addTarget(t);
    const r = await poller.poll(t.id);
    assert.equal(r.outcome, 'ok', `${u.name}: ${r.error}`);
    assert.ok(r.batch!.samples.some((s) => s.metric === 'ifHCInOctets'), u.name);
  }
  // Second poll on the kept v3 session (engine already discovered).
  const again = await poller.poll('agent-privsha256');
  assert.equal(again.outcome, 'ok', again.error);
  await poller.stop();
});

test('wrong community and wrong v3 credentials give clear per-target errors, and the good target is unaffected', { skip }, async () => {
  const c = collector();
  const poller = new SnmpPoller({ concurrency: 4, sink: c.sink });
  const good = target({ name: 'good', community: agent.community });
  const badCommunity = target({ name: 'bad-community', community: 'wrong', timeoutMs: 200, retries: 1 });
  const badUser = target({ name: 'bad-user', version: 'v3', user: { name: 'nosuchuser', level: 'authNoPriv', authProtocol: 'sha', authKey: 'whatever-1' } });
  const badKey = target({ name: 'bad-key', version: 'v3', user: { ...agent.users[1]!, authKey: 'wrong-pass-1' } });
  const badPriv = target({ name: 'bad-priv', version: 'v3', user: { ...agent.users[2]!, privKey: 'wrong-priv-1' } });
  for (const t of [good, badCommunity, badUser, badKey, badPriv]) poller.addTarget(t);
  const [g, bc, bu, bk, bp] = await Promise.all([good, badCommunity, badUser, badKey, badPriv].map((t) => poller.poll(t.id)));
  assert.equal(g!.outcome, 'ok', g!.error);
  assert.equal(bc!.outcome, 'unreachable');
  assert.match(bc!.error!, /no response from 127\.0\.0\.1:\d+ \(2 tries, timeout 200 ms\).*community/);
  assert.equal(bu!.outcome, 'auth-failed');
  assert.match(bu!.error!, /user nosuchuser.*(Unknown user|unknown user)/i);
  assert.equal(bk!.outcome, 'auth-failed');
  assert.match(bk!.error!, /digest/i);
  // snmpd drops a message it cannot decrypt without a report: to the poller that is silence.
  assert.equal(bp!.outcome, 'unreachable');
  assert.match(bp!.error!, /privacy key/);
  const status = targetStatus().filter((s) => ['good', 'bad-community', 'bad-user', 'bad-key', 'bad-priv'].includes(s.id));
  assert.equal(status.at(-1)!.id, 'good', 'failing targets are listed first');
  assert.equal(status.find((s) => s.id === 'bad-community')!.timeouts, 1);
  // The secrets never appear in errors.
  for (const s of status) assert.ok(!/wrong-pass-1|wrong-priv-1|auth-pass|priv-pass/.test(s.lastError ?? ''), s.lastError!);
  // An unreachable target becomes an event; the good one does not.
  assert.deepEqual(c.events.map((e) => [e.device, e.kind]).sort(), [['bad-community', 'unreachable'], ['bad-priv', 'unreachable']]);
  await poller.stop();
});

test('scheduled polls of a real agent feed processors/rate', { skip }, async () => {
  const c = collector();
  const poller = new SnmpPoller({ concurrency: 4, sink: c.sink });
  poller.addTarget(target({ name: 'sched', community: agent.community, intervalMs: 1000 }));
  poller.start();
  await waitFor('three scheduled polls', () => c.batches.length >= 3, 15_000);
  await poller.stop();
  const rate = new RateState();
  const out = c.batches.map((b) => rate.process(b));
  assert.equal(out[0]!.samples.length, 0);
  const bps = out[2]!.samples.filter((s) => s.metric === 'if_in_bps');
  assert.ok(bps.length > 0 && bps.every((s) => s.value >= 0 && Number.isFinite(s.value)));
});

test('SNMPv1 (GETNEXT walks, noSuchName ends) polls the same agent', { skip }, async () => {
  const c = collector();
  const poller = new SnmpPoller({ concurrency: 2, sink: c.sink });
  const t = target({ name: 'agent-v1', version: 'v1', community: agent.community });
  poller.addTarget(t);
  const r = await poller.poll(t.id);
  await poller.stop();
  assert.equal(r.outcome, 'ok', r.error);
  const metrics = new Set(r.batch!.samples.map((s) => s.metric));
  // v1 has no Counter64: the ifHC* columns are invisible to it, the 32-bit ones are used.
  assert.ok(metrics.has('ifInOctets') && !metrics.has('ifHCInOctets'), [...metrics].join(','));
  assert.ok(metrics.has('sysUpTime') && metrics.has('memAvailReal'));
});

test('discovery over a CIDR with configured credentials only: identity and interfaces', { skip }, async () => {
  assert.deepEqual(expandCidr('127.0.0.0/30', 10), ['127.0.0.1', '127.0.0.2']);
  assert.throws(() => expandCidr('10.0.0.0/8', 4096), /16777214 addresses, more than discovery.maxAddresses/);
  const { config } = parseSnmpConfig({
    discovery: {
      cidrs: ['127.0.0.0/30'],
      port: agent.port,
      timeoutMs: 300,
      credentials: [{ version: 'v2c', community: 'not-this-one' }, { version: 'v3', user: agent.users[2] }, { version: 'v2c', community: agent.community }],
    },
  });
  const r = await discover(config);
  assert.equal(r.found.length, 1);
  const d = r.found[0]!;
  assert.equal(d.address, '127.0.0.1');
  assert.equal(d.sysName, 'noctua-test-agent');
  assert.match(d.sysObjectID!, /^1\.3\.6\.1\.4\.1\.8072\./);
  assert.match(d.sysDescr!, /Linux/);
  assert.ok(d.interfaces.some((i) => i.ifName === 'lo' && i.ifType === 24), JSON.stringify(d.interfaces));
  assert.equal(d.target.version, 'v3', 'the first configured credential that works is kept');
  assert.equal(d.target.port, agent.port);
  assert.deepEqual(r.failed.map((f) => f.address), ['127.0.0.2']);
  assert.match(r.failed[0]!.error, /no response from 127\.0\.0\.2/);
});
