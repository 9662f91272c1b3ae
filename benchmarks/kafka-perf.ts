import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaBus } from '../core/bus-kafka.js';
import { MemoryBus } from '../core/bus-memory.js';
import type { Bus } from '../core/bus.js';

/**
 * The reference for every bus figure: Apache Kafka's own ProducerPerformance and
 * ConsumerPerformance (kafka-tools jars, same classpath as the broker) against given brokers.
 * What noctua achieves through kafkajs is read against what the broker does for the JVM client.
 *
 *   npm run bench:kafka                         starts a throwaway broker, prints the reference and
 *                                               the same load through KafkaBus and MemoryBus
 *   node dist/benchmarks/kafka-perf.js --brokers 127.0.0.1:9092 [--records N] [--record-size B]
 */

export interface KafkaPerfOptions {
  readonly brokers: readonly string[];
  /** Records produced, then consumed (default 200k). */
  readonly records?: number;
  /** Bytes per record (default 1024: about one compact sample batch of a small device). */
  readonly recordSize?: number;
  readonly partitions?: number;
  /** Producer acks: 'all' (what the bus uses) or '1'. */
  readonly acks?: 'all' | '1';
  /** Where the Kafka jars are (default: the cache deploy/kafka/fetch.sh fills). */
  readonly libsDir?: string;
  readonly timeoutMs?: number;
}

export interface ProducerPerf {
  readonly records: number;
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  readonly avgLatencyMs: number;
  readonly maxLatencyMs: number;
  readonly p99LatencyMs?: number;
}

export interface ConsumerPerf {
  readonly records: number;
  /** Over the whole run, including the group join. */
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  /** Over fetch time only (excludes the rebalance), the steady-state figure. */
  readonly fetchMsgsPerSec: number;
  readonly fetchMbPerSec: number;
}

