import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateState, TWO32 } from '../../processors/rate.js';
import type { Labels, Sample, SampleBatch } from '../../core/types.js';

const DEV = 'sw1';
const T0 = 1_700_000_000_000;

interface IfVals {
  ifIndex: string;
  ifName?: string;
  values: Record<string, number>;
}

/** One poll of one device, the way the SNMP poller shapes it (one labels object per interface). */
function batch(ts: number, upTicks: number | undefined, ifs: IfVals[]): SampleBatch {
  const samples: Sample[] = [];
  const dev: Labels = { device: DEV };
  if (upTicks !== undefined) samples.push({ metric: 'sysUpTime', labels: dev, ts, value: upTicks });
  for (const i of ifs) {
    const labels: Labels = { device: DEV, ifIndex: i.ifIndex, ifName: i.ifName ?? `ge-0/0/${i.ifIndex}` };
    for (const [metric, value] of Object.entries(i.values)) samples.push({ metric, labels, ts, value });
  }
  return { device: DEV, source: 'snmp', ts, samples };
}

const find = (ss: readonly Sample[], metric: string, ifIndex = '1') => ss.find((s) => s.metric === metric && s.labels.ifIndex === ifIndex);

test('64-bit counters give bits per second and utilisation per direction', () => {
  const r = new RateState();
  const first = r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1e12, ifHCOutOctets: 5e11, ifOperStatus: 1 } }]));
  assert.equal(first.samples.length, 0, 'the first poll only seeds');
  const out = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1e12 + 3_750_000_000, ifHCOutOctets: 5e11 + 75_000_000, ifOperStatus: 1 } }]));
  assert.equal(find(out.samples, 'if_in_bps')!.value, 500e6); // 3.75 GB * 8 / 60 s
  assert.equal(find(out.samples, 'if_in_util_pct')!.value, 50);
  assert.equal(find(out.samples, 'if_out_bps')!.value, 10e6);
  assert.equal(find(out.samples, 'if_out_util_pct')!.value, 1);
  assert.equal(out.events.length, 0);
});

test('64-bit counters are preferred over 32-bit ones of the same interface', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 10_000, ifHCInOctets: 2 ** 40, ifInOctets: 100 } }]));
  const out = r.process(batch(T0 + 10_000, 2000, [{ ifIndex: '1', values: { ifHighSpeed: 10_000, ifHCInOctets: 2 ** 40 + 1_000_000, ifInOctets: 50 } }]));
  const rates = out.samples.filter((s) => s.metric === 'if_in_bps');
  assert.equal(rates.length, 1);
  assert.equal(rates[0]!.value, 800_000);
});

test('missing ifHC columns fall back to 32-bit counters', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '2', values: { ifSpeed: 100e6, ifInOctets: 1000, ifOutOctets: 2000 } }]));
  const out = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '2', values: { ifSpeed: 100e6, ifInOctets: 1000 + 7_500_000, ifOutOctets: 2000 } }]));
  assert.equal(find(out.samples, 'if_in_bps', '2')!.value, 1e6);
  assert.equal(find(out.samples, 'if_in_util_pct', '2')!.value, 1);
  assert.equal(find(out.samples, 'if_out_bps', '2')!.value, 0);
});

test('a 32-bit wrap is corrected when the corrected delta fits the line speed', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifInOctets: TWO32 - 1_000_000 } }]));
  const out = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifInOctets: 2_750_000 } }]));
  assert.equal(find(out.samples, 'if_in_bps')!.value, (3_750_000 * 8) / 60);
  assert.equal(r.stats.wraps, 1);
});

test('a late poll of a busy 10G Counter32: the wraps it hid are counted from the last rate, not read as a collapse', () => {
  const r = new RateState();
  const poll = (t: number, octets: number) => r.process(batch(T0 + t, 1000 + t / 10, [{ ifIndex: '1', values: { ifHighSpeed: 10_000, ifInOctets: octets % TWO32 } }]));
  // 2.5 Gbit/s = 312.5 MB/s, polled every 5 s: 1.5625 GB a poll, a wrap every 13.7 s
  const perS = 312_500_000;
  poll(0, 0);
  assert.equal(find(poll(5_000, 5 * perS).samples, 'if_in_bps')!.value, 2.5e9);
  // the next poll comes 15 s later: 4.69 GB, one wrap and then some, so the counter shows only 0.39 GB more
  const restored = RateState.fromJSON(JSON.parse(JSON.stringify(r)));
  const lateBatch = batch(T0 + 20_000, 3000, [{ ifIndex: '1', values: { ifHighSpeed: 10_000, ifInOctets: (20 * perS) % TWO32 } }]);
  assert.equal(find(restored.process(lateBatch).samples, 'if_in_bps')!.value, 2.5e9, 'the last rate is in the checkpoint');
  const late = find(poll(20_000, 20 * perS).samples, 'if_in_bps')!.value;
  assert.equal(late, 2.5e9, `read as ${late.toExponential(3)} bit/s (the fewest wraps give 0.21 Gbit/s)`);
  // the traffic falls to a tenth in 5 s: one poll's delta is unambiguous at the fewest wraps
  assert.equal(find(poll(25_000, 20 * perS + 5 * perS / 10).samples, 'if_in_bps')!.value, 2.5e8);
  assert.equal(r.stats.ambiguous, 0);
});

