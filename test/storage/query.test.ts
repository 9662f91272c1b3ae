import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recentWeekdayAt, tempDir } from '../peers/util.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { SeriesIndex, writeSampleRow, seriesRow, SAMPLE_COLUMNS } from '../../storage/rows.js';
import { TsvBuilder } from '../../storage/tsv.js';
import { readSeries, listSeries, listDevices, chooseSource, RAW_SAMPLES, QueryError, str, type SampleSource } from '../../storage/query.js';

let ch: ClickHouse;
const dir = tempDir('query');
const t0 = recentWeekdayAt(10);

before(async () => {
  ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 3650 }, dir.path);
  await migrate(ch, { rawTtlDays: 3650 });
  // Two routers, two interfaces each, a minute of 10 s samples; one odd label value.
  const idx = new SeriesIndex();
  const body = new TsvBuilder();
  const series = [];
  for (const device of ['r1', 'r2']) {
    for (const ifName of ['Gi0/1', "Gi0/2 'uplink'\t\\"]) {
      const labels = { device, ifName };
      const info = idx.get(device, 'if_in_bps', SeriesIndex.labelPart(labels), labels);
      series.push(seriesRow('full', info, t0 + 50_000));
      for (let k = 0; k < 6; k++) writeSampleRow(body, 'full', info, t0 + k * 10_000, device === 'r1' ? k * 10 : k === 3 ? NaN : k + 0.5);
    }
  }
  await ch.insertTsv('noctua.samples', SAMPLE_COLUMNS.full, body.take(), { insert_deduplication_token: 'query-fixture' });
  await ch.insertRows('noctua.series', series);
});

after(async () => {
  await ch.close();
  dir.remove();
});

test('readSeries returns raw points per series with their labels, in time order', async () => {
  const r = await readSeries(ch, { metric: 'if_in_bps', labels: { device: 'r1', ifName: 'Gi0/1' }, from: t0, to: t0 + 60_000 });
  assert.equal(r.source, 'samples');
  assert.equal(r.series.length, 1);
  const s = r.series[0]!;
  assert.equal(s.key, 'if_in_bps{device="r1",ifName="Gi0/1"}');
  assert.deepEqual(s.labels, { device: 'r1', ifName: 'Gi0/1' });
  assert.deepEqual(s.points, [0, 1, 2, 3, 4, 5].map((k) => [t0 + k * 10_000, k * 10]));
  // `to` is exclusive, `from` inclusive
  const cut = await readSeries(ch, { metric: 'if_in_bps', series: s.id, from: t0 + 10_000, to: t0 + 30_000 });
  assert.deepEqual(cut.series[0]!.points.map((p) => p[0]), [t0 + 10_000, t0 + 20_000]);
});

test('readSeries: matchers, device filter, odd label values, NaN as null, step buckets', async () => {
  const odd = "Gi0/2 'uplink'\t\\";
  const byLabel = await readSeries(ch, { metric: 'if_in_bps', labels: { ifName: odd }, from: t0, to: t0 + 60_000 });
  assert.deepEqual(byLabel.series.map((s) => s.device).sort(), ['r1', 'r2']);
  const r2 = byLabel.series.find((s) => s.device === 'r2')!;
  assert.equal(r2.points[3]![1], null, 'NaN comes back as null');
  assert.equal(r2.points[0]![1], 0.5);
  const re = await readSeries(ch, { metric: 'if_in_bps', labels: [{ name: 'ifName', op: '=~', value: 'Gi0/1' }], from: t0, to: t0 + 60_000 });
  assert.equal(re.series.length, 2);
  const anchored = await readSeries(ch, { metric: 'if_in_bps', labels: [{ name: 'ifName', op: '=~', value: 'Gi0' }], from: t0, to: t0 + 60_000 });
  assert.equal(anchored.series.length, 0, 'regex matchers are anchored');
  const notRe = await readSeries(ch, { metric: 'if_in_bps', labels: [{ name: 'ifName', op: '!~', value: 'Gi0/1' }, { name: 'device', op: '!=', value: 'r2' }], from: t0, to: t0 + 60_000 });
  assert.deepEqual(notRe.series.map((s) => [s.device, s.labels.ifName]), [['r1', odd]]);
  const dev = await readSeries(ch, { metric: 'if_in_bps', device: 'r2', from: t0, to: t0 + 60_000 });
  assert.equal(dev.series.length, 2);
  const stepped = await readSeries(ch, { metric: 'if_in_bps', labels: { device: 'r1', ifName: 'Gi0/1' }, from: t0, to: t0 + 60_000, step: 30_000 });
  assert.deepEqual(stepped.series[0]!.points, [
    [t0, 10],
    [t0 + 30_000, 40],
  ]);
  assert.equal((await readSeries(ch, { metric: 'no_such_metric', from: t0, to: t0 + 1 })).series.length, 0);
});

