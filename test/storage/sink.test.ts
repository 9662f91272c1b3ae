import { test, before, after } from 'node:test';
import { commandMessages } from '../../processors/commands.js';
import assert from 'node:assert/strict';
import { tempDir, waitFor } from '../peers/util.js';
import { MemoryBus } from '../../core/bus-memory.js';
import { registry } from '../../core/metrics.js';
import { validate, ConfigSchema, type Config } from '../../core/config.js';
import { startSinkRole } from '../../storage/role.js';
import { encodeBatch } from '../../core/codec.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { Sink, type FlushRange } from '../../storage/sink.js';
import { listSeries } from '../../storage/query.js';
import { sampleMessages, produce, waitCommitted, storedPerSeries, compare, event, eventMessage, SAMPLES, EVENTS, type Expected } from './fixtures.js';

let ch: ClickHouse;
const dir = tempDir('sink');
const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY) * DAY;

const sinkCfg = (over: Partial<Config['sink']> = {}): Config['sink'] => ({ groupId: 'sink', maxRows: 100_000, maxDelayMs: 200, retryMinMs: 20, retryMaxMs: 200, ...over });

before(async () => {
  ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 }, dir.path);
  await migrate(ch, { rawTtlDays: 14 });
});

after(async () => {
  await ch.close();
  dir.remove();
});

async function freshTables(): Promise<void> {
  for (const t of ['samples', 'series', 'events', 'sink_ledger']) await ch.client.command({ query: `TRUNCATE TABLE noctua.${t}` });
}

async function newBus(partitions = 4): Promise<MemoryBus> {
  const bus = new MemoryBus({ retainConsumed: 100_000 });
  await bus.ensureTopics([
    { topic: SAMPLES, partitions },
    { topic: EVENTS, partitions },
  ]);
  return bus;
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String((x.labels as Record<string, unknown>)[k]) === val));
  return v?.value ?? 0;
}

test('1,000,000 samples land exactly once (count and sum per series), series inventory filled', async () => {
  await freshTables();
  const bus = await newBus(4);
  const expected: Expected = new Map();
  // 100 devices x 100 series x 100 polls
  const msgs = sampleMessages({ devices: 100, seriesPerDevice: 100, polls: 100, t0: today + 3_600_000 }, expected);
  await produce(bus, SAMPLES, msgs);
  const rowsBefore = await metricValue('noctua_sink_rows_total', { table: 'samples' });
  const sink = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'million' }) });
  const started = performance.now();
  await sink.start();
  await waitCommitted(bus, 'million', SAMPLES, 110_000);
  const secs = (performance.now() - started) / 1000;
  await sink.stop();
  const stored = await storedPerSeries(ch);
  assert.deepEqual(compare(expected, stored), []);
  const total = [...stored.values()].reduce((a, s) => a + s.count, 0);
  assert.equal(total, 1_000_000);
  assert.equal((await metricValue('noctua_sink_rows_total', { table: 'samples' })) - rowsBefore, 1_000_000);
  const inventory = await listSeries(ch, { limit: 20_000 });
  assert.equal(inventory.length, 10_000);
  const one = inventory.find((s) => s.labels.device === 'dev7' && s.labels.ifIndex === '42');
  assert.equal(one?.key, 'ifHCInOctets{device="dev7",ifIndex="42",ifName="Gi0/42"}');
  assert.equal(one?.device, 'dev7');
  // Written when first seen, refreshed hourly: not on every poll.
  assert.ok(one && one.lastSeen >= today + 3_600_000 && one.lastSeen <= today + 3_600_000 + 99_000, `last_seen ${one?.lastSeen}`);
  console.log(`# sink: 1,000,000 samples from the memory bus into the embedded engine in ${secs.toFixed(2)} s (${(1 / secs).toFixed(2)}M rows/s, 4 partitions, maxRows 100000)`);
  await bus.close();
});

test('a sink that dies between insert and commit is replaced without duplicates (ledger ranges re-formed)', async () => {
  await freshTables();
  const bus = await newBus(2);
  const expected: Expected = new Map();
  const first = sampleMessages({ devices: 20, seriesPerDevice: 50, polls: 30, t0: today + 7_200_000 }, expected);
  await produce(bus, SAMPLES, first);
  let flushes = 0;
  let killed: FlushRange | null = null;
  const a: Sink = new Sink({
    bus,
    ch,
    cfg: sinkCfg({ groupId: 'crashy', maxRows: 7_000 }),
    beforeCommit: (r) => {
      // Third flush: rows are in ClickHouse, the offset is not committed, and the process "dies".
      if (++flushes === 3) {
        killed = r;
        void a.kill();
      }
    },
  });
  await a.start();
  await waitFor('the sink to die', () => killed !== null, 60_000);
  await waitFor('the dead sink to leave the group', () => a['consumer']?.assignment().length === 0, 10_000);
  const committedAtDeath = await bus.committed('crashy', SAMPLES);
  // More data arrives while no sink runs.
  const second = sampleMessages({ devices: 20, seriesPerDevice: 50, polls: 10, t0: today + 7_200_000 + 30_000 }, expected);
  await produce(bus, SAMPLES, second);
  const replayedBefore = await metricValue('noctua_sink_replayed_ranges_total', { topic: SAMPLES });
  // The new sink cuts ranges differently (maxRows 3000): only the ledger makes its first range match.
  const b = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'crashy', maxRows: 3_000 }) });
  await b.start();
  await waitCommitted(bus, 'crashy', SAMPLES);
  await b.stop();
  assert.ok(killed, 'the first sink was killed mid-flush');
  const k = killed as FlushRange;
  const c = committedAtDeath.find((x) => x.partition === k.partition);
  assert.ok(Number(c?.offset ?? -1) <= k.first, 'the killed range was not committed');
  assert.ok((await metricValue('noctua_sink_replayed_ranges_total', { topic: SAMPLES })) > replayedBefore, 'the ledger range was re-formed');
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  await bus.close();
});