test('a late poll whose wraps the last rate cannot tell gives no rate, counted; a rise the fewest wraps explain stays as it is', () => {
  const r = new RateState();
  const poll = (t: number, octets: number) => r.process(batch(T0 + t, 1000 + t / 10, [{ ifIndex: '1', values: { ifHighSpeed: 10_000, ifInOctets: octets % TWO32 } }]));
  let octets = 0;
  poll(0, octets);
  // 3 Gbit/s for 5 s: 1.875 GB (or 6.17 GB, a wrap more: the line allows it); the first interval has no last rate, so the fewest wraps stand
  assert.equal(find(poll(5_000, (octets += 1_875_000_000)).samples, 'if_in_bps')!.value, 3e9);
  // 20 s more, where 3 Gbit/s would be 7.5 GB: the counter moved 1.06 GB past a wrap, so 5.35 GB or 9.65 GB, each 2.15 GB away
  const out = poll(25_000, (octets += 7_500_000_000 - 2 ** 31));
  assert.equal(find(out.samples, 'if_in_bps'), undefined);
  assert.equal(r.stats.ambiguous, 1);
  // the next poll starts over from the counter's value, and with no last rate the fewest wraps stand again
  assert.equal(find(poll(30_000, (octets += 625_000_000)).samples, 'if_in_bps')!.value, 1e9);
  // from 1 Gbit/s a rise to 5 Gbit/s in 5 s (3.125 GB) is within the fewest wraps (none) and stays as it is
  assert.equal(find(poll(35_000, (octets += 3_125_000_000)).samples, 'if_in_bps')!.value, 5e9);
  assert.equal(r.stats.ambiguous, 1);
});

test('an implausible 32-bit "wrap" (a reset) reseeds instead of producing a spike', () => {
  const r = new RateState();
  // 10 Mbit/s link: a wrap would mean 4 GB in 60 s, impossible; the counter was cleared.
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 10, ifInOctets: 3_000_000_000 } }]));
  const out = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifHighSpeed: 10, ifInOctets: 1000 } }]));
  assert.equal(find(out.samples, 'if_in_bps'), undefined);
  assert.equal(r.stats.resets, 1);
  // ... and the next poll computes normally from the reseeded value.
  const next = r.process(batch(T0 + 120_000, 13000, [{ ifIndex: '1', values: { ifHighSpeed: 10, ifInOctets: 1000 + 75_000 } }]));
  assert.equal(find(next.samples, 'if_in_bps')!.value, 10_000);
});

test('a 32-bit decrease with unknown speed is not guessed to be a wrap', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifInOctets: TWO32 - 10 } }]));
  const out = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifInOctets: 10 } }]));
  assert.equal(out.samples.length, 0);
});

test('a sysUpTime decrease is a reboot: one event, counters reseeded, no spike', () => {
  const r = new RateState();
  r.process(batch(T0, 500_000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 9e12, ifOperStatus: 1 } }]));
  const out = r.process(batch(T0 + 60_000, 3000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 5000, ifOperStatus: 1 } }]));
  assert.equal(out.samples.length, 0, 'no rate across a reboot');
  assert.equal(out.events.length, 1);
  assert.equal(out.events[0]!.kind, 'reboot');
  assert.equal(out.events[0]!.device, DEV);
  assert.match(out.events[0]!.message, /rebooted/);
  const next = r.process(batch(T0 + 120_000, 9000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 5000 + 750_000, ifOperStatus: 1 } }]));
  assert.equal(find(next.samples, 'if_in_bps')!.value, 100_000);
  assert.equal(next.events.length, 0);
});

test('the 497-day TimeTicks wrap of sysUpTime is not a reboot', () => {
  const r = new RateState();
  r.process(batch(T0, TWO32 - 3000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1000 } }]));
  const out = r.process(batch(T0 + 60_000, 3000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1000 + 7500 } }]));
  assert.equal(out.events.length, 0);
  assert.equal(find(out.samples, 'if_in_bps')!.value, 1000);
});

