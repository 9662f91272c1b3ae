import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startKafka } from '../../peers/kafka.js';
import { startSshd, sshdMissing } from '../../peers/sshd.js';
import { waitFor } from '../../peers/util.js';
import { KafkaBus } from '../../../core/bus-kafka.js';
import { createLogger } from '../../../core/log.js';
import { registry } from '../../../core/metrics.js';
import { TOPICS } from '../../../core/types.js';
import { sshExec, startSshSource, type SshSource } from '../../../ingest/ssh/source.js';

const INTERVAL = 2000;

test('two poll processes divide SSH targets through Kafka, none polled by both, and one takes them all when the other leaves; no key bytes on the topic', { skip: sshdMissing(), timeout: 240_000 }, async (t) => {
  const [kafka, sshd] = await Promise.all([startKafka(), startSshd()]);
  const cleanup: Array<() => Promise<unknown>> = [async () => kafka.stop(), async () => sshd.stop()];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  // Six targets, one sshd: every 127.0.0.x reaches it.
  const ssh = {
    defaults: { port: sshd.port, user: sshd.user, privateKeyFile: sshd.keyFile, intervalMs: INTERVAL, timeoutMs: 5000 },
    targets: Array.from({ length: 6 }, (_, i) => ({ address: `127.0.0.${i + 1}`, name: `linux-${i + 1}`, hostKey: sshd.hostKey })),
  };
  const group = `noctua-poll-ssh-test-${Date.now()}`;
  const polls = new Map<string, Map<string, number>>();
  const make = async (name: string): Promise<{ bus: KafkaBus; src: SshSource }> => {
    const bus = new KafkaBus({ brokers: kafka.brokers, clientId: `ssh-${name}`, heartbeatIntervalMs: 500, sessionTimeoutMs: 6000, maxWaitTimeMs: 500, logger: createLogger('silent') });
    const mine = new Map<string, number>();
    polls.set(name, mine);
    const src = await startSshSource({
      bus,
      ssh,
      mode: 'shared',
      partitions: 6,
      groupId: group,
      exec: (target, command) => {
        mine.set(target.id, Date.now());
        return sshExec(target, command);
      },
    });
    cleanup.push(() => bus.close(), () => src.stop());
    return { bus, src };
  };
  const a = await make('A');
  const b = await make('B');
  await waitFor('the group to split the targets', () => a.src.polled().length > 0 && b.src.polled().length > 0 && a.src.polled().length + b.src.polled().length === 6, 60_000, 100);
  const ofA = new Set(a.src.polled());
  assert.ok(b.src.polled().every((id) => !ofA.has(id)), 'no target owned by both');
  const split = Date.now();
  const polledSince = (name: string, since: number) => [...(polls.get(name) ?? [])].filter(([, at]) => at > since).map(([id]) => id);
  await waitFor('every target polled after the split', () => new Set([...polledSince('A', split), ...polledSince('B', split)]).size === 6, 3 * INTERVAL + 5_000, 100);
  const both = polledSince('A', split + INTERVAL).filter((id) => polledSince('B', split + INTERVAL).includes(id));
  assert.deepEqual(both, [], 'no target polled by both after the split');

  // The topic holds the key's path, never its bytes.
  const values: string[] = [];
  const c = a.bus.consumer({ groupId: `read-${Date.now()}`, fromBeginning: true, ephemeral: true });
  await c.subscribe([TOPICS.sshTargets]);
  await c.run({ eachBatch: async (batch) => void values.push(...batch.messages.map((m) => m.value?.toString() ?? '')) });
  await waitFor('the SSH targets topic read', () => values.length >= 6, 30_000, 100);
  await c.stop();
  assert.ok(values.every((v) => v.includes(sshd.keyFile) && !v.includes('PRIVATE KEY')), values[0]);

  // A message that is no target is counted and skipped; the others stay polled.
  const rejected = async () => (await registry.getSingleMetric('noctua_rejected_messages_total')?.get())?.values.find((v) => v.labels.topic === TOPICS.sshTargets && v.labels.reason === 'invalid_target')?.value ?? 0;
  const before = await rejected();
  const producer = await a.bus.producer();
  await producer.send(TOPICS.sshTargets, [{ key: 'bogus:22', value: Buffer.from('{"id":"bogus:22","address":42}') }]);
  await producer.close();
  await waitFor('the bad target counted', async () => (await rejected()) > before, 30_000, 100);

  const left = Date.now();
  await a.src.stop();
  await waitFor('B to poll every target after A left', () => polledSince('B', left).length === 6, 2 * INTERVAL + 15_000, 100);
  assert.equal(b.src.polled().length, 6);
});
