/**
 * End-to-end pipeline throughput, memory and lag: batches of samples (one per poll of a 48-port
 * switch, 20 IF-MIB columns) -> bus -> sink -> ClickHouse, until every row is queryable.
 *
 *   npm run bench:pipeline [-- --embedded-samples 5000000 --kafka-samples 3000000 --rate 300000 --rate-seconds 20]
 *
 * Modes, in one run:
 *   embedded   in-process bus + embedded ClickHouse, producer in the same process (the `npm start` shape)
 *   kafka      a real broker (test/peers/kafka.ts), producer in a worker thread, sink in this thread
 *   kafka-rate the same at a fixed offered rate; lag = time from a sample's ts (its production time)
 *              until a query sees it (sampled every 100 ms)
 * References measured in the same run: Apache Kafka's own producer/consumer perf tools on the same
 * broker, and ClickHouse's own insert rate for the same rows (INSERT ... SELECT from numbers()).
 * Last line: {"bench":"pipeline",...}.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { availableParallelism, loadavg } from 'node:os';
import type { Bus } from '../core/bus.js';
import { createBus } from '../core/bus-factory.js';
import { loadConfig, type Config } from '../core/config.js';
import { encodeBatch } from '../core/codec.js';
import { createLogger } from '../core/log.js';
import { TOPICS, type Sample, type SampleBatch } from '../core/types.js';
import type { ClickHouse } from '../storage/clickhouse.js';
import { tempDir, sleep } from '../test/peers/util.js';

/**
 * The storage side is loaded in the main thread only: the producer worker imports this file too,
 * and a second thread loading chdb's native addon while the main thread runs queries froze the
 * main thread's event loop (then crashed with SIGSEGV minutes later) with chdb 3.4.
 */
async function mainModules() {
  const [clickhouse, migrations, sink, runtime] = await Promise.all([
    import('../storage/clickhouse.js'),
    import('../storage/migrations.js'),
    import('../storage/sink.js'),
    import('../cli/runtime.js'),
  ]);
  return { openClickHouse: clickhouse.openClickHouse, migrate: migrations.migrate, Sink: sink.Sink, topicSpecs: runtime.topicSpecs };
}
let S: Awaited<ReturnType<typeof mainModules>>;

const COLUMNS = ['ifHCInOctets', 'ifHCOutOctets', 'ifHCInUcastPkts', 'ifHCOutUcastPkts', 'ifHCInMulticastPkts', 'ifHCOutMulticastPkts',
  'ifHCInBroadcastPkts', 'ifHCOutBroadcastPkts', 'ifInErrors', 'ifOutErrors', 'ifInDiscards', 'ifOutDiscards', 'ifOperStatus',
  'ifAdminStatus', 'ifHighSpeed', 'ifMtu', 'ifLastChange', 'ifInUnknownProtos', 'ifOutQLen', 'ifPromiscuousMode'];
const PORTS = 48;
const PER_BATCH = PORTS * COLUMNS.length;
/** Devices cycled through (--devices): DEVICES x 960 distinct series; each is new to the sink on its first poll. */
let DEVICES = 500;

/** Label objects per device, made once: a poller reuses them poll after poll. */
const labelCache = new Map<number, Record<string, string>[]>();
function poll(d: number, ts: number, seq: number): SampleBatch {
  const device = `sw-${d}`;
  let ls = labelCache.get(d);
  if (!ls) labelCache.set(d, (ls = Array.from({ length: PORTS }, (_, i) => ({ device, ifIndex: String(i + 1), ifName: `Gi1/0/${i + 1}` }))));
  const samples: Sample[] = new Array(PER_BATCH);
  let k = 0;
  for (let i = 0; i < PORTS; i++) for (let c = 0; c < COLUMNS.length; c++) samples[k++] = { metric: COLUMNS[c]!, labels: ls[i]!, ts, value: seq * 1000 + k };
  return { device, source: 'bench', ts, samples };
}

interface ProduceSpec {
  total: number;
  /** Samples per second offered; 0 = as fast as the bus takes them. */
  rate: number;
  devices: number;
}

/** Messages produced but not yet committed by `group`: the in-process bus never pushes back, so
 *  the benchmark bounds it the way real pollers are bounded by their interval. */
async function backlog(bus: Bus, group: string): Promise<number> {
  const [end, done] = await Promise.all([bus.endOffsets(TOPICS.samples), bus.committed(group, TOPICS.samples)]);
  const at = new Map(done.map((o) => [o.partition, Number(o.offset)]));
  return end.reduce((n, o) => n + Number(o.offset) - (at.get(o.partition) ?? 0), 0);
}
const MAX_BACKLOG_MESSAGES = 2_000;