test('rates are clamped to line speed', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 100, ifHCInOctets: 0 } }]));
  const out = r.process(batch(T0 + 1000, 1100, [{ ifIndex: '1', values: { ifHighSpeed: 100, ifHCInOctets: 1e9 } }]));
  assert.equal(find(out.samples, 'if_in_bps')!.value, 100e6);
  assert.equal(find(out.samples, 'if_in_util_pct')!.value, 100);
  assert.equal(r.stats.clamped, 1);
});

test('oper-status changes become events; the first observation does not', () => {
  const r = new RateState();
  const v = (oper: number, admin = 1) => [{ ifIndex: '3', ifName: 'xe-1', values: { ifOperStatus: oper, ifAdminStatus: admin } }];
  assert.equal(r.process(batch(T0, 100, v(1))).events.length, 0);
  const down = r.process(batch(T0 + 1000, 200, v(2))).events;
  assert.equal(down.length, 1);
  assert.equal(down[0]!.kind, 'oper-status');
  assert.equal(down[0]!.severity, 'major');
  assert.deepEqual([down[0]!.fields.from, down[0]!.fields.to, down[0]!.fields.ifName], ['up', 'down', 'xe-1']);
  assert.equal(r.process(batch(T0 + 2000, 300, v(2))).events.length, 0, 'no event without a change');
  const upAgain = r.process(batch(T0 + 3000, 400, v(1))).events;
  assert.equal(upAgain[0]!.severity, 'info');
  const shut = r.process(batch(T0 + 4000, 500, v(2, 2))).events;
  assert.equal(shut[0]!.severity, 'info', 'an admin shutdown is not an outage');
  // Deterministic ids: the same input replayed gives the same id.
  const r2 = new RateState();
  r2.process(batch(T0, 100, v(1)));
  assert.equal(r2.process(batch(T0 + 1000, 200, v(2))).events[0]!.id, down[0]!.id);
});

test('timestamps that are not monotonic are dropped and counted, not turned into rates', () => {
  const r = new RateState();
  r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 2000 } }]));
  const older = r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1000 } }]));
  assert.equal(older.samples.length, 0);
  assert.equal(older.events.length, 0, 'an older sysUpTime is not a reboot');
  const same = r.process(batch(T0 + 60_000, 7000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 2000 } }]));
  assert.equal(same.samples.length, 0);
  assert.equal(r.stats.outOfOrder, 2);
  const next = r.process(batch(T0 + 120_000, 13000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 2000 + 7500 } }]));
  assert.equal(find(next.samples, 'if_in_bps')!.value, 1000, 'state was kept from the newest poll');
});

test('an interface that disappears is forgotten; a reused ifIndex starts over', () => {
  const r = new RateState({ forgetAfterMs: 300_000 });
  r.process(batch(T0, 1000, [
    { ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 0 } },
    { ifIndex: '2', values: { ifHighSpeed: 1000, ifHCInOctets: 0 } },
  ]));
  assert.equal(r.size, 2);
  for (let i = 1; i <= 6; i++) r.process(batch(T0 + i * 60_000, 1000 + i * 6000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: i * 1000 } }]));
  assert.equal(r.size, 1, 'ifIndex 2 gone for longer than forgetAfterMs');
  // ifIndex 1 now names a different port with a lower counter: no rate, no reset counted as wrap.
  const out = r.process(batch(T0 + 420_000, 43000, [{ ifIndex: '1', ifName: 'new-port', values: { ifHighSpeed: 1000, ifHCInOctets: 10 } }]));
  assert.equal(out.samples.length, 0);
});

test('error and discard counters become per-second rates; labels objects are reused', () => {
  const r = new RateState();
  r.process(batch(T0, 1000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifInErrors: 10, ifOutDiscards: 0, ifHCInUcastPkts: 0 } }]));
  const b = batch(T0 + 10_000, 2000, [{ ifIndex: '1', values: { ifHighSpeed: 1000, ifInErrors: 110, ifOutDiscards: 5, ifHCInUcastPkts: 1e6 } }]);
  const out = r.process(b);
  assert.equal(find(out.samples, 'if_in_errors_ps')!.value, 10);
  assert.equal(find(out.samples, 'if_out_discards_ps')!.value, 0.5);
  assert.equal(find(out.samples, 'if_in_pps')!.value, 1e5);
  assert.ok(out.samples.every((s) => s.labels === b.samples[1]!.labels));
});

