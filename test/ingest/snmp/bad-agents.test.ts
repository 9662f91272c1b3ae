import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAgent } from './fake-agent.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { parseSnmpConfig, resolveTarget, type Target } from '../../../ingest/snmp/config.js';
import type { NetEvent, SampleBatch } from '../../../core/types.js';
import { registry } from '../../../core/metrics.js';
import { waitFor } from '../../peers/util.js';

const defaults = parseSnmpConfig({}).config.defaults;
const target = (name: string, port: number, over: Record<string, unknown> = {}): Target =>
  resolveTarget({ address: '127.0.0.1', port, name, community: 'public', timeoutMs: 150, retries: 2, ...over } as never, defaults);

function sink() {
  const batches: SampleBatch[] = [];
  const events: NetEvent[] = [];
  return { batches, events, sink: { emit: (b: SampleBatch) => void batches.push(b), emitEvent: (e: NetEvent) => void events.push(e) } };
}

test('timeouts, garbage, truncated PDUs and tooBig: bounded retries, a clear error each, the good target unaffected', async () => {
  const silent = await startFakeAgent('silent');
  const garbage = await startFakeAgent('garbage');
  const truncated = await startFakeAgent('truncated');
  const tooBig = await startFakeAgent('tooBig', { tooBigAbove: 3 });
  const good = await startFakeAgent('good');
  const c = sink();
  const poller = new SnmpPoller({ concurrency: 10, sink: c.sink });
  const ts = [target('silent', silent.port), target('garbage', garbage.port), target('truncated', truncated.port), target('toobig', tooBig.port, { maxRepetitions: 25 }), target('good', good.port)];
  for (const t of ts) poller.addTarget(t);
  const [rs, rg, rt, rb, rgood] = await Promise.all(ts.map((t) => poller.poll(t.id)));

  assert.equal(rs!.outcome, 'unreachable');
  assert.match(rs!.error!, /no response from 127\.0\.0\.1:\d+ \(3 tries, timeout 150 ms\)/);
  assert.equal(silent.requests.length, 3, 'exactly retries + 1 sends of the first request, then the poll gives up');

  for (const [r, agent, what] of [[rg!, garbage, 'garbage'], [rt!, truncated, 'truncated']] as const) {
    assert.equal(r.outcome, 'error', what);
    assert.match(r.error!, /no valid response from 127\.0\.0\.1:\d+; 3 malformed packet\(s\) received/, what);
    assert.equal(agent.requests.length, 3, what);
  }

  assert.equal(rb!.outcome, 'ok', rb!.error);
  const bulks = tooBig.requests.filter((r) => r.tag === 0xa5);
  assert.ok(bulks.some((r) => r.maxRep > 3) && bulks.some((r) => r.maxRep <= 3), `max-repetitions went ${bulks.map((r) => r.maxRep).join(',')}`);
  const inOctets = c.batches.find((b) => b.device === 'toobig')!.samples.filter((s) => s.metric === 'ifInOctets');
  assert.deepEqual(inOctets.map((s) => [s.labels.ifName, s.value]), [['port1', 1000], ['port2', 2000], ['port3', 3000], ['port4', 4000], ['port5', 5000]]);

  assert.equal(rgood!.outcome, 'ok');
  assert.equal(c.batches.filter((b) => b.device === 'good').length, 1);
  // A failed poll emits only its reachability (snmp_up = 0, like Prometheus' `up`), never partial data.
  const up = (d: string) => c.batches.filter((b) => b.device === d).flatMap((b) => b.samples).find((s) => s.metric === 'snmp_up')?.value;
  for (const d of ['silent', 'garbage', 'truncated']) {
    const samples = c.batches.filter((b) => b.device === d).flatMap((b) => b.samples);
    assert.deepEqual([...new Set(samples.map((s) => s.metric))].sort(), ['snmp_poll_seconds', 'snmp_up'], `${d} emits only reachability`);
    assert.equal(up(d), 0, d);
  }
  assert.equal(up('good'), 1);
  assert.equal(up('toobig'), 1);
  assert.deepEqual(c.events.map((e) => `${e.device}:${e.kind}`), ['silent:unreachable']);
  const text = await registry.metrics();
  assert.match(text, /noctua_snmp_malformed_packets_total\{peer="127\.0\.0\.1:\d+"\} 3/);
  assert.match(text, /noctua_snmp_toobig_total\{target="toobig"\} [1-9]/);
  await poller.stop();
  for (const a of [silent, garbage, truncated, tooBig, good]) await a.close();
});

test('the breaker stops polling a dead device after repeated failures and probes it later', async () => {
  const silent = await startFakeAgent('silent');
  const c = sink();
  const poller = new SnmpPoller({ concurrency: 2, sink: c.sink, breaker: { failures: 2, maxBackoffMs: 60_000 } });
  const t = target('dead', silent.port, { retries: 0, timeoutMs: 50, intervalMs: 1000 });
  poller.addTarget(t);
  await poller.poll(t.id);
  assert.equal(poller.stats(t.id)!.state, 'unreachable');
  await poller.poll(t.id);
  const s = poller.stats(t.id)!;
  assert.equal(s.state, 'breaker-open');
  assert.ok(s.nextProbeAt! > Date.now(), 'a probe is scheduled in the future');
  assert.equal(s.consecutiveFailures, 2);
  assert.equal(c.events.filter((e) => e.kind === 'unreachable').length, 1, 'one event per outage, not per poll');
  // On schedule: slots inside the backoff are skipped; the probe after it fails and doubles the wait.
  const sent = silent.requests.length;
  poller.start();
  await waitFor('a probe after the backoff', () => poller.stats(t.id)!.consecutiveFailures === 3, 10_000, 20);
  const after = poller.stats(t.id)!;
  assert.equal(silent.requests.length, sent + 1, 'one probe request, no retries storm');
  assert.ok(after.nextProbeAt! - after.lastPollAt! >= 1900, 'backoff doubled to two intervals');
  await poller.stop();
  await silent.close();
});