/** Produces `total` samples; ts = wall time at production, so lag can be read back from ClickHouse. */
async function produce(bus: Bus, spec: ProduceSpec, onProgress?: (samples: number) => void, group?: string): Promise<void> {
  const producer = await bus.producer({ idempotent: true });
  const batches = Math.ceil(spec.total / PER_BATCH);
  const started = Date.now();
  const inflight: Promise<void>[] = [];
  for (let b = 0; b < batches; b++) {
    if (spec.rate > 0) {
      const due = started + (b * PER_BATCH * 1000) / spec.rate;
      const wait = due - Date.now();
      if (wait > 1) await sleep(wait);
    }
    const batch = poll(b % spec.devices, Date.now(), b);
    inflight.push(producer.send(TOPICS.samples, [{ key: batch.device, value: encodeBatch(batch), timestamp: batch.ts }]));
    if (inflight.length >= 64) {
      await Promise.all(inflight.splice(0));
      // The in-process bus resolves sends as microtasks: without a macrotask turn the sink (timers,
      // engine callbacks) would only start once everything was produced.
      await new Promise<void>((r) => setImmediate(r));
      if (group) while ((await backlog(bus, group)) > MAX_BACKLOG_MESSAGES) await sleep(5);
    }
    onProgress?.((b + 1) * PER_BATCH);
  }
  await Promise.all(inflight);
  await producer.close();
}

async function count(ch: ClickHouse): Promise<number> {
  const r = (await (await ch.client.query({ query: `SELECT count() AS n FROM ${ch.database}.samples`, format: 'JSONEachRow' })).json()) as { n: string }[];
  return Number(r[0]!.n);
}

