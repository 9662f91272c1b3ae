/**
 * End-to-end sink throughput: N samples already on the in-process bus (1 message per device poll,
 * 100 samples each), one Sink with the default config, into the embedded engine; timed from start
 * to the last commit. Target: >= 1,000,000 rows/s (the storage brief); reference: PEERS.md's raw
 * TSV insert ceiling of 1.4M rows/s on an idle machine.
 *
 *   npm run bench:sink [-- samples]
 */
import { tempDir } from '../test/peers/util.js';
import { MemoryBus } from '../core/bus-memory.js';
import { TOPICS } from '../core/types.js';
import { openClickHouse } from '../storage/clickhouse.js';
import { migrate } from '../storage/migrations.js';
import { Sink } from '../storage/sink.js';
import { M } from '../core/metrics.js';
import { sampleMessages, produce, waitCommitted } from '../test/storage/fixtures.js';

const N = Number(process.argv[2] ?? 1_000_000);
const MAX_ROWS = Number(process.argv[3] ?? 100_000);

async function main(): Promise<void> {
  const dir = tempDir('bench-sink');
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 }, dir.path);
  await migrate(ch, { rawTtlDays: 14 });
  const bus = new MemoryBus({ retainConsumed: 1_000_000 });
  await bus.ensureTopics([
    { topic: TOPICS.samples, partitions: 6 },
    { topic: TOPICS.events, partitions: 6 },
  ]);
  const devices = 100;
  const polls = Math.ceil(N / (devices * 100));
  const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3_600_000;
  // Like an SNMP poll: 5 interfaces x 20 metrics per device and poll.
  await produce(bus, TOPICS.samples, sampleMessages({ devices, seriesPerDevice: 100, polls, t0, metricsPerSet: 20 }));
  const rows = devices * 100 * polls;
  const sink = new Sink({ bus, ch, cfg: { groupId: 'bench', maxRows: MAX_ROWS, maxDelayMs: 1000, retryMinMs: 200, retryMaxMs: 10_000 } });
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await sink.start();
  await waitCommitted(bus, 'bench', TOPICS.samples, 600_000);
  const secs = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  await sink.stop();
  const rs = await ch.client.query({ query: 'SELECT count() AS c FROM noctua.samples', format: 'JSONEachRow' });
  const landed = Number((await rs.json<{ c: number | string }>())[0]?.c);
  console.log(`sink: ${rows} samples (${devices} devices x 5 interfaces x 20 metrics x ${polls} polls, 6 partitions) bus -> embedded ClickHouse ${ch.version}`);
  console.log(`sink: ${secs.toFixed(2)} s => ${(rows / secs / 1e6).toFixed(2)}M rows/s (landed ${landed}); target >= 1M rows/s, PEERS.md raw TSV ceiling 1.4M rows/s`);
  await bus.close();
  await ch.close();
  dir.remove();
  // CPU seconds (JS and the in-process engine together) say more than wall time on a shared machine.
  console.log(`sink: ${cpuSecs.toFixed(2)} CPU s for ${rows} rows => ${(rows / cpuSecs / 1e6).toFixed(2)}M rows per CPU second (2 cores: up to twice that in wall time)`);
  const h = (await M.sinkInsertSeconds.get()).values;
  const sum = h.find((v) => v.metricName?.endsWith('_sum') && v.labels.table === 'samples')?.value ?? 0;
  const count = h.find((v) => v.metricName?.endsWith('_count') && v.labels.table === 'samples')?.value ?? 0;
  console.log(`sink: ${count} sample inserts (maxRows ${MAX_ROWS}) took ${sum.toFixed(2)} s in ClickHouse => ${(rows / sum / 1e6).toFixed(2)}M rows/s inside the engine`);
  if (landed !== rows) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
