import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSnmpsim, snmpsimMissing, SNMPSIM_EXAMPLES, type Snmpsim } from '../../peers/snmpsim.js';
import { SnmpPoller } from '../../../ingest/snmp/poller.js';
import { parseSnmpConfig, resolveTarget, type Target } from '../../../ingest/snmp/config.js';
import type { SampleBatch } from '../../../core/types.js';
import { RateState } from '../../../processors/rate.js';
import { sleep } from '../../peers/util.js';

// dist/test/ingest/snmp -> repo root
const ROOT = join(fileURLToPath(import.meta.url), '../../../../..');
const FIXTURES = join(ROOT, 'test/fixtures/snmp');

const skip = snmpsimMissing();
let sim: Snmpsim;
before(async () => {
  if (skip) return;
  sim = await startSnmpsim([
    join(FIXTURES, 'core-router.snmprec'),
    join(FIXTURES, 'legacy-switch.snmprec'),
    join(SNMPSIM_EXAMPLES, 'cisco_16_switch.snmprec.gz'),
    join(SNMPSIM_EXAMPLES, 'hp_perf.snmprec.gz'),
  ]);
});
after(async () => {
  await sim?.stop();
});

const defaults = parseSnmpConfig({}).config.defaults;
const target = (community: string, over: Record<string, unknown> = {}): Target =>
  resolveTarget({ address: '127.0.0.1', port: sim.port, name: community, community, timeoutMs: 2000, retries: 1, ...over } as never, defaults);

function pollerWith(batches: SampleBatch[]) {
  return new SnmpPoller({ concurrency: 4, sink: { emit: (b) => void batches.push(b) } });
}

test('a recorded Cisco 3750 walk: identity, interfaces by ifName, 64-bit counters', { skip }, async () => {
  const batches: SampleBatch[] = [];
  const p = pollerWith(batches);
  p.addTarget(target('cisco_16_switch'));
  const r = await p.poll('cisco_16_switch');
  await p.stop();
  assert.equal(r.outcome, 'ok', r.error);
  assert.equal(r.info?.sysName, 'Profiler3750');
  assert.equal(r.info?.sysObjectID, '1.3.6.1.4.1.9.1.516');
  assert.match(r.info?.sysDescr ?? '', /Cisco IOS Software, C3750/);
  const hc = batches[0]!.samples.filter((s) => s.metric === 'ifHCInOctets');
  assert.ok(hc.length >= 50, `${hc.length} interfaces with ifHCInOctets`);
  assert.ok(hc.some((s) => /^(Gi|Fa|Vl)/.test(s.labels.ifName ?? '')), 'Cisco short interface names');
  assert.ok(!batches[0]!.samples.some((s) => s.metric === 'ifInOctets' && hc.some((h) => h.labels === s.labels)), '32-bit twins are not sent where ifHC* exists');
});

test('a recorded HP walk with ill-typed columns is polled without crashing', { skip }, async () => {
  const batches: SampleBatch[] = [];
  const p = pollerWith(batches);
  p.addTarget(target('hp_perf'));
  const r = await p.poll('hp_perf');
  await p.stop();
  assert.ok(r.outcome === 'ok' || r.outcome === 'partial', `${r.outcome}: ${r.error}`);
  assert.match(r.info?.sysDescr ?? '', /ProCurve/);
  assert.ok(batches.length === 1 && batches[0]!.samples.some((s) => s.metric === 'sysUpTime'));
});