test('malformed messages are counted and skipped; the good ones around them land', async () => {
  await freshTables();
  const bus = await newBus(1);
  const expected: Expected = new Map();
  const good = sampleMessages({ devices: 3, seriesPerDevice: 4, polls: 2, t0: today + 10_800_000 }, expected);
  const ts0 = today + 10_800_000;
  const outOfRange = encodeBatch({ device: 'dev0', source: 'test', ts: 4e15, samples: [{ metric: 'ifHCInOctets', labels: { device: 'dev0' }, ts: 4e15, value: 1 }] });
  const rejectedBefore = {
    decode: await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'decode' }),
    empty: await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'empty' }),
    ts: await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'ts_out_of_range' }),
    ev: await metricValue('noctua_rejected_messages_total', { topic: EVENTS, reason: 'decode' }),
  };
  await produce(bus, SAMPLES, [
    good[0]!,
    { key: 'x', value: Buffer.from('not a batch') },
    good[1]!,
    { key: 'x', value: null },
    good[2]!,
    { key: 'x', value: good[3]!.value!.subarray(0, 20) },
    { key: 'dev0', value: outOfRange },
    // An operator command for the processors shares the topic: no rows, no rejection.
    ...commandMessages({ type: 'ack', fingerprint: '0123456789abcdef', device: 'dev0', by: 'noc', comment: '', at: ts0 }, 1),
    ...good.slice(3),
  ]);
  const ts = today + 10_800_000;
  await produce(bus, EVENTS, [eventMessage(event(1, ts)), { key: 'x', value: Buffer.from('{"id":1}') }, { key: 'x', value: Buffer.from('{{{') }, eventMessage(event(2, ts + 1))]);
  const sink = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'malformed' }) });
  await sink.start();
  await waitCommitted(bus, 'malformed', SAMPLES);
  await waitCommitted(bus, 'malformed', EVENTS);
  await sink.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  assert.equal((await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'decode' })) - rejectedBefore.decode, 2);
  assert.equal((await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'empty' })) - rejectedBefore.empty, 1);
  assert.equal((await metricValue('noctua_rejected_messages_total', { topic: SAMPLES, reason: 'ts_out_of_range' })) - rejectedBefore.ts, 1);
  assert.equal((await metricValue('noctua_rejected_messages_total', { topic: EVENTS, reason: 'decode' })) - rejectedBefore.ev, 2);
  const events = await (await ch.client.query({ query: 'SELECT id, toUnixTimestamp64Milli(ts) AS ts, message, fields FROM noctua.events ORDER BY id', format: 'JSONEachRow' })).json<{ id: string; ts: number; message: string; fields: string }>();
  assert.deepEqual(events.map((e) => [e.id, Number(e.ts)]), [['ev-1', ts], ['ev-2', ts + 1]]);
  assert.equal(events[0]!.message, event(1, ts).message);
  assert.deepEqual(JSON.parse(events[0]!.fields), event(1, ts).fields);
  await bus.close();
});

test('while inserts fail the sink retries with backoff, pauses at its buffer bound, and catches up without loss or duplicates', async () => {
  await freshTables();
  const bus = await newBus(2);
  const expected: Expected = new Map();
  const retriesBefore = await metricValue('noctua_sink_retries_total', { table: 'samples' });
  // Inserts fail while the table is away (a real engine error, as with a lost server).
  await ch.client.command({ query: 'RENAME TABLE noctua.samples TO noctua.samples_away' });
  const sink = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'outage', maxRows: 500 }), maxBufferedRows: 2_000 });
  await sink.start();
  const msgs = sampleMessages({ devices: 10, seriesPerDevice: 20, polls: 40, t0: today + 14_400_000 }, expected);
  await produce(bus, SAMPLES, msgs, 50);
  await waitFor('insert retries', async () => (await metricValue('noctua_sink_retries_total', { table: 'samples' })) - retriesBefore >= 3, 30_000);
  // Paused at its bound: it holds at most the bound plus one message, and commits nothing.
  await waitFor('the sink to stop consuming', async () => sink['pendingRows'] >= 2_000, 30_000);
  const held = sink['pendingRows'] as number;
  assert.ok(held <= 2_000 + 20, `buffer bounded (${held})`);
  const committed = await bus.committed('outage', SAMPLES);
  assert.ok(committed.every((c) => Number(c.offset) <= 0), 'nothing committed during the outage');
  await ch.client.command({ query: 'RENAME TABLE noctua.samples_away TO noctua.samples' });
  await waitCommitted(bus, 'outage', SAMPLES);
  await sink.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  await bus.close();
});