export interface KafkaPerfResult {
  readonly kafkaVersion: string;
  readonly recordSize: number;
  readonly producer: ProducerPerf;
  readonly consumer: ConsumerPerf;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

export function kafkaLibs(env: NodeJS.ProcessEnv = process.env): string {
  const version = env.NOCTUA_KAFKA_VERSION ?? '4.4.0';
  const home = env.NOCTUA_KAFKA_HOME ?? join(env.XDG_CACHE_HOME ?? join(env.HOME ?? '/root', '.cache'), 'noctua', `kafka-${version}`);
  return join(home, 'libs');
}

function toolsVersion(libs: string): string {
  const jar = existsSync(libs) ? readdirSync(libs).find((f) => /^kafka-tools-\d.*\.jar$/.test(f)) : undefined;
  if (!jar) throw new Error(`kafka-tools jar missing in ${libs}: run \`bash deploy/kafka/fetch.sh\``);
  return jar.replace(/^kafka-tools-/, '').replace(/\.jar$/, '');
}

/** "100000 records sent, 52938.1 records/sec (51.70 MB/sec), 412.5 ms avg latency, 843.0 ms max latency, 398 ms 50th, 781 ms 95th, 825 ms 99th, ..." */
export function parseProducerPerf(out: string): ProducerPerf {
  const lines = out.split('\n').filter((l) => /records sent,.*records\/sec/.test(l));
  const last = lines.at(-1);
  const m = last?.match(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency(?:.*?, (\d+) ms 99th)?/);
  if (!m) throw new Error(`no final summary in ProducerPerformance output:\n${out.slice(-2000)}`);
  return {
    records: Number(m[1]),
    msgsPerSec: Number(m[2]),
    mbPerSec: Number(m[3]),
    avgLatencyMs: Number(m[4]),
    maxLatencyMs: Number(m[5]),
    ...(m[6] !== undefined ? { p99LatencyMs: Number(m[6]) } : {}),
  };
}

/**
 * Header "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
 * rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec", then one data line.
 */
export function parseConsumerPerf(out: string): ConsumerPerf {
  const lines = out.split('\n').map((l) => l.trim());
  const h = lines.findIndex((l) => l.startsWith('start.time'));
  if (h < 0) throw new Error(`no header in ConsumerPerformance output:\n${out.slice(-2000)}`);
  const names = lines[h]!.split(',').map((s) => s.trim());
  const data = lines.slice(h + 1).find((l) => l.split(',').length === names.length);
  if (!data) throw new Error(`no data line in ConsumerPerformance output:\n${out.slice(-2000)}`);
  const cols = data.split(',').map((s) => s.trim());
  const get = (name: string) => {
    const i = names.indexOf(name);
    const v = i >= 0 ? Number(cols[i]) : NaN;
    if (!Number.isFinite(v)) throw new Error(`ConsumerPerformance output lacks a numeric ${name}: ${data}`);
    return v;
  };
  return {
    records: get('data.consumed.in.nMsg'),
    msgsPerSec: get('nMsg.sec'),
    mbPerSec: get('MB.sec'),
    fetchMsgsPerSec: get('fetch.nMsg.sec'),
    fetchMbPerSec: get('fetch.MB.sec'),
  };
}

function runJava(libs: string, mainClass: string, args: string[], timeoutMs: number): Promise<string> {
  const log4j = join(root, 'deploy/kafka');
  const jvm = ['-Xmx384m', `-Dlog4j.configuration=file:${log4j}/log4j.properties`, `-Dlog4j2.configurationFile=${log4j}/log4j2.properties`, '-cp', `${libs}/*`];
  return new Promise((resolve, reject) => {
    const child = spawn('java', [...jvm, mainClass, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run java for ${mainClass}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${mainClass} ${signal ? `killed by ${signal} (timeout ${timeoutMs} ms)` : `exited with ${code}`}:\n${out.slice(-2000)}`));
    });
  });
}

export async function kafkaPerf(opts: KafkaPerfOptions): Promise<KafkaPerfResult> {
  const libs = opts.libsDir ?? kafkaLibs();
  const version = toolsVersion(libs);
  const records = opts.records ?? 200_000;
  const recordSize = opts.recordSize ?? 1024;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const brokers = opts.brokers.join(',');
  const topic = `noctua.perf.${randomBytes(4).toString('hex')}`;
  const bus = new KafkaBus({ brokers: opts.brokers, clientId: 'noctua-perf' });
  try {
    await bus.ensureTopics([{ topic, partitions: opts.partitions ?? 6 }]);
  } finally {
    await bus.close();
  }
  const prodOut = await runJava(libs, 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic, '--num-records', String(records), '--record-size', String(recordSize), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${brokers}`, `acks=${opts.acks ?? 'all'}`, 'enable.idempotence=true', 'linger.ms=5',
  ], timeoutMs);
  // 3.x only knows --messages; 4.x deprecates it for --num-records.
  const countFlag = Number(version.split('.')[0]) >= 4 ? '--num-records' : '--messages';
  const consOut = await runJava(libs, 'org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', brokers, '--topic', topic, countFlag, String(records), '--group', `perf-${randomBytes(4).toString('hex')}`, '--timeout', String(Math.min(timeoutMs, 60_000)),
  ], timeoutMs);
  return { kafkaVersion: version, recordSize, producer: parseProducerPerf(prodOut), consumer: parseConsumerPerf(consOut) };
}

export interface BusPerf {
  readonly bus: 'memory' | 'kafka';
  readonly records: number;
  readonly producer: { readonly msgsPerSec: number; readonly mbPerSec: number };
  readonly consumer: { readonly msgsPerSec: number; readonly mbPerSec: number };
}

/**
 * The same load through noctua's Bus (kafkajs on Kafka, or the in-process log): records of
 * `recordSize` bytes sent in batches of `batch` (one send per batch, as sources do), then read
 * back by one consumer group. Set beside kafkaPerf() it shows what the client costs.
 */
export async function busPerf(bus: Bus, opts: { records?: number; recordSize?: number; batch?: number; partitions?: number } = {}): Promise<BusPerf> {
  const records = opts.records ?? 200_000;
  const size = opts.recordSize ?? 1024;
  const batch = opts.batch ?? 500;
  const topic = `noctua.busperf.${randomBytes(4).toString('hex')}`;
  await bus.ensureTopics([{ topic, partitions: opts.partitions ?? 6 }]);
  const value = randomBytes(size);
  const p = await bus.producer({ idempotent: true });
  const t0 = performance.now();
  for (let i = 0; i < records; i += batch) {
    const n = Math.min(batch, records - i);
    await p.send(topic, Array.from({ length: n }, (_, j) => ({ key: `device-${(i + j) % 1000}`, value })));
  }
  const produceS = (performance.now() - t0) / 1000;
  await p.close();
  let got = 0;
  let started = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const c = bus.consumer({ groupId: `busperf-${randomBytes(4).toString('hex')}`, fromBeginning: true });
  await c.subscribe([topic]);
  await c.run({
    eachBatch: async (b) => {
      // Timed from the first batch: the group join is not throughput.
      if (started === 0) started = performance.now();
      got += b.messages.length;
      if (got >= records) done();
    },
  });
  await finished;
  const consumeS = (performance.now() - started) / 1000;
  await c.stop();
  const mb = (records * size) / (1024 * 1024);
  return { bus: bus.kind, records, producer: { msgsPerSec: records / produceS, mbPerSec: mb / produceS }, consumer: { msgsPerSec: records / consumeS, mbPerSec: mb / consumeS } };
}

export function formatBusPerf(r: BusPerf): string {
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  return `noctua ${r.bus} bus: producer ${f(r.producer.msgsPerSec)} msg/s (${r.producer.mbPerSec.toFixed(1)} MB/s), consumer ${f(r.consumer.msgsPerSec)} msg/s (${r.consumer.mbPerSec.toFixed(1)} MB/s)`;
}

export function formatKafkaPerf(r: KafkaPerfResult): string {
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  return [
    `Kafka ${r.kafkaVersion} reference (Apache Kafka's perf tools, ${r.recordSize} B records, acks=all):`,
    `  producer: ${f(r.producer.msgsPerSec)} msg/s, ${r.producer.mbPerSec.toFixed(1)} MB/s, avg latency ${r.producer.avgLatencyMs.toFixed(0)} ms${r.producer.p99LatencyMs !== undefined ? `, p99 ${r.producer.p99LatencyMs} ms` : ''}`,
    `  consumer: ${f(r.consumer.fetchMsgsPerSec)} msg/s, ${r.consumer.fetchMbPerSec.toFixed(1)} MB/s while fetching (${f(r.consumer.msgsPerSec)} msg/s including the group join)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const records = arg('--records') ? Number(arg('--records')) : undefined;
  const recordSize = arg('--record-size') ? Number(arg('--record-size')) : undefined;
  const given = arg('--brokers') ?? process.env.KAFKA_BROKERS;
  if (given) {
    const r = await kafkaPerf({ brokers: given.split(','), records, recordSize });
    console.log(formatKafkaPerf(r));
    console.log(JSON.stringify(r));
    return;
  }
  // No broker given: a throwaway one, as the tests start it.
  const { startKafka } = await import('../test/peers/kafka.js');
  const peer = await startKafka();
  try {
    const r = await kafkaPerf({ brokers: peer.brokers, records, recordSize });
    console.log(formatKafkaPerf(r));
    const kafkaBus = new KafkaBus({ brokers: peer.brokers, clientId: 'noctua-busperf' });
    const viaKafka = await busPerf(kafkaBus, { records, recordSize }).finally(() => kafkaBus.close());
    console.log(formatBusPerf(viaKafka));
    const memory = new MemoryBus({ retainConsumed: 0 });
    const viaMemory = await busPerf(memory, { records, recordSize }).finally(() => memory.close());
    console.log(formatBusPerf(viaMemory));
    console.log(JSON.stringify({ reference: r, kafkaBus: viaKafka, memoryBus: viaMemory }));
  } finally {
    await peer.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
