import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../../../core/bus-memory.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { SharedTargets, ensureTargetsTopic, publishTargets } from '../../../ingest/snmp/assignment.js';
import { parseSnmpConfig, type Target } from '../../../ingest/snmp/config.js';
import { startFakeAgent } from './fake-agent.js';
import { waitFor } from '../../peers/util.js';

const INTERVAL = 3000;

test('two pollers share 200 targets through the targets topic; when one dies the other polls them all within two intervals', async (t) => {
  const agent = await startFakeAgent('good');
  const cleanup: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });
  cleanup.push(() => agent.close());
  const { targets } = parseSnmpConfig({
    defaults: { community: 'public', port: agent.port, intervalMs: INTERVAL, timeoutMs: 1000, retries: 1 },
    targets: Array.from({ length: 200 }, (_, i) => ({ address: '127.0.0.1', name: `dev${String(i).padStart(3, '0')}` })),
  });
  const bus = new MemoryBus();
  cleanup.push(() => bus.close());
  await ensureTargetsTopic(bus, 12);
  await publishTargets(bus, targets);

  /** Every successful poll: [device, poller, poll start time]. */
  const polls: Array<[string, string, number]> = [];
  const make = (name: string) => {
    const poller = new SnmpPoller({ concurrency: 50, sink: { emit: (b) => void polls.push([b.device, name, b.ts]) } });
    const shared = new SharedTargets(bus, poller);
    cleanup.push(() => poller.stop(), () => shared.stop());
    return { poller, shared };
  };
  const a = make('A');
  const b = make('B');
  await a.shared.start();
  await b.shared.start();
  a.poller.start();
  b.poller.start();

  await waitFor('both pollers to own targets', () => a.poller.targetIds().length + b.poller.targetIds().length === 200, 10_000, 20);
  const idsA = new Set(a.poller.targetIds());
  const idsB = new Set(b.poller.targetIds());
  assert.ok(idsA.size > 0 && idsB.size > 0, `split ${idsA.size}/${idsB.size}`);
  assert.ok([...idsA].every((id) => !idsB.has(id)), 'no target is owned twice');
  const all = new Set(targets.map((t: Target) => t.id));
  // "Polled" = a poll was made (a slow shared CI machine may time some out): read the owners' stats.
  const polledSince = (since: number, ...who: SnmpPoller[]) => [...all].filter((id) => who.some((p) => (p.stats(id)?.lastPollAt ?? 0) > since));
  await waitFor('every target polled once', () => polledSince(0, a.poller, b.poller).length === 200, 3 * INTERVAL, 20);
  for (const [device, who] of polls) assert.equal(who, idsA.has(device) ? 'A' : 'B', `${device} polled by its owner only`);

  // A dies: it leaves the group, B takes every partition.
  const killedAt = Date.now();
  await a.shared.stop();
  await a.poller.stop();
  await waitFor('B to poll every target after the kill', () => polledSince(killedAt, b.poller).length === 200, 2 * INTERVAL, 20);
  assert.ok(!polls.some((p) => p[1] === 'A' && p[2] > killedAt), 'the dead poller emits nothing more');
  assert.equal(b.poller.targetIds().length, 200);
  // No target was polled twice in any interval: per device, consecutive polls are about an interval apart.
  const byDevice = new Map<string, number[]>();
  for (const [d, , t] of polls) byDevice.set(d, [...(byDevice.get(d) ?? []), t]);
  for (const [d, ts] of byDevice) for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! - ts[i - 1]! > INTERVAL / 4, `${d} polled twice within ${ts[i]! - ts[i - 1]!} ms`);

  // A removed target (tombstone) stops being polled.
  await publishTargets(bus, [], ['dev007']);
  await waitFor('the tombstone to apply', () => !b.poller.targetIds().includes('dev007'), 5_000, 20);
});
