import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Labels, Sample } from '../../core/types.js';
import { WindowOperator, parseDuration, type WindowOptions, type WindowResult, type WindowStateJSON } from '../../processors/window.js';
import { packSnapshot, unpackSnapshot } from '../../processors/checkpoint.js';
import { registry } from '../../core/metrics.js';

const L = { device: 'r1', ifIndex: '1' };
const s = (ts: number, value: number, metric = 'if_in_bps', labels: Labels = L): Sample => ({ metric, labels, ts, value });

function op(over: Partial<WindowOptions> = {}): WindowOperator {
  return new WindowOperator({
    windows: [{ name: '10s', sizeMs: 10_000, hopMs: 10_000, allowedLatenessMs: 0 }],
    defaultDelayMs: 5_000,
    idleTimeoutMs: 60_000,
    ...over,
  });
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}

test('window boundaries are aligned in UTC: [start, end) of a minute and of an hour', () => {
  const o = op({ windows: [{ name: '1m', sizeMs: 60_000, hopMs: 60_000, allowedLatenessMs: 0 }, { name: '1h', sizeMs: 3_600_000, hopMs: 3_600_000, allowedLatenessMs: 0 }], defaultDelayMs: 0 });
  const t0 = Date.UTC(2026, 10, 27, 12, 0, 0, 0);
  o.process('r1', 'snmp', [s(t0, 1)]);
  o.process('r1', 'snmp', [s(t0 + 59_999, 2)]); // still 12:00 minute
  o.process('r1', 'snmp', [s(t0 + 60_000, 4)]); // 12:01:00.000 opens the next minute and closes 12:00
  let out = o.drainResults();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.window, '1m');
  assert.equal(new Date(out[0]!.start).toISOString(), '2026-11-27T12:00:00.000Z');
  assert.equal(new Date(out[0]!.end).toISOString(), '2026-11-27T12:01:00.000Z');
  assert.equal(out[0]!.agg.count, 2);
  assert.equal(out[0]!.agg.sum, 3);
  o.process('r1', 'snmp', [s(Date.UTC(2026, 10, 27, 13, 0, 0, 0), 8)]);
  out = o.drainResults();
  const hour = out.find((r) => r.window === '1h')!;
  assert.equal(new Date(hour.start).toISOString(), '2026-11-27T12:00:00.000Z');
  assert.equal(new Date(hour.end).toISOString(), '2026-11-27T13:00:00.000Z');
  assert.equal(hour.agg.count, 3);
  assert.equal(hour.agg.max, 4);
  assert.deepEqual(out.filter((r) => r.window === '1m').map((r) => new Date(r.start).toISOString()), ['2026-11-27T12:01:00.000Z']);
});

test('out-of-order samples within the allowed delay land in their window; aggregates hand-computed', () => {
  const o = op(); // 10 s tumbling, 5 s delay
  o.process('r1', 'snmp', [s(5_000, 50)]); // wm 0
  o.process('r1', 'snmp', [s(3_000, 30)]); // older, same window; wm stays 0
  o.process('r1', 'snmp', [s(12_000, 120)]); // wm 7 s: [0,10) still open
  o.process('r1', 'snmp', [s(8_000, 80)]); // out of order but before the watermark passes 10 s
  assert.deepEqual(o.drainResults(), []);
  o.process('r1', 'snmp', [s(16_000, 160)]); // wm 11 s closes [0,10)
  const [r, ...rest] = o.drainResults();
  assert.equal(rest.length, 0);
  assert.equal(r!.kind, 'final');
  assert.deepEqual([r!.start, r!.end, r!.revision], [0, 10_000, 0]);
  const a = r!.agg;
  assert.deepEqual([a.count, a.sum, a.min, a.max], [3, 160, 30, 80]);
  assert.ok(Math.abs(a.avg - 160 / 3) < 1e-12);
  assert.deepEqual([a.first, a.firstTs, a.last, a.lastTs], [30, 3_000, 80, 8_000]);
  assert.equal(a.rate, ((80 - 30) * 1000) / 5_000); // 10 per second
  assert.ok(Math.abs(a.p50 - 50) <= 0.5, `p50 ${a.p50}`);
  // DDSketch answers the LOWER quantile: with 3 values p99 is rank floor(0.99 * 2) = 1, i.e. 50.
  assert.ok(Math.abs(a.p99 - 50) <= 0.5, `p99 ${a.p99}`);
  assert.equal(r!.key, 'if_in_bps{device="r1",ifIndex="1"}');
});

