import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recentWeekdayAt, tempDir } from '../peers/util.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { seriesId, seriesKey } from '../../core/series.js';
import { readSeries } from '../../storage/query.js';

const dt = (t: number) => new Date(t).toISOString().slice(0, 23).replace('T', ' ');

test('a stepped read answers from the 1-minute rollups, and the newest buckets (not rolled up yet) from raw samples', async () => {
  const dir = tempDir('rollup-read');
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 3650 }, dir.path);
  try {
    await migrate(ch, { rawTtlDays: 3650 });
    const t0 = recentWeekdayAt(10);
    const labels = { device: 'r1', ifIndex: '1' };
    const key = seriesKey('if_in_bps', labels);
    const id = seriesId(key);
    await ch.insertRows('noctua.series', [{ series: id, metric: 'if_in_bps', device: 'r1', labels, key, last_seen: dt(t0) }]);
    // Minutes 0-4 rolled up (minute 2 corrected once: the higher revision wins), minutes 5-6 only raw.
    const roll = (m: number, sum: number, revision = 0) => ({ metric: 'if_in_bps', series: id, device: 'r1', ts: dt(t0 + m * 60_000), count: 6, sum, min: sum / 6 - 5, max: sum / 6 + 5, first: 0, last: 0, first_ts: dt(t0), last_ts: dt(t0), p50: 0, p95: 0, p99: 0, sketch: '{}', revision });
    await ch.insertRows('noctua.rollups_1m', [roll(0, 60), roll(1, 120), roll(2, 999), roll(2, 180, 1), roll(3, 240), roll(4, 300)]);
    const raw = [];
    for (let m = 0; m < 7; m++) for (let k = 0; k < 6; k++) raw.push({ metric: 'if_in_bps', series: id, device: 'r1', ts: dt(t0 + m * 60_000 + k * 10_000), value: m === 0 ? 1 : 1000 + m });
    await ch.insertRows('noctua.samples', raw);
    const r = await readSeries(ch, { metric: 'if_in_bps', device: 'r1', from: t0, to: t0 + 7 * 60_000, step: 60_000 });
    assert.equal(r.source, 'rollups_1m');
    assert.deepEqual(r.series[0]!.points, [
      [t0, 10], [t0 + 60_000, 20], [t0 + 120_000, 30], [t0 + 180_000, 40], [t0 + 240_000, 50],
      [t0 + 300_000, 1005], [t0 + 360_000, 1006],
    ]);
    assert.deepEqual(r.series[0]!.labels, labels);
    // Five-minute steps re-aggregate the 1-minute rollups exactly (sum/count, not an average of averages).
    const five = await readSeries(ch, { metric: 'if_in_bps', device: 'r1', from: t0, to: t0 + 5 * 60_000, step: 300_000 });
    assert.deepEqual(five.series[0]!.points, [[t0, 30]]);
    // agg: the highest (lowest) sample a point stands for, from the rollups' max (min) and the raw samples alike
    const hi = await readSeries(ch, { metric: 'if_in_bps', device: 'r1', from: t0, to: t0 + 7 * 60_000, step: 60_000, agg: 'max' });
    assert.deepEqual(hi.series[0]!.points.map((p) => p[1]), [15, 25, 35, 45, 55, 1005, 1006]);
    const lo5 = await readSeries(ch, { metric: 'if_in_bps', device: 'r1', from: t0, to: t0 + 5 * 60_000, step: 300_000, agg: 'min' });
    assert.deepEqual(lo5.series[0]!.points, [[t0, 5]]);
    await assert.rejects(readSeries(ch, { metric: 'if_in_bps', from: t0, to: t0 + 60_000, step: 60_000, agg: 'median' as 'max' }), /agg must be one of avg, max, min/);
  } finally {
    await ch.close();
    dir.remove();
  }
});