test('stop() flushes what is buffered and commits it', async () => {
  await freshTables();
  const bus = await newBus(2);
  const expected: Expected = new Map();
  await produce(bus, SAMPLES, sampleMessages({ devices: 5, seriesPerDevice: 10, polls: 5, t0: today + 18_000_000 }, expected));
  // Neither size nor time would flush this soon.
  const sink = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'graceful', maxRows: 1_000_000, maxDelayMs: 600_000 }) });
  await sink.start();
  await waitFor('everything buffered', () => sink['pendingRows'] === 250, 30_000);
  assert.equal((await storedPerSeries(ch)).size, 0);
  await sink.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  const committed = await bus.committed('graceful', SAMPLES);
  const ends = await bus.endOffsets(SAMPLES);
  assert.deepEqual(committed.map((c) => c.offset), ends.map((e) => e.offset));
  await bus.close();
});

test('startSinkRole: opens, migrates, creates the topics and sinks; stop() flushes', async () => {
  await freshTables();
  const cfg = validate(ConfigSchema, { dataDir: dir.path, bus: { partitions: 3 }, sink: { groupId: 'role', maxDelayMs: 100 } }, 'config');
  const bus = new MemoryBus();
  const role = await startSinkRole(cfg, bus);
  assert.equal(role.ch.profile, 'full');
  assert.equal((await bus.endOffsets(SAMPLES)).length, 3);
  const expected: Expected = new Map();
  await produce(bus, SAMPLES, sampleMessages({ devices: 4, seriesPerDevice: 5, polls: 3, t0: today + 21_600_000 }, expected));
  await waitCommitted(bus, 'role', SAMPLES);
  await role.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  await bus.close();
});

test('a second sink joining the group takes partitions over mid-stream without loss or duplicates', async () => {
  await freshTables();
  const bus = await newBus(4);
  const expected: Expected = new Map();
  const cfg = sinkCfg({ groupId: 'pair', maxRows: 1_500, maxDelayMs: 100 });
  const a = new Sink({ bus, ch, cfg });
  await a.start();
  const feed = async (from: number, polls: number) => {
    for (let p = from; p < from + polls; p++) {
      await produce(bus, SAMPLES, sampleMessages({ devices: 12, seriesPerDevice: 25, polls: 1, t0: today + 25_200_000 + p * 1000 }, expected));
    }
  };
  await feed(0, 20);
  const b = new Sink({ bus, ch, cfg });
  await b.start();
  await feed(20, 20);
  await waitFor('both sinks to own partitions', () => a['consumer']!.assignment().length > 0 && b['consumer']!.assignment().length > 0, 10_000);
  await feed(40, 20);
  await a.stop(); // b takes everything back over
  await feed(60, 10);
  await waitCommitted(bus, 'pair', SAMPLES);
  await b.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  await bus.close();
});

test('stop({ timeoutMs }) gives up while inserts fail, commits nothing, and the next sink lands it all', async () => {
  await freshTables();
  const bus = await newBus(2);
  const expected: Expected = new Map();
  await ch.client.command({ query: 'RENAME TABLE noctua.samples TO noctua.samples_away' });
  try {
    const a = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'timeout', maxDelayMs: 50 }) });
    await a.start();
    await produce(bus, SAMPLES, sampleMessages({ devices: 6, seriesPerDevice: 10, polls: 5, t0: today + 28_800_000 }, expected));
    const retriesBefore = await metricValue('noctua_sink_retries_total', { table: 'samples' });
    await waitFor('insert retries', async () => (await metricValue('noctua_sink_retries_total', { table: 'samples' })) > retriesBefore, 30_000);
    await a.stop({ timeoutMs: 300 });
    assert.ok((await bus.committed('timeout', SAMPLES)).every((c) => Number(c.offset) <= 0), 'nothing committed');
  } finally {
    await ch.client.command({ query: 'RENAME TABLE noctua.samples_away TO noctua.samples' });
  }
  const b = new Sink({ bus, ch, cfg: sinkCfg({ groupId: 'timeout' }) });
  await b.start();
  await waitCommitted(bus, 'timeout', SAMPLES);
  await b.stop();
  assert.deepEqual(compare(expected, await storedPerSeries(ch)), []);
  await bus.close();
});
