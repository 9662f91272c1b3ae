import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitFor } from '../peers/util.js';
import { startClickHouseServer, clickhouseServerMissing } from '../peers/clickhouse-server.js';
import { MemoryBus } from '../../core/bus-memory.js';
import { registry } from '../../core/metrics.js';
import { openClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { Sink } from '../../storage/sink.js';
import { readSeries, listDevices, runReadOnlySql, SqlQueryError, SqlRejectedError } from '../../storage/query.js';
import { sampleMessages, produce, waitCommitted, storedPerSeries, compare, event, eventMessage, SAMPLES, EVENTS, type Expected } from './fixtures.js';

const missing = clickhouseServerMissing();

async function retries(): Promise<number> {
  const m = await registry.getSingleMetric('noctua_sink_retries_total')?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

test('legacy profile (Debian clickhouse-server 18.16): a 30 s outage while samples keep arriving loses nothing and duplicates nothing', { skip: missing, timeout: 150_000 }, async () => {
  const server = await startClickHouseServer();
  const ch = await openClickHouse({ url: server.url, user: server.user, password: server.password, database: 'noctua', profile: 'auto', rawTtlDays: 14 }, '/nonexistent');
  const bus = new MemoryBus({ retainConsumed: 100_000 });
  try {
    assert.equal(ch.embedded, false);
    assert.equal(ch.profile, 'legacy', `server ${ch.version}`);
    assert.doesNotMatch(ch.where, new RegExp(server.password));
    await migrate(ch, { rawTtlDays: 14 });
    await bus.ensureTopics([
      { topic: SAMPLES, partitions: 3 },
      { topic: EVENTS, partitions: 3 },
    ]);
    const sink = new Sink({ bus, ch, cfg: { groupId: 'legacy', maxRows: 2_000, maxDelayMs: 300, retryMinMs: 200, retryMaxMs: 2_000 }, maxBufferedRows: 1_000_000 });
    await sink.start();

    const expected: Expected = new Map();
    const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3_600_000;
    let poll = 0;
    let events = 0;
    const arrive = async () => {
      // One poll of 10 devices x 20 series every 100 ms, plus an event.
      await produce(bus, SAMPLES, sampleMessages({ devices: 10, seriesPerDevice: 20, polls: 1, t0: t0 + poll * 1000 }, expected));
      await produce(bus, EVENTS, [eventMessage(event(events, t0 + poll * 1000 + 7))]);
      poll++;
      events++;
    };
    const feed = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        await arrive();
        await sleep(100);
      }
    };

    await feed(3_000);
    await waitFor('a first commit', async () => (await bus.committed('legacy', SAMPLES)).some((c) => Number(c.offset) > 0), 20_000);
    const retriesBefore = await retries();
    await server.stop();
    const outageStart = Date.now();
    await feed(5_000);
    const committedDuringOutage = (await bus.committed('legacy', SAMPLES)).map((c) => c.offset);
    await feed(25_000);
    assert.ok(Date.now() - outageStart >= 30_000);
    assert.deepEqual((await bus.committed('legacy', SAMPLES)).map((c) => c.offset), committedDuringOutage, 'nothing committed while the server is down');
    assert.ok((await retries()) - retriesBefore >= 5, 'inserts were retried during the outage');
    await server.start();
    await feed(2_000);
    await waitCommitted(bus, 'legacy', SAMPLES, 60_000);
    await waitCommitted(bus, 'legacy', EVENTS, 60_000);
    await sink.stop();

    // Legacy tables collapse replays on merge: FINAL counts what a reader sees.
    assert.deepEqual(compare(expected, await storedPerSeries(ch, true)), []);
    const total = [...expected.values()].reduce((a, e) => a + e.count, 0);
    assert.ok(total >= 300 * 200, `samples kept arriving (${total})`);
    const ev = await (await ch.client.query({ query: 'SELECT count() AS c, uniqExact(id) AS u FROM noctua.events FINAL', format: 'JSONEachRow' })).json<{ c: string; u: string }>();
    assert.deepEqual([Number(ev[0]!.c), Number(ev[0]!.u)], [events, events]);

    // The query layer reads the legacy schema.
    const r = await readSeries(ch, { metric: 'ifHCInOctets', labels: { device: 'dev3', ifIndex: '7' }, from: t0, to: t0 + poll * 1000 });
    assert.equal(r.series.length, 1);
    assert.equal(r.series[0]!.points.length, poll);
    assert.deepEqual(r.series[0]!.points[2], [t0 + 2000, 7]); // each poll is produced alone: value = ifIndex
    assert.equal(r.series[0]!.labels.ifName, 'Gi0/7');
    const stepped = await readSeries(ch, { metric: 'ifHCInOctets', labels: [{ name: 'device', op: '=~', value: 'dev[12]' }], from: t0, to: t0 + 10_000, step: 5_000 });
    assert.equal(stepped.series.length, 40);
    assert.deepEqual(stepped.series.every((s) => s.points.length === 2), true);
    const devices = await listDevices(ch);
    assert.equal(devices.length, 10);
    assert.equal(devices[0]!.series, 20);

    // Read-only SQL on the server: readonly and limits hold, errors come back as text.
    const limits = { maxExecutionTimeS: 2, maxResultRows: 50, maxMemoryBytes: 100_000_000 };
    const ok = await runReadOnlySql(ch, 'SELECT device, count() AS n FROM noctua.samples FINAL GROUP BY device ORDER BY device', { format: 'json', limits });
    assert.ok(ok.format === 'json' && ok.rows === 10);
    await assert.rejects(runReadOnlySql(ch, 'SELECT number FROM system.numbers LIMIT 1000', { format: 'json', limits }), (e: Error) => e instanceof SqlQueryError && /Limit for result exceeded/.test(e.message));
    await assert.rejects(runReadOnlySql(ch, 'DROP TABLE noctua.samples', { format: 'json', limits }), SqlRejectedError);
    await assert.rejects(runReadOnlySql(ch, 'SELECT nope FROM noctua.samples', { format: 'json', limits }), (e: Error) => e instanceof SqlQueryError && /nope/.test(e.message) && !/\n\s+at /.test(e.message));
    await assert.rejects(runReadOnlySql(ch, "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')", { format: 'json', limits }), (e: Error) => e instanceof SqlQueryError && /readonly/i.test(e.message));
  } finally {
    await bus.close();
    await ch.close();
    await server.close();
  }
});