async function maxTs(ch: ClickHouse): Promise<number> {
  const r = (await (await ch.client.query({ query: `SELECT toUnixTimestamp64Milli(max(ts)) AS t FROM ${ch.database}.samples`, format: 'JSONEachRow' })).json()) as { t: string }[];
  return Number(r[0]!.t);
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

interface RunResult {
  samples: number;
  seconds: number;
  samplesPerSec: number;
  peakRssMB: number;
  lagP50Ms?: number;
  lagP99Ms?: number;
}

async function runSinkPipeline(name: string, cfg: Config, bus: Bus, spec: ProduceSpec, producerIn: 'thread' | 'worker'): Promise<RunResult> {
  const dir = tempDir(`bench-${name}`);
  const ch = await S.openClickHouse(cfg.clickhouse, dir.path);
  await S.migrate(ch, cfg.clickhouse);
  console.error(`  ${name}: engine open, starting the sink`);
  const log = createLogger('warn', 'bench');
  const groupId = `bench-${name}-${Date.now()}`;
  // The sink reads a new group from the beginning; earlier phases' messages on the same broker are
  // not this phase's load, so the group starts at the current end of the topic.
  const skip = bus.consumer({ groupId });
  await skip.commit(await bus.endOffsets(TOPICS.samples));
  await skip.stop();
  const sink = new S.Sink({ bus, ch, cfg: { ...cfg.sink, maxRows: 200_000, maxDelayMs: 500, groupId }, log });
  await sink.start();
  console.error(`  ${name}: sink started, producing`);
  let peakRss = 0;
  const lags: number[] = [];
  let producing = true;
  let producedSamples = 0;
  const memTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const started = Date.now();
  const expected = Math.ceil(spec.total / PER_BATCH) * PER_BATCH;
  const progress = setInterval(() => {
    void count(ch).then(
      (n) => console.error(`  ${name}: ${producedSamples.toLocaleString('en-US')} produced, ${n.toLocaleString('en-US')} of ${expected.toLocaleString('en-US')} queryable after ${((Date.now() - started) / 1000).toFixed(0)} s`),
      () => undefined,
    );
  }, 5000);
  // Lag: each 100 ms while production runs, the freshest queryable sample's ts against the clock.
  // Between flushes this saw-tooths up to the lag of the oldest sample of the next flush, so its
  // high percentiles bound the per-sample lag.
  const lagLoop = (async () => {
    if (spec.rate === 0) return;
    while (producing) {
      const t = await maxTs(ch).catch(() => 0);
      if (t > 0 && producing) lags.push(Date.now() - t);
      await sleep(100);
    }
  })();
  try {
    if (producerIn === 'worker') {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { brokers: cfg.bus.brokers, spec } });
      await new Promise<void>((resolve, reject) => {
        w.on('message', (m: { produced?: number; done?: boolean; error?: string }) => {
          if (m.produced !== undefined) producedSamples = m.produced;
          if (m.error) reject(new Error(`${name}: producer worker: ${m.error}`));
          if (m.done) resolve();
        });
        w.on('error', reject);
        w.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${name}: producer worker exited ${c}`))));
      });
    } else await produce(bus, spec, (n) => (producedSamples = n), groupId);
    producing = false;
    for (;;) {
      const n = await count(ch);
      if (n >= expected) {
        if (n !== expected) throw new Error(`${name}: ${n} rows for ${expected} produced`);
        break;
      }
      if (Date.now() - started > 600_000) throw new Error(`${name}: only ${n} of ${expected} rows after 10 min`);
      await sleep(50);
    }
  } finally {
    producing = false;
    clearInterval(progress);
  }
  const seconds = (Date.now() - started) / 1000;
  await lagLoop;
  clearInterval(memTimer);
  await sink.stop();
  await ch.close();
  dir.remove();
  // The lag samples taken during the steady part (after the first second) describe the pipeline.
  const steady = lags.slice(10);
  const r: RunResult = { samples: expected, seconds: +seconds.toFixed(2), samplesPerSec: Math.round(expected / seconds), peakRssMB: Math.round(peakRss / 2 ** 20) };
  if (spec.rate > 0) {
    r.lagP50Ms = pct(steady, 50);
    r.lagP99Ms = pct(steady, 99);
  }
  console.log(`${name.padEnd(12)} ${r.samplesPerSec.toLocaleString('en-US').padStart(11)} samples/s  ${expected.toLocaleString('en-US')} samples in ${r.seconds} s  peak RSS ${r.peakRssMB} MB${r.lagP99Ms !== undefined ? `  lag p50 ${r.lagP50Ms} ms p99 ${r.lagP99Ms} ms` : ''}`);
  return r;
}

/** ClickHouse's own ceiling for the same rows: INSERT ... SELECT from numbers() into the samples table. */
async function clickhouseReference(cfg: Config, rows: number): Promise<number> {
  const dir = tempDir('bench-chref');
  const ch = await S.openClickHouse(cfg.clickhouse, dir.path);
  await S.migrate(ch, cfg.clickhouse);
  const t = Date.now();
  await ch.client.command({
    query: `INSERT INTO ${ch.database}.samples (metric, series, device, ts, value) SELECT ['ifHCInOctets','ifHCOutOctets','ifInErrors','ifOperStatus'][number % 4 + 1], cityHash64(number % 24000), concat('sw-', toString(number % 500)), fromUnixTimestamp64Milli(toInt64(1790000000000 + intDiv(number, 24000) * 1000)), toFloat64(number) FROM numbers(${rows})`,
  });
  const perSec = rows / ((Date.now() - t) / 1000);
  await ch.close();
  dir.remove();
  console.log(`${'clickhouse'.padEnd(12)} ${Math.round(perSec).toLocaleString('en-US').padStart(11)} rows/s     INSERT ... SELECT FROM numbers(${rows}) (the engine's own ceiling, reference)`);
  return Math.round(perSec);
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a non-negative number, got ${JSON.stringify(process.argv[i + 1])}`);
  return v;
}

const PHASES = ['clickhouse', 'embedded', 'kafka', 'kafka-rate', 'kafka-tools'] as const;
type Phase = (typeof PHASES)[number];

/** `--only embedded,kafka` runs a subset (profiling, debugging); default all. */
function phases(): Set<Phase> {
  const i = process.argv.indexOf('--only');
  if (i < 0) return new Set(PHASES);
  const asked = (process.argv[i + 1] ?? '').split(',').filter(Boolean);
  for (const p of asked) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${JSON.stringify(p)} (phases: ${PHASES.join(', ')})`);
  return new Set(asked as Phase[]);
}

async function retry<T>(what: string, attempts: number, op: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op();
    } catch (err) {
      if (i >= attempts) throw err;
      console.error(`  ${what}: attempt ${i} failed (${(err as Error).message.split('\n')[0]}), retrying`);
      await sleep(2000);
    }
  }
}

const ratio = (a: number | undefined, b: number | undefined) => (a && b ? +(a / b).toFixed(3) : undefined);

async function main(): Promise<void> {
  const embeddedSamples = arg('embedded-samples', 2_000_000);
  const kafkaSamples = arg('kafka-samples', 1_000_000);
  const rate = arg('rate', 300_000);
  const rateSeconds = arg('rate-seconds', 10);
  DEVICES = arg('devices', 500);
  const run = phases();
  S = await mainModules();
  const base = loadConfig({ env: {} });
  const out: Record<string, unknown> = { bench: 'pipeline', samplesPerBatch: PER_BATCH, devices: DEVICES, series: DEVICES * PER_BATCH, cores: availableParallelism(), loadAvg1m: +loadavg()[0]!.toFixed(2) };

  let chRef: number | undefined;
  if (run.has('clickhouse')) {
    console.log('reference: ClickHouse insert ceiling');
    out.clickhouseInsertSelectRowsPerSec = chRef = await clickhouseReference(base, embeddedSamples);
  }

  if (run.has('embedded')) {
    console.log('embedded: in-process bus -> sink -> embedded ClickHouse');
    const mem = createBus(base.bus);
    await mem.ensureTopics(S.topicSpecs(base));
    const emb = await runSinkPipeline('embedded', base, mem, { total: embeddedSamples, rate: 0, devices: DEVICES }, 'thread');
    await mem.close();
    out.embedded = emb;
    out.embeddedRatioToClickhouse = ratio(emb.samplesPerSec, chRef);
  }

  if (run.has('kafka') || run.has('kafka-rate') || run.has('kafka-tools')) {
    const { startKafka } = await import('../test/peers/kafka.js');
    const { kafkaPerf } = await import('./kafka-perf.js');
    const kafka = await startKafka();
    try {
      const kcfg = loadConfig({ env: { KAFKA_BROKERS: kafka.brokers.join(',') } });
      const bus = createBus(kcfg.bus);
      try {
        await bus.ensureTopics(S.topicSpecs(kcfg));
        if (run.has('kafka')) {
          console.log('kafka: worker-thread producer -> broker -> sink -> embedded ClickHouse');
          out.kafka = await runSinkPipeline('kafka', kcfg, bus, { total: kafkaSamples, rate: 0, devices: DEVICES }, 'worker');
        }
        if (run.has('kafka-rate')) {
          console.log(`kafka-rate: offered ${rate.toLocaleString('en-US')} samples/s for ${rateSeconds} s`);
          out.kafkaRate = await runSinkPipeline('kafka-rate', kcfg, bus, { total: rate * rateSeconds, rate, devices: DEVICES }, 'worker');
        }
      } finally {
        await bus.close();
      }
      if (run.has('kafka-tools')) {
        console.log("reference: Apache Kafka's own perf tools on the same broker (same message size)");
        const bytes = encodeBatch(poll(0, Date.now(), 0)).length;
        // kafkaPerf creates its topic through KafkaBus.ensureTopics, which on a freshly started broker
        // sometimes fails with a retriable UNKNOWN_TOPIC_OR_PARTITION: try again a few times.
        const perf = await retry('kafka perf tools', 3, () => kafkaPerf({ brokers: kafka.brokers, records: Math.max(10_000, Math.ceil(kafkaSamples / PER_BATCH)), recordSize: bytes }));
        out.kafkaPerf = perf;
        const toolProducer = Math.round(perf.producer.msgsPerSec * PER_BATCH);
        const toolConsumer = Math.round(perf.consumer.fetchMsgsPerSec * PER_BATCH);
        out.kafkaToolsSamplesPerSec = { producer: toolProducer, consumerFetch: toolConsumer };
        console.log(
          `kafka tools  producer ${Math.round(perf.producer.msgsPerSec)} msg/s (${perf.producer.mbPerSec.toFixed(1)} MB/s) = ${toolProducer.toLocaleString('en-US')} samples/s; ` +
            `consumer ${Math.round(perf.consumer.fetchMsgsPerSec)} msg/s over fetch time (${perf.consumer.fetchMbPerSec.toFixed(1)} MB/s) = ${toolConsumer.toLocaleString('en-US')} samples/s; message ${bytes} B = ${PER_BATCH} samples`,
        );
        const kmax = out.kafka as RunResult | undefined;
        out.kafkaRatioToProducerPerfTool = ratio(kmax?.samplesPerSec, toolProducer);
        out.kafkaRatioToConsumerPerfTool = ratio(kmax?.samplesPerSec, toolConsumer);
      }
      out.kafkaRatioToClickhouse = ratio((out.kafka as RunResult | undefined)?.samplesPerSec, chRef);
    } finally {
      await kafka.stop();
    }
  }
  out.targets = { kafkaSamplesPerSec: 300_000, kafkaLagP99Ms: 2000, embeddedSamplesPerSec: 1_000_000 };
  const shown = Object.entries(out).filter(([k, v]) => k.includes('Ratio') && v !== undefined);
  if (shown.length) console.log(`ratios       ${shown.map(([k, v]) => `${k}=${v}`).join('  ')}`);
  console.log(JSON.stringify(out));
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  const { brokers, spec } = workerData as { brokers: string[]; spec: ProduceSpec };
  const bus = createBus({ kind: 'kafka', brokers, clientId: 'bench-producer', partitions: 6, replicationFactor: 1 });
  let last = 0;
  produce(bus, spec, (n) => {
    if (n - last >= 64 * PER_BATCH) parentPort!.postMessage({ produced: (last = n) });
  })
    .then(() => bus.close())
    .then(
      () => parentPort!.postMessage({ produced: spec.total, done: true }),
      (err: unknown) => parentPort!.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
}