test('late samples: within allowed lateness -> correction record; beyond -> late output, counted', async () => {
  const o = op({ windows: [{ name: '10s', sizeMs: 10_000, hopMs: 10_000, allowedLatenessMs: 20_000 }], defaultDelayMs: 0 });
  o.process('r1', 'snmp', [s(1_000, 1)]);
  o.process('r1', 'snmp', [s(11_000, 2)]); // wm 11 s: [0,10) final with count 1
  let out = o.drainResults();
  assert.deepEqual(out.map((r) => [r.kind, r.start, r.revision, r.agg.count]), [['final', 0, 0, 1]]);
  o.process('r1', 'snmp', [s(9_000, 9)]); // late by 2 s, lateness 20 s: update + correction
  out = o.drainResults();
  assert.deepEqual(out.map((r) => [r.kind, r.start, r.revision, r.agg.count, r.agg.sum, r.agg.last]), [['correction', 0, 1, 2, 10, 9]]);
  const before = await metricValue('noctua_window_late_samples_total', { window: '10s' });
  o.process('r1', 'snmp', [s(31_000, 3)]); // wm 31 s: [10,20) final; [0,10) purged (10 + 20 <= 31)
  out = o.drainResults();
  assert.deepEqual(out.map((r) => [r.kind, r.start]), [['final', 10_000], ['final', 20_000]].slice(0, out.length));
  o.process('r1', 'snmp', [s(5_000, 5)]); // window [0,10) ended 21 s before the watermark: too late
  assert.deepEqual(o.drainResults(), []);
  const late = o.drainLate();
  assert.equal(late.length, 1);
  assert.deepEqual([late[0]!.window, late[0]!.sample.ts, late[0]!.watermark, late[0]!.windowEnd], ['10s', 5_000, 31_000, 10_000]);
  assert.equal(await metricValue('noctua_window_late_samples_total', { window: '10s' }), before + 1);
});

test('a late sample into an emptied window of lateness gets a final, not a bare correction', () => {
  const o = op({ windows: [{ name: '10s', sizeMs: 10_000, hopMs: 10_000, allowedLatenessMs: 30_000 }], defaultDelayMs: 0 });
  o.process('r1', 'snmp', [s(1_000, 1, 'a')]);
  o.process('r1', 'snmp', [s(25_000, 1, 'a')]); // wm 25 s; [0,10) final for a; [10,20) never had data
  o.drainResults();
  o.process('r1', 'snmp', [s(15_000, 7, 'b')]); // b in [10,20): window passed but within lateness
  const out = o.drainResults();
  assert.deepEqual(out.map((r) => [r.kind, r.metric, r.start, r.revision, r.agg.sum]), [['final', 'b', 10_000, 0, 7]]);
});

test('watermark with an idle input: held back until the idle timeout (in event time), then released', () => {
  const o = op({ defaultDelayMs: 0, idleTimeoutMs: 30_000 });
  o.process('p1', 'snmp', [s(2_000, 1, 'm', { device: 'quiet' })]);
  o.process('p0', 'snmp', [s(3_000, 1)]);
  // p0 keeps going; p1 is silent after 2 s and holds the watermark at 2 s.
  for (let t = 13_000; t <= 31_000; t += 10_000) o.process('p0', 'snmp', [s(t, 1)]);
  assert.equal(o.watermark, 2_000);
  assert.deepEqual(o.drainResults(), []);
  // Newest event 41 s: p1's 2 s is more than 30 s behind, p1 is idle and the watermark jumps to 41 s.
  o.process('p0', 'snmp', [s(41_000, 1)]);
  assert.equal(o.watermark, 41_000);
  const out = o.drainResults();
  assert.deepEqual(out.map((r) => `${r.metric}@${r.start}`), ['m@0', 'if_in_bps@0', 'if_in_bps@10000', 'if_in_bps@20000']);
  // p1 comes back: it is active again and, as the slower input, holds the watermark (which never goes back).
  o.process('p1', 'snmp', [s(42_000, 1, 'm', { device: 'quiet' })]);
  o.process('p0', 'snmp', [s(55_000, 1)]);
  assert.equal(o.watermark, 42_000);
});