test('core router fixture: exact Counter64 beyond 2^53, HOST-RESOURCES, UCD, rates at 1 Gbit/s on a 10G port', { skip }, async () => {
  const batches: SampleBatch[] = [];
  const p = pollerWith(batches);
  p.addTarget(target('core-router', { labels: { role: 'core' } }));
  const r1 = await p.poll('core-router');
  assert.equal(r1.outcome, 'ok', r1.error);
  const b = batches[0]!;
  const get = (metric: string, pred: (l: Record<string, string>) => boolean = () => true) => b.samples.filter((s) => s.metric === metric && pred(s.labels as Record<string, string>));
  assert.equal(get('ifHCInOctets', (l) => l.ifIndex === '1')[0]!.value, Number(2n ** 60n + 1n));
  assert.equal(get('ifHighSpeed')[0]!.value, 10_000);
  assert.equal(get('ifHCInOctets', (l) => l.ifIndex === '2')[0]!.labels.ifAlias, 'uplink to spine-2');
  assert.equal(get('ifHCInOctets')[0]!.labels.role, 'core');
  assert.deepEqual(get('hrProcessorLoad').map((s) => s.value), [37, 41]);
  assert.equal(get('hrStorageSizeBytes')[0]!.value, 16_777_216 * 1024);
  assert.equal(get('hrStorageUsedBytes')[0]!.labels.hrStorageType, 'ram');
  assert.deepEqual(get('laLoadInt').map((s) => [s.labels.la, s.value]), [['1', 123], ['5', 99], ['15', 87]]);
  assert.equal(get('memAvailReal')[0]!.value, 8_388_608);
  await sleep(1000);
  const r2 = await p.poll('core-router');
  await p.stop();
  assert.equal(r2.outcome, 'ok');
  const rate = new RateState();
  rate.process(batches[0]!);
  const out = rate.process(batches[1]!).samples;
  const bps = out.filter((s) => s.metric === 'if_out_bps');
  assert.equal(bps.length, 2);
  // The simulator advances ifHCOutOctets by 125,000,000 B/s: 1 Gbit/s, 10 % of 10G.
  for (const s of bps) assert.ok(s.value > 0.8e9 && s.value < 1.2e9, `if_out_bps ${s.value}`);
  for (const s of out.filter((x) => x.metric === 'if_out_util_pct')) assert.ok(s.value > 8 && s.value < 12, `util ${s.value}`);
});

test('legacy switch fixture: 32-bit fallback and a real counter wrap between polls, without a spike', { skip }, async () => {
  const batches: SampleBatch[] = [];
  const p = pollerWith(batches);
  p.addTarget(target('legacy-switch'));
  const rate = new RateState();
  const port1: number[] = [];
  const bps: number[] = [];
  // Port 1 advances 1,000,000 B/s from 15,000,000 B below 2^32: it wraps ~15 s after snmpsim starts.
  // Poll once, sleep until just before the wrap, then poll across it.
  const pollOnce = async () => {
    const r = await p.poll('legacy-switch');
    assert.equal(r.outcome, 'ok', r.error);
    const b = batches.at(-1)!;
    assert.ok(!b.samples.some((s) => s.metric.startsWith('ifHC')));
    const v = b.samples.find((s) => s.metric === 'ifInOctets' && s.labels.ifIndex === '1')!.value;
    port1.push(v);
    for (const s of rate.process(b).samples) if (s.metric === 'if_in_bps' && s.labels.ifIndex === '1') bps.push(s.value);
    return v;
  };
  const first = await pollOnce();
  const untilWrapMs = ((4294967295 - first) / 1_000_000) * 1000;
  assert.ok(untilWrapMs > 0 && untilWrapMs < 16_000, `snmpsim answered too late: port 1 is at ${first}`);
  await sleep(Math.max(0, untilWrapMs - 2000));
  for (let i = 0; i < 8 && rate.stats.wraps === 0; i++) {
    await pollOnce();
    await sleep(700);
  }
  await p.stop();
  assert.equal(rate.stats.wraps, 1, `raw values ${port1.join(', ')}`);
  assert.ok(port1.some((v, i) => i > 0 && v < port1[i - 1]!), 'the raw counter went down');
  for (const v of bps) assert.ok(v > 6e6 && v < 10e6, `if_in_bps ${v} (8 Mbit/s expected)`);
});