test('readSeries bounds and validates its input', async () => {
  await assert.rejects(readSeries(ch, { metric: 'if_in_bps', from: t0, to: t0 + 60_000, maxPoints: 5 }), /more than 5 points match/);
  await assert.rejects(readSeries(ch, { metric: 'if_in_bps', from: t0 + 5, to: t0 }), QueryError);
  await assert.rejects(readSeries(ch, { metric: 'if_in_bps', from: t0, to: t0 + 5, step: 0 }), /step must be a positive integer/);
  await assert.rejects(readSeries(ch, { metric: 'if_in_bps', series: '1 OR 1=1', from: t0, to: t0 + 5 }), /decimal UInt64/);
  await assert.rejects(readSeries(ch, { metric: '', from: t0, to: t0 + 5 }), /metric is required/);
  // Literals are escaped, not interpolated: an injection attempt is just a label value that matches nothing.
  const inj = await readSeries(ch, { metric: "if_in_bps' OR 1=1 --", from: t0, to: t0 + 60_000 });
  assert.equal(inj.series.length, 0);
  assert.equal(str("a'b\\c"), "'a\\'b\\\\c'");
});

test('listSeries and listDevices read the inventory', async () => {
  const all = await listSeries(ch);
  assert.equal(all.length, 4);
  assert.ok(all.every((s) => s.metric === 'if_in_bps' && s.lastSeen === t0 + 50_000));
  assert.deepEqual((await listSeries(ch, { device: 'r2', labels: { ifName: 'Gi0/1' } })).map((s) => s.key), ['if_in_bps{device="r2",ifName="Gi0/1"}']);
  assert.equal((await listSeries(ch, { limit: 1 })).length, 1);
  assert.deepEqual(await listDevices(ch), [
    { device: 'r1', series: 2, metrics: 1, lastSeen: t0 + 50_000 },
    { device: 'r2', series: 2, metrics: 1, lastSeen: t0 + 50_000 },
  ]);
});

test('chooseSource picks the coarsest registered source that divides the step (rollup seam)', () => {
  const m1: SampleSource = { ...RAW_SAMPLES, name: 'rollup_1m', resolutionMs: 60_000 };
  const h1: SampleSource = { ...RAW_SAMPLES, name: 'rollup_1h', resolutionMs: 3_600_000 };
  const sources = [RAW_SAMPLES, m1, h1];
  assert.equal(chooseSource({ metric: 'x', from: 0, to: 1 }, sources).name, 'samples');
  assert.equal(chooseSource({ metric: 'x', from: 0, to: 1, step: 30_000 }, sources).name, 'samples');
  assert.equal(chooseSource({ metric: 'x', from: 0, to: 1, step: 300_000 }, sources).name, 'rollup_1m');
  assert.equal(chooseSource({ metric: 'x', from: 0, to: 1, step: 7_200_000 }, sources).name, 'rollup_1h');
});
