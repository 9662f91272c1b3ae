import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../../core/bus-memory.js';
import { TOPICS } from '../../core/types.js';
import { decodeBatch } from '../../core/codec.js';
import { seriesId, seriesKey } from '../../core/series.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { RateState } from '../../processors/rate.js';
import { startProcessor, processorConfig } from '../../processors/runner.js';
import { startRollupSink } from '../../processors/rollup-sink.js';
import { mergeSketches, type SketchJSON } from '../../processors/sketch.js';
import { tempDir, waitFor } from '../peers/util.js';
import { demoMessages, produceAll, waitCaughtUp } from './harness.js';

/**
 * Rollups in ClickHouse agree with re-aggregating the raw samples: count/sum/min/max per series and
 * minute exactly, 5 min rollups equal the merge of their 1 min rollups, and quantiles from merged
 * sketches stay within the sketch's 1 % bound of the exact quantile of the raw samples.
 */
test('rollups written to ClickHouse agree with re-aggregating the raw samples', { timeout: 120_000 }, async () => {
  const dir = tempDir('rollups-ch');
  const bus = new MemoryBus();
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'full', rawTtlDays: 14 }, dir.path);
  try {
    await migrate(ch, { rawTtlDays: 14 });
    const msgs = demoMessages(16, 3, 2);
    await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 2 }]);
    await produceAll(bus, msgs);
    // Lateness 0 so each window has exactly one row (no corrections), and a short delay.
    const cfg = processorConfig({ windows: [{ name: '1m', size: '1m' }, { name: '5m', size: '5m' }], delay: { default: '1s' }, anomaly: { enabled: false } }); // anomaly scores have no raw counterpart to re-aggregate
    const p = await startProcessor({ bus, config: cfg, partitions: 2 });
    const sink = await startRollupSink({ bus, ch });
    await waitCaughtUp(bus, cfg.groupId);
    await p.stop();

    // The raw samples the windows saw: rate outputs and gauges, as the runner derives them.
    const rate = new RateState();
    const raw: string[] = [];
    const isCounter = /^(ifHC|if)(In|Out)(Octets|UcastPkts|Errors|Discards)$|^sysUpTime$/;
    for (const m of msgs) {
      const b = decodeBatch(m.value);
      for (const s of [...rate.process(b).samples, ...b.samples.filter((x) => !isCounter.test(x.metric))]) {
        raw.push(`${seriesId(seriesKey(s.metric, s.labels))}\t${s.metric}\t${(s.ts / 1000).toFixed(3)}\t${s.value}`);
      }
    }
    await ch.client.command({ query: "CREATE TABLE noctua.raw_check (series UInt64, metric String, ts DateTime64(3, 'UTC'), value Float64) ENGINE = MergeTree ORDER BY (series, ts)" });
    await ch.insertTsv('noctua.raw_check', ['series', 'metric', 'ts', 'value'], Buffer.from(raw.join('\n') + '\n'));
    const q = async <T>(sql: string) => (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<T>());
    // Windows closed by the watermark: those ending before the last minute of data.
    const closedBefore = msgs[msgs.length - 1]!.timestamp - 2 * 60_000;
    await waitFor('rollups in ClickHouse', async () => {
      const [r] = await q<{ n: string }>(`SELECT count() AS n FROM noctua.rollups_1m WHERE toUnixTimestamp64Milli(ts) < ${closedBefore}`);
      return Number(r!.n) > 100;
    }, 60_000, 200);
    await sink.stop();

    const mismatches = await q<Record<string, unknown>>(`
      SELECT r.series, r.ts, r.count, x.n, r.sum, x.s, r.min, x.mn, r.max, x.mx
      FROM (SELECT * FROM noctua.rollups_1m FINAL WHERE toUnixTimestamp64Milli(ts) < ${closedBefore}) AS r
      LEFT JOIN (SELECT series, toStartOfInterval(ts, INTERVAL 1 MINUTE) AS w, count() AS n, sum(value) AS s, min(value) AS mn, max(value) AS mx
                 FROM noctua.raw_check GROUP BY series, w) AS x
      ON r.series = x.series AND toDateTime(r.ts) = x.w
      WHERE r.count != x.n OR abs(r.sum - x.s) > 1e-6 * greatest(1, abs(x.s)) OR r.min != x.mn OR r.max != x.mx`);
    assert.deepEqual(mismatches, [], '1 min rollups equal count/sum/min/max over the raw samples');
    const [{ n: compared }] = await q<{ n: string }>(`SELECT count() AS n FROM noctua.rollups_1m FINAL WHERE toUnixTimestamp64Milli(ts) < ${closedBefore}`);
    assert.ok(Number(compared) > 100, `compared ${compared} rows`);
    // A window the raw data has but the rollups lack would be a silent loss.
    const [{ n: missing }] = await q<{ n: string }>(`
      SELECT count() AS n FROM (SELECT DISTINCT series, toStartOfInterval(ts, INTERVAL 1 MINUTE) AS w FROM noctua.raw_check WHERE toUnixTimestamp64Milli(ts) < ${closedBefore - 60_000}) AS x
      LEFT ANTI JOIN (SELECT series, toDateTime(ts) AS w FROM noctua.rollups_1m FINAL) AS r ON r.series = x.series AND r.w = x.w`);
    assert.equal(Number(missing), 0, 'every raw (series, minute) has its rollup');

    // 5 min rollups re-aggregate from the 1 min ones; quantiles from merged sketches keep the bound.
    const fives = await q<{ series: string; t: string; count: string; sum: number; sketch: string }>(`SELECT toString(series) AS series, toString(ts) AS t, count, sum, sketch FROM noctua.rollups_5m FINAL WHERE toUnixTimestamp64Milli(ts) + 300000 < ${closedBefore} ORDER BY series, ts LIMIT 200`);
    assert.ok(fives.length > 10);
    let checked = 0;
    for (const f of fives) {
      const ones = await q<{ count: string; sum: number; sketch: string }>(`SELECT count, sum, sketch FROM noctua.rollups_1m FINAL WHERE series = ${f.series} AND toStartOfInterval(ts, INTERVAL 5 MINUTE) = toDateTime64('${f.t}', 3, 'UTC')`);
      assert.equal(ones.reduce((s, o) => s + Number(o.count), 0), Number(f.count), `counts of 5 x 1 min = 5 min for series ${f.series} at ${f.t}`);
      const merged = mergeSketches(ones.map((o) => JSON.parse(o.sketch) as SketchJSON));
      assert.deepEqual(merged.toJSON(), JSON.parse(f.sketch), 'merged 1 min sketches = the 5 min sketch');
      const vals = (await q<{ value: number }>(`SELECT value FROM noctua.raw_check WHERE series = ${f.series} AND toStartOfInterval(ts, INTERVAL 5 MINUTE) = toDateTime64('${f.t}', 3, 'UTC') ORDER BY value`)).map((r) => r.value);
      for (const qq of [0.5, 0.95, 0.99]) {
        const exact = vals[Math.floor(qq * (vals.length - 1))]!;
        assert.ok(Math.abs(merged.quantile(qq) - exact) <= 0.01 * Math.abs(exact) + 1e-9, `p${qq * 100} ${merged.quantile(qq)} vs exact ${exact}`);
      }
      checked++;
    }
    assert.ok(checked > 10);
  } finally {
    await bus.close();
    await ch.close();
    dir.remove();
  }
});
