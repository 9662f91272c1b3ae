import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKafka, type KafkaPeer } from '../../peers/kafka.js';
import { KafkaBus } from '../../../core/bus-kafka.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { SharedTargets, ensureTargetsTopic, publishTargets } from '../../../ingest/snmp/assignment.js';
import { parseSnmpConfig } from '../../../ingest/snmp/config.js';
import { startFakeAgent, type FakeAgent } from './fake-agent.js';
import { startProcess, waitFor } from '../../peers/util.js';
import { fileURLToPath } from 'node:url';

// The same division as scaleout.test.ts, through a real Kafka broker's consumer-group assignment.
const INTERVAL = 5000;
let kafka: KafkaPeer;
let agent: FakeAgent;

before(async () => {
  kafka = await startKafka();
  agent = await startFakeAgent('good');
});
after(async () => {
  await agent?.close();
  await kafka?.stop();
});

test('two pollers divide 200 targets through Kafka; when one leaves the other polls them all within two intervals', async (t) => {
  const cleanup: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  const { targets } = parseSnmpConfig({
    defaults: { community: 'public', port: agent.port, intervalMs: INTERVAL, timeoutMs: 1000, retries: 1 },
    targets: Array.from({ length: 200 }, (_, i) => ({ address: '127.0.0.1', name: `kdev${String(i).padStart(3, '0')}` })),
  });
  const admin = new KafkaBus({ brokers: kafka.brokers, clientId: 'snmp-admin' });
  cleanup.push(() => admin.close());
  await ensureTargetsTopic(admin, 6);
  await publishTargets(admin, targets);

  const make = (name: string) => {
    const bus = new KafkaBus({ brokers: kafka.brokers, clientId: `snmp-${name}`, heartbeatIntervalMs: 500, sessionTimeoutMs: 6000, maxWaitTimeMs: 500 });
    const poller = new SnmpPoller({ concurrency: 50, sink: { emit: () => {} } });
    const shared = new SharedTargets(bus, poller, { groupId: 'noctua-poll-test' });
    cleanup.push(() => bus.close(), () => poller.stop(), () => shared.stop());
    return { bus, poller, shared };
  };
  const a = make('A');
  const b = make('B');
  await a.shared.start();
  await b.shared.start();
  a.poller.start();
  b.poller.start();
  const all = targets.map((x) => x.id);
  await waitFor('the group to split the targets', () => {
    const na = a.poller.targetIds().length;
    const nb = b.poller.targetIds().length;
    return na > 0 && nb > 0 && na + nb === 200;
  }, 60_000, 100);
  const idsA = new Set(a.poller.targetIds());
  assert.ok(b.poller.targetIds().every((id) => !idsA.has(id)), 'no target owned by both');
  const polledSince = (since: number, p: SnmpPoller) => all.filter((id) => (p.stats(id)?.lastPollAt ?? 0) > since);
  await waitFor('every target polled', () => polledSince(0, a.poller).length + polledSince(0, b.poller).length === 200, 3 * INTERVAL, 100);

  const leftAt = Date.now();
  await a.shared.stop();
  await a.poller.stop();
  await waitFor('B to poll every target after A left', () => polledSince(leftAt, b.poller).length === 200, 2 * INTERVAL, 100);
  assert.equal(b.poller.targetIds().length, 200);
});

test('a poller killed with SIGKILL: Kafka evicts it and the survivor polls every target within two intervals', async (t) => {
  const CRASH_INTERVAL = 12_000; // > the broker's minimum session timeout (6 s) plus a rebalance
  const cleanup: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  const { targets } = parseSnmpConfig({
    defaults: { community: 'public', port: agent.port, intervalMs: CRASH_INTERVAL, timeoutMs: 1000, retries: 1 },
    targets: Array.from({ length: 200 }, (_, i) => ({ address: '127.0.0.1', name: `cdev${String(i).padStart(3, '0')}` })),
  });
  const topicBus = new KafkaBus({ brokers: kafka.brokers, clientId: 'snmp-admin2' });
  cleanup.push(() => topicBus.close());
  // A separate group and target set from the first test: the topic is shared, the ids are not.
  await ensureTargetsTopic(topicBus, 6);
  await publishTargets(topicBus, targets);
  const group = 'noctua-poll-crash';
  const ids = new Set(targets.map((x) => x.id));

  // The victim runs in its own process so that SIGKILL is a real crash (no LeaveGroup sent).
  const dist = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
  const child = startProcess(process.execPath, ['--input-type=module', '-e', `
    const { KafkaBus } = await import(${JSON.stringify(dist('../../../core/bus-kafka.js'))});
    const { SnmpPoller } = await import(${JSON.stringify(dist('../../../ingest/snmp/poller.js'))});
    const { SharedTargets } = await import(${JSON.stringify(dist('../../../ingest/snmp/assignment.js'))});
    const bus = new KafkaBus({ brokers: ${JSON.stringify(kafka.brokers)}, clientId: 'snmp-victim', heartbeatIntervalMs: 500, sessionTimeoutMs: 6000, maxWaitTimeMs: 500 });
    const poller = new SnmpPoller({ concurrency: 50, sink: { emit: () => {} } });
    await new SharedTargets(bus, poller, { groupId: ${JSON.stringify(group)} }).start();
    poller.start();
    setInterval(() => console.log('owned ' + poller.targetIds().filter((id) => id.startsWith('cdev')).length), 300);
  `], { env: { ...process.env, NOCTUA_LOG_LEVEL: 'silent' } });
  cleanup.push(() => child.kill('SIGKILL'));
  const childOwned = () => Number([...child.output().matchAll(/owned (\d+)/g)].at(-1)?.[1] ?? 0);

  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'snmp-survivor', heartbeatIntervalMs: 500, sessionTimeoutMs: 6000, maxWaitTimeMs: 500 });
  const poller = new SnmpPoller({ concurrency: 50, sink: { emit: () => {} } });
  const shared = new SharedTargets(bus, poller, { groupId: group });
  cleanup.push(() => bus.close(), () => poller.stop(), () => shared.stop());
  await waitFor('the victim to own all targets', () => childOwned() === 200, 60_000, 100);
  await shared.start();
  poller.start();
  const mine = () => poller.targetIds().filter((id) => ids.has(id));
  await waitFor('the group to split the targets', () => mine().length > 0 && childOwned() > 0 && mine().length + childOwned() === 200, 60_000, 100);

  const killedAt = Date.now();
  await child.kill('SIGKILL');
  const polledSince = (since: number) => [...ids].filter((id) => (poller.stats(id)?.lastPollAt ?? 0) > since);
  await waitFor('the survivor to poll every target after the crash', () => polledSince(killedAt).length === 200, 2 * CRASH_INTERVAL, 100);
  assert.equal(mine().length, 200);
});
