import { test } from 'node:test';
import assert from 'node:assert/strict';
import snmp from 'net-snmp';
import { MemoryBus } from '../../../core/bus-memory.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../../core/types.js';
import { decodeBatch, decodeEvent } from '../../../core/codec.js';
import { startSnmpSource } from '../../../ingest/snmp/source.js';
import { targetStatus, formatStatus } from '../../../ingest/snmp/status.js';
import { ConfigError } from '../../../core/config.js';
import { startFakeAgent } from './fake-agent.js';
import { freeUdpPort, waitFor } from '../../peers/util.js';

test('the source produces one encoded batch per poll keyed by device, and events, on the bus', async (t) => {
  const good = await startFakeAgent('good');
  const silent = await startFakeAgent('silent');
  const trapPort = await freeUdpPort();
  const bus = new MemoryBus();
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 3 }, { topic: TOPICS.events, partitions: 3 }]);
  const source = await startSnmpSource({
    bus,
    snmp: {
      defaults: { community: 'public', intervalMs: 1000, timeoutMs: 1000, retries: 1 },
      targets: [
        { address: '127.0.0.1', port: good.port, name: 'edge-1', labels: { site: 'par' } },
        { address: '127.0.0.1', port: silent.port, name: 'dead-1', timeoutMs: 100, retries: 0 },
      ],
      traps: { enabled: true, address: '127.0.0.1', port: trapPort, communities: ['traps'] },
    },
  });
  t.after(async () => {
    await source.stop();
    await bus.close();
    await good.close();
    await silent.close();
  });
  const batches: SampleBatch[] = [];
  const events: NetEvent[] = [];
  const consumer = bus.consumer({ groupId: 'test-reader' });
  await consumer.subscribe([TOPICS.samples, TOPICS.events]);
  await consumer.run({
    eachBatch: async (b) => {
      for (const m of b.messages) {
        if (b.topic === TOPICS.samples) {
          const batch = decodeBatch(m.value!);
          assert.equal(m.key, batch.device);
          batches.push(batch);
        } else events.push(decodeEvent(m.value!));
      }
    },
  });
  t.after(() => consumer.stop());

  const edge = () => batches.filter((x) => x.device === 'edge-1');
  await waitFor('two polls of edge-1 and the unreachable event of dead-1', () => edge().length >= 2 && events.some((e) => e.kind === 'unreachable'), 10_000, 20);
  const b = edge()[0]!;
  assert.equal(b.device, 'edge-1');
  assert.deepEqual(b.samples.filter((s) => s.metric === 'ifInOctets').map((s) => [s.labels.ifName, s.labels.site, s.value]).slice(0, 2), [['port1', 'par', 1000], ['port2', 'par', 2000]]);
  assert.equal(events.find((e) => e.kind === 'unreachable')!.device, 'dead-1');
  // The dead target's batches carry only its reachability: snmp_up = 0.
  const dead = batches.filter((x) => x.device === 'dead-1').flatMap((x) => x.samples);
  assert.ok(dead.length > 0 && dead.every((s) => (s.metric === 'snmp_up' && s.value === 0) || s.metric === 'snmp_poll_seconds'));

  // A trap from the polled address is attributed to the polled device.
  const sender = snmp.createSession('127.0.0.1', 'traps', { trapPort, version: snmp.Version2c });
  sender.on('error', () => {});
  await new Promise<void>((resolve, reject) => sender.trap('1.3.6.1.6.3.1.1.5.3', [{ oid: '1.3.6.1.2.1.2.2.1.1.2', type: snmp.ObjectType.Integer, value: 2 }], (err) => (err ? reject(err) : resolve())));
  sender.close();
  const trap = await waitFor('the trap event', () => events.find((e) => e.kind === 'trap'), 10_000, 20);
  assert.equal(trap.device, 'edge-1');
  assert.equal(trap.fields.trap, 'linkDown');

  // The status listing puts the failing target first and names its error.
  const rows = targetStatus().filter((r) => r.id === 'edge-1' || r.id === 'dead-1');
  assert.deepEqual(rows.map((r) => r.id), ['dead-1', 'edge-1']);
  assert.match(rows[0]!.lastError!, /no response/);
  assert.ok(rows[1]!.varbinds > 0 && rows[1]!.successes >= 2);
  const table = formatStatus(rows);
  assert.match(table.split('\n')[0]!, /^TARGET\s+STATE\s+LAST MS/);
  assert.match(table, /dead-1\s+(unreachable|breaker-open)/);
});

test('invalid SNMP configuration is refused with the field named', async () => {
  const bus = new MemoryBus();
  await assert.rejects(startSnmpSource({ bus, snmp: { targets: [{ address: '10.0.0.1', version: 'v2c' }] } }), (err: Error) => err instanceof ConfigError && /config\.snmp\.targets\.0: 10\.0\.0\.1: v2c needs a community/.test(err.message));
  await assert.rejects(startSnmpSource({ bus, snmp: { targets: [{ address: '10.0.0.1', community: 'x', intervalMs: 5 }] } }), /config\.snmp\.targets\.0\.intervalMs/);
  await assert.rejects(
    startSnmpSource({ bus, snmp: { defaults: { version: 'v3', user: { name: 'u', level: 'authPriv', authProtocol: 'sha', authKey: 'longenough' } }, targets: [{ address: '10.0.0.1' }] } }),
    /level authPriv needs privProtocol and privKey/,
  );
  await bus.close();
});
