import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKafka, type KafkaPeer } from '../../peers/kafka.js';
import { KafkaBus } from '../../../core/bus-kafka.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { SharedTargets, ensureTargetsTopic, publishTargets } from '../../../ingest/snmp/assignment.js';
import { parseSnmpConfig } from '../../../ingest/snmp/config.js';
import { startFakeAgent, type FakeAgent } from './fake-agent.js';
import { waitFor } from '../../peers/util.js';

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