test('per-source delay: the watermark trails each source by its own allowed delay', () => {
  const o = op({ defaultDelayMs: 1_000, delayMs: { syslog: 30_000 } });
  o.process('a', 'snmp', [s(100_000, 1)]);
  assert.equal(o.watermark, 99_000);
  o.process('b', 'syslog', [s(100_000, 1, 'm', { device: 'b' })]);
  assert.equal(o.watermark, 99_000, 'never goes back');
  o.process('a', 'snmp', [s(120_000, 1)]);
  assert.equal(o.watermark, 99_000, 'held by the syslog input at 100 s - 30 s = 70 s');
  o.process('b', 'syslog', [s(140_000, 1, 'm', { device: 'b' })]);
  assert.equal(o.watermark, 110_000);
});

test('hopping windows: a sample belongs to size/hop windows', () => {
  const o = op({ windows: [{ name: 'h', sizeMs: 10_000, hopMs: 5_000, allowedLatenessMs: 0 }], defaultDelayMs: 0 });
  o.process('r1', 'snmp', [s(7_000, 7)]);
  o.process('r1', 'snmp', [s(30_000, 0)]);
  const out = o.drainResults().filter((r) => r.agg.sum === 7);
  assert.deepEqual(out.map((r) => [r.start, r.end]), [[0, 10_000], [5_000, 15_000]]);
});

test('non-finite samples are rejected and counted without losing the good ones around them', () => {
  const o = op({ defaultDelayMs: 0 });
  o.process('r1', 'snmp', [s(1_000, 1), s(2_000, NaN), s(3_000, Infinity), s(4_000, 4)]);
  o.process('r1', 'snmp', [s(10_000, 0)]);
  const [r] = o.drainResults();
  assert.deepEqual([r!.agg.count, r!.agg.sum], [2, 5]);
});

test('checkpoint mid-stream: restored operator emits exactly what the uninterrupted one does', () => {
  const opts: WindowOptions = {
    windows: [
      { name: '10s', sizeMs: 10_000, hopMs: 10_000, allowedLatenessMs: 15_000 },
      { name: '1m', sizeMs: 60_000, hopMs: 60_000, allowedLatenessMs: 0 },
      { name: 'h', sizeMs: 20_000, hopMs: 5_000, allowedLatenessMs: 5_000 },
    ],
    defaultDelayMs: 3_000,
    idleTimeoutMs: 40_000,
  };
  // A stream with jitter, disorder, late data and two devices; deterministic.
  const msgs: [string, Sample[]][] = [];
  let x = 1;
  for (let i = 0; i < 400; i++) {
    x = (x * 48271) % 2147483647;
    const dev = i % 3 === 0 ? 'r2' : 'r1';
    const jitter = (x % 9000) - 6000;
    const ts = i * 1_000 + jitter + (i % 50 === 0 ? -20_000 : 0);
    msgs.push([dev, [s(Math.max(0, ts), x % 1000, 'm1', { device: dev }), s(Math.max(0, ts), (x % 77) - 30, 'm2', { device: dev })]]);
  }
  const full = new WindowOperator(opts);
  const fullOut: WindowResult[] = [];
  const fullLate: unknown[] = [];
  for (const [d, m] of msgs) {
    full.process(d, 'snmp', m);
    fullOut.push(...full.drainResults());
    fullLate.push(...full.drainLate());
  }
  let cur = new WindowOperator(opts);
  const out: WindowResult[] = [];
  const late: unknown[] = [];
  for (let i = 0; i < msgs.length; i++) {
    if (i % 97 === 13) {
      // through the snapshot container, as the runner checkpoints
      const att: Uint8Array[] = [];
      const packed = packSnapshot(cur.checkpoint((b) => att.push(b) - 1), att);
      const back = unpackSnapshot(packed);
      cur = WindowOperator.fromJSON(opts, back.state as WindowStateJSON, back.attachments);
    }
    cur.process(msgs[i]![0], 'snmp', msgs[i]![1]);
    out.push(...cur.drainResults());
    late.push(...cur.drainLate());
  }
  assert.ok(fullOut.length > 100 && fullOut.some((r) => r.kind === 'correction') && fullLate.length > 0, 'the stream exercises finals, corrections and late data');
  assert.deepEqual(out, fullOut);
  assert.deepEqual(late, fullLate);
});