test('state survives a JSON round trip and stays small', () => {
  const r = new RateState();
  const ifs = (ts: number, k: number) =>
    Array.from({ length: 48 }, (_, i) => ({
      ifIndex: String(i + 1),
      values: { ifHighSpeed: 1000, ifOperStatus: 1, ifAdminStatus: 1, ifHCInOctets: k * 1e6 + i, ifHCOutOctets: k * 2e6, ifHCInUcastPkts: k * 1e3, ifHCOutUcastPkts: k * 1e3, ifInErrors: k, ifOutErrors: 0, ifInDiscards: 0, ifOutDiscards: k },
    }));
  r.process(batch(T0, 1000, ifs(T0, 1)));
  const json = JSON.stringify(r);
  const series = 48 * 8;
  assert.ok(json.length / series < 100, `${json.length / series} bytes per series`);
  const restored = RateState.fromJSON(JSON.parse(json));
  const a = r.process(batch(T0 + 60_000, 7000, ifs(T0, 2)));
  const b2 = restored.process(batch(T0 + 60_000, 7000, ifs(T0, 2)));
  assert.ok(a.samples.length > 48 * 5);
  assert.deepEqual(b2.samples.map((s) => [s.metric, s.labels.ifIndex, s.value]), a.samples.map((s) => [s.metric, s.labels.ifIndex, s.value]));
  assert.throws(() => RateState.fromJSON({ v: 2 }), /not a v1 checkpoint/);
  assert.throws(() => RateState.fromJSON({ v: 1, d: { x: [1] } }), /malformed entry for device x/);
});

test('a checkpoint written by the previous release (v1 JSON) restores: rates, wraps and oper-status events continue from it', () => {
  // Literal state as RateState.toJSON wrote it before interface state became slot arrays.
  const v1 = JSON.parse('{"v":1,"d":{"sw1":[1000,1700000000000,{"1":[1700000000000,1,0,"ge-0/0/1",{"hi":1000000000,"ie":5}],"2":[1700000000000,1,0,"ge-0/0/2",{"li":4294000000}]}]}}');
  const r = RateState.fromJSON(v1);
  assert.equal(r.size, 2);
  const out = r.process(batch(T0 + 10_000, 2000, [
    { ifIndex: '1', values: { ifHighSpeed: 1000, ifHCInOctets: 1e9 + 12_500_000, ifInErrors: 25, ifOperStatus: 2 } },
    { ifIndex: '2', values: { ifSpeed: 1e8, ifInOctets: 1_532_704 } },
  ]));
  assert.equal(find(out.samples, 'if_in_bps')!.value, 10e6);
  assert.equal(find(out.samples, 'if_in_errors_ps')!.value, 2);
  assert.equal(find(out.samples, 'if_in_bps', '2')!.value, 2e6, '32-bit wrap corrected from the restored value');
  assert.equal(r.stats.wraps, 1);
  assert.deepEqual(out.events.map((e) => [e.kind, e.fields.from, e.fields.to]), [['oper-status', 'up', 'down']]);
  // And it writes the same format back.
  const again = RateState.fromJSON(JSON.parse(JSON.stringify(r)));
  assert.deepEqual(JSON.parse(JSON.stringify(again)), JSON.parse(JSON.stringify(r)));
  assert.throws(() => RateState.fromJSON({ v: 1, d: { sw1: [1, 2, { 7: [1, 2] }] } }), /malformed interface 7 of device sw1/);
});

test('a batch that interleaves interfaces (column by column) gives the same rates as one grouped by interface', () => {
  const ifs = (k: number) =>
    Array.from({ length: 4 }, (_, i) => ({ ifIndex: String(i + 1), values: { ifHighSpeed: 1000, ifHCInOctets: k * 1e6 * (i + 1), ifHCOutOctets: k * 2e6, ifInErrors: k * i, ifOperStatus: 1 } }));
  const byColumn = (b: SampleBatch): SampleBatch => ({ ...b, samples: [...b.samples].sort((x, y) => (x.metric < y.metric ? -1 : x.metric > y.metric ? 1 : 0)) });
  const grouped = new RateState();
  const columns = new RateState();
  for (let k = 1; k <= 3; k++) {
    const b = batch(T0 + k * 10_000, 1000 + k * 1000, ifs(k));
    const a = grouped.process(b).samples;
    const c = columns.process(byColumn(b)).samples;
    const sorted = (ss: Sample[]) => ss.map((s) => `${s.labels.ifIndex} ${s.metric} ${s.value}`).sort();
    assert.deepEqual(sorted(c), sorted(a));
    if (k > 1) assert.equal(a.length, 4 * 5);
  }
  assert.equal(columns.size, 4);
});
