import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gns3Missing, startGns3 } from '../../peers/gns3.js';
import { startKafka } from '../../peers/kafka.js';
import { waitFor } from '../../peers/util.js';
import { KafkaBus } from '../../../core/bus-kafka.js';
import { decodeBatch } from '../../../core/codec.js';
import { createLogger } from '../../../core/log.js';
import { TOPICS, type SampleBatch } from '../../../core/types.js';
import { startGns3Source, type Gns3Source } from '../../../ingest/gns3/source.js';

test('two poll processes divide GNS3 servers through Kafka: each polled by one, the survivor polls all when the other leaves', { timeout: 240_000, skip: gns3Missing() }, async (t) => {
  const g = await startGns3();
  const kafka = await startKafka();
  const cleanup: Array<() => Promise<unknown>> = [async () => kafka.stop(), async () => g.stop()];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  // Four names for one lab server: four targets to divide.
  const names = ['lab-1', 'lab-2', 'lab-3', 'lab-4'];
  const gns3 = { servers: names.map((name) => ({ url: g.url, name, user: g.user, password: g.password, intervalMs: 1000, timeoutMs: 10000, notifications: false })) };
  const group = `noctua-poll-gns3-test-${Date.now()}`;
  const make = async (name: string): Promise<Gns3Source> => {
    const bus = new KafkaBus({ brokers: kafka.brokers, clientId: `gns3-${name}`, heartbeatIntervalMs: 500, sessionTimeoutMs: 6000, maxWaitTimeMs: 500, logger: createLogger('silent') });
    const src = await startGns3Source({ bus, gns3, mode: 'shared', partitions: 4, groupId: group });
    cleanup.push(() => bus.close(), () => src.stop());
    return src;
  };
  const reader = new KafkaBus({ brokers: kafka.brokers, clientId: 'gns3-reader', logger: createLogger('silent') });
  cleanup.push(() => reader.close());
  await reader.ensureTopics([{ topic: TOPICS.samples, partitions: 3 }, { topic: TOPICS.events, partitions: 3 }]);
  const a = await make('A');
  const b = await make('B');
  const batches: SampleBatch[] = [];
  const c = reader.consumer({ groupId: `read-${Date.now()}`, fromBeginning: true, ephemeral: true });
  cleanup.push(() => c.stop());
  await c.subscribe([TOPICS.samples]);
  await c.run({ eachBatch: async (batch) => void batches.push(...batch.messages.map((m) => decodeBatch(m.value!))) });

  await waitFor('the group to split the servers', () => a.polled().length > 0 && b.polled().length > 0 && a.polled().length + b.polled().length === 4, 60_000, 100);
  assert.deepEqual([...a.polled(), ...b.polled()].sort(), names, 'each server owned by one');
  const split = Date.now();
  const upSince = (device: string, since: number) => batches.filter((x) => x.device === device && x.ts > since && x.samples.some((s) => s.metric === 'gns3_up' && s.value === 1)).length;
  await waitFor('every server polled after the split', () => names.every((n) => upSince(n, split) >= 3), 30_000, 200).catch(async (e) => { const v = await fetch(g.url + '/v3/version', { signal: AbortSignal.timeout(3000) }).then((r) => r.status, (x: Error) => x.message); throw new Error(`${(e as Error).message}: version ${v}: ${batches.length} batches, ${JSON.stringify(names.map((n) => [n, upSince(n, 0), batches.filter((x) => x.device === n).length]))}`); });
  // Polled once a second by one process: about 3 polls in 3 s, not 6.
  const from = Date.now();
  await waitFor('3 s more', () => Date.now() - from >= 3000, 5_000, 100);
  for (const n of names) assert.ok(upSince(n, from) <= 4, `${n}: ${upSince(n, from)} polls in 3 s`);

  const left = Date.now();
  await a.stop();
  await waitFor('B to poll every server after A left', () => b.polled().length === 4 && names.every((n) => upSince(n, left + 1000) >= 2), 30_000, 200);
});