test('parseDuration understands the config units and rejects junk with the field name', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('2y'), 2 * 31_536_000_000);
  assert.equal(parseDuration(250), 250);
  assert.throws(() => parseDuration('5 minutes', 'rules[0].for'), /rules\[0\]\.for/);
});

test('the packed per-window sketch is bucket for bucket the DDSketch of the same values (mixed signs, zeros, many buckets)', async () => {
  const { DDSketch } = await import('../../processors/sketch.js');
  const o = op({ windows: [{ name: '1h', sizeMs: 3_600_000, hopMs: 3_600_000, allowedLatenessMs: 0 }], defaultDelayMs: 0 });
  const ref = new DDSketch();
  let x = 12345;
  for (let i = 0; i < 3000; i++) {
    x = (x * 48271) % 2147483647;
    const v = i % 50 === 0 ? 0 : ((x % 20001) - 8000) * Math.pow(10, (x % 7) - 2);
    o.process('r1', 'snmp', [s(i * 1000, v)]);
    ref.add(v);
  }
  o.process('r1', 'snmp', [s(3_600_000, 0)]);
  const [r] = o.drainResults();
  assert.deepEqual(r!.sketch, ref.toJSON());
  assert.equal(r!.agg.p95, ref.quantile(0.95));
  assert.ok((r!.sketch.pi?.length ?? 0) > 300, 'exercises many buckets');
});

test('cascaded windows (10s -> 1m -> 5m) hold exactly what each window computed alone holds, late data included', () => {
  const specs = [
    { name: '10s', sizeMs: 10_000, hopMs: 10_000, allowedLatenessMs: 5_000 },
    { name: '1m', sizeMs: 60_000, hopMs: 60_000, allowedLatenessMs: 30_000 },
    { name: '5m', sizeMs: 300_000, hopMs: 300_000, allowedLatenessMs: 120_000 },
  ];
  const base = { defaultDelayMs: 2_000, idleTimeoutMs: 600_000 };
  const cascade = new WindowOperator({ ...base, windows: specs });
  const alone = specs.map((w) => new WindowOperator({ ...base, windows: [w] }));
  let x = 7;
  const got: WindowResult[] = [];
  const want: WindowResult[] = [];
  for (let i = 0; i < 3000; i++) {
    x = (x * 48271) % 2147483647;
    // Mostly in order, some disorder, some samples late by up to 4 minutes (beyond the finer windows' lateness).
    const lateBy = i % 37 === 0 ? (x % 240_000) : i % 5 === 0 ? (x % 8_000) : 0;
    const ts = 1_000_000 + i * 700 - lateBy;
    const msg = [s(ts, (x % 2001) - 1000, 'm', { device: 'r1' }), s(ts, x % 13 === 0 ? 0 : x % 500, 'n', { device: 'r1' })];
    cascade.process('r1', 'snmp', msg);
    got.push(...cascade.drainResults());
    for (const o of alone) {
      o.process('r1', 'snmp', msg);
      want.push(...o.drainResults());
    }
  }
  const id = (r: WindowResult) => `${r.window}|${r.metric}|${r.start}|${r.revision}`;
  const byId = new Map(want.map((r) => [id(r), r]));
  assert.equal(got.length, want.length);
  assert.ok(got.some((r) => r.window === '5m' && r.kind === 'correction'), 'the stream corrects coarse windows too');
  for (const r of got) {
    const w = byId.get(id(r));
    assert.ok(w, `cascade emitted ${id(r)} that the lone windows did not`);
    const { sum, avg, rate, ...exact } = r.agg;
    const { sum: wsum, avg: wavg, rate: wrate, ...wexact } = w.agg;
    assert.deepEqual(exact, wexact, id(r));
    assert.deepEqual(r.sketch, w.sketch, id(r));
    assert.ok(Math.abs(sum - wsum) <= 1e-9 * Math.max(1, Math.abs(wsum)), `${id(r)} sum ${sum} vs ${wsum}`);
    assert.ok(Math.abs(avg - wavg) <= 1e-9 * Math.max(1, Math.abs(wavg)));
    assert.equal(rate === null, wrate === null);
  }
});

test('state written by the previous release (v1, windows computed alone) restores without double counting', () => {
  const windows = [
    { name: '1m', sizeMs: 60_000, hopMs: 60_000, allowedLatenessMs: 0 },
    { name: '5m', sizeMs: 300_000, hopMs: 300_000, allowedLatenessMs: 0 },
  ];
  const o = new WindowOperator({ windows, defaultDelayMs: 0, idleTimeoutMs: 600_000 });
  // At 02:30 of the 5-minute window: v1 held 1m [2,3) open and 5m [0,5) with every sample so far.
  const v1 = {
    v: 1, wm: 150_000, newest: 150_000, channels: [['r1', 150_000, 'snmp']],
    series: [['m{device="r1"}', 'm', { device: 'r1' }]],
    panes: {
      '1m': [[120_000, false, [[0, [1, 5, 5, 5, 150_000, 5, 150_000, 5, 0, { a: 0.01, pi: [81], pc: [1] }]]]]],
      '5m': [[0, false, [[0, [3, 8, 1, 5, 10_000, 1, 150_000, 5, 0, { a: 0.01, pi: [0, 56, 81], pc: [1, 1, 1] }]]]]],
    },
  };
  const r = WindowOperator.fromJSON(o.opts, JSON.parse(JSON.stringify(v1)));
  r.process('r1', 'snmp', [s(170_000, 10, 'm', { device: 'r1' })]);
  r.process('r1', 'snmp', [s(200_000, 20, 'm', { device: 'r1' })]); // closes 1m [2,3)
  r.process('r1', 'snmp', [s(300_000, 1, 'm', { device: 'r1' })]); // closes 1m [3,4) and 5m [0,5)
  const five = r.drainResults().find((x) => x.window === '5m')!;
  assert.deepEqual([five.agg.count, five.agg.sum, five.agg.max, five.agg.last], [5, 38, 20, 20]);
});

test('many series, wide value ranges: cascaded sketches equal lone ones, and a window past 2048 buckets collapses like DDSketch', async () => {
  const { DDSketch } = await import('../../processors/sketch.js');
  const specs = [
    { name: '1m', sizeMs: 60_000, hopMs: 60_000, allowedLatenessMs: 0 },
    { name: '1h', sizeMs: 3_600_000, hopMs: 3_600_000, allowedLatenessMs: 0 },
  ];
  const base = { defaultDelayMs: 0, idleTimeoutMs: 7_200_000 };
  const cascade = new WindowOperator({ ...base, windows: specs });
  const alone = new WindowOperator({ ...base, windows: [specs[1]!] });
  const ref = new DDSketch();
  let x = 99;
  for (let i = 0; i < 3600; i++) {
    const msg: Sample[] = [];
    for (let d = 0; d < 40; d++) {
      x = (x * 48271) % 2147483647;
      if (d === 0) {
        // 3600 distinct buckets of each sign: beyond DDSketch's 2048 per store.
        const v = Math.pow(1.03, (i * 7) % 3600);
        ref.add(v);
        ref.add(-v);
        msg.push(s(i * 1000, v, 'm0'), s(i * 1000, -v, 'm0'));
        continue;
      }
      const v = ((x % 100_001) - 30_000) * Math.pow(10, (x % 9) - 4);
      msg.push(s(i * 1000, v, `m${d}`));
    }
    cascade.process('r1', 'snmp', msg);
    alone.process('r1', 'snmp', msg);
  }
  cascade.process('r1', 'snmp', [s(3_600_000, 0)]);
  alone.process('r1', 'snmp', [s(3_600_000, 0)]);
  const got = cascade.drainResults().filter((r) => r.window === '1h');
  const want = new Map(alone.drainResults().map((r) => [r.metric, r]));
  assert.equal(got.length, 40);
  for (const r of got) assert.deepEqual(r.sketch, want.get(r.metric)!.sketch, r.metric);
  const m0 = got.find((r) => r.metric === 'm0')!;
  assert.ok((m0.sketch.pi?.length ?? 0) === 2048 && (m0.sketch.ni?.length ?? 0) === 2048, 'both signs collapsed to 2048 buckets');
  assert.deepEqual(m0.sketch, ref.toJSON());
});
