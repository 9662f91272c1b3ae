import type { Bus, InMessage } from '../../core/bus.js';
import { encodeBatch } from '../../core/codec.js';
import { TOPICS } from '../../core/types.js';
import { DemoNetwork } from '../../ingest/demo/network.js';
import { replayDemo } from '../../ingest/demo/source.js';
import { compileRules, type RuleSet } from '../../processors/rules.js';
import { decodeRollups } from '../../processors/rollup-codec.js';
import { parse } from 'yaml';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recentWeekdayAt, startProcess, waitFor, type Proc } from '../peers/util.js';

/** Shared by the runner tests on the in-process bus and on Kafka. */

export const DEMO_START = recentWeekdayAt(8);

/** Ten minutes of the demo network (deterministic), as encoded sample batches keyed by device. */
export function demoMessages(minutes = 10, devices = 6, interfaces = 4): { key: string; value: Buffer; timestamp: number }[] {
  const net = new DemoNetwork({ devices, interfaces, seed: 7, incidentEveryMs: 2 * 60_000, rebootEveryMs: 0 });
  const out: { key: string; value: Buffer; timestamp: number }[] = [];
  for (const { batch } of replayDemo(net, DEMO_START, DEMO_START + minutes * 60_000, 5_000)) {
    out.push({ key: batch.device, value: encodeBatch(batch), timestamp: batch.ts });
  }
  return out;
}

/** Rules that fire on the demo network (utilisation incidents, CPU) so alert transitions are exercised. */
export const DEMO_RULES: RuleSet = compileRules(
  parse(`
groups:
  - name: demo
    rules:
      - alert: LinkBusy
        expr: if_in_util_pct > 30
        clear: 25
        for: 30s
        severity: minor
        annotations: { summary: '{{ $labels.device }} {{ $labels.ifName }} at {{ $value | printf "%.0f" }}%' }
      - alert: LinkVeryBusy
        expr: if_out_util_pct > 50
        severity: major
      - alert: CpuHigh
        expr: hrProcessorLoad > 40
        clear: 30
        for: 20s
route: { receiver: noc, group_by: [alertname, device], group_wait: 10s, group_interval: 30s, repeat_interval: 5m }
`),
);

/** Every committed message of a topic, read with a throwaway group until the end offsets are reached. */
export async function readTopic(bus: Bus, topic: string, timeoutMs = 60_000): Promise<InMessage[]> {
  const ends = await bus.endOffsets(topic);
  const consumer = bus.consumer({ groupId: `read-${topic}-${Math.random().toString(36).slice(2)}`, fromBeginning: true, readCommitted: true });
  const got: InMessage[] = [];
  const last = new Map<number, bigint>();
  await consumer.subscribe([topic]);
  await consumer.run({
    async eachBatch(b) {
      for (const m of b.messages) {
        got.push(m);
        last.set(m.partition, BigInt(m.offset));
      }
    },
  });
  try {
    // Kafka's end offsets count transaction markers and aborted records, which are never delivered:
    // done once every partition reached its end, or nothing new arrived for a quiet period.
    let seen = -1;
    let quietSince = Date.now();
    const quietMs = bus.kind === 'kafka' ? 4000 : 300;
    await waitFor(`topic ${topic} read to its end`, () => {
      if (ends.every((e) => BigInt(e.offset) === 0n || (last.get(e.partition) ?? -1n) >= BigInt(e.offset) - 1n)) return true;
      if (got.length !== seen) {
        seen = got.length;
        quietSince = Date.now();
      }
      return Date.now() - quietSince > quietMs;
    }, timeoutMs, 50);
  } finally {
    await consumer.stop();
  }
  got.sort((a, b) => a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
  return got;
}


export async function produceAll(bus: Bus, messages: { key: string; value: Buffer; timestamp: number }[]): Promise<void> {
  const p = await bus.producer();
  for (let i = 0; i < messages.length; i += 500) await p.send(TOPICS.samples, messages.slice(i, i + 500));
  await p.close();
}

/** Waits until the processor group committed the end of every input partition. */
export async function waitCaughtUp(bus: Bus, groupId: string, timeoutMs = 60_000): Promise<void> {
  const ends = await bus.endOffsets(TOPICS.samples);
  await waitFor(`group ${groupId} to catch up`, async () => {
    const c = await bus.committed(groupId, TOPICS.samples);
    return ends.every((e) => BigInt(e.offset) === 0n || BigInt(c.find((x) => x.partition === e.partition)?.offset ?? '-1') >= BigInt(e.offset));
  }, timeoutMs, 100);
}

/** Rows in a canonical form: the content only (offsets and partitions of output topics may differ between runs). */
export function canonical(msgs: InMessage[]): string[] {
  return msgs.map((m) => `${m.key}|${m.value?.toString() ?? ''}`).sort();
}

/**
 * The rollups topic's records, one row each, canonical: a message holds one key's records from one
 * transaction, and transactions (consumed batches) need not fall the same way in two runs.
 */
export function rollupRows(msgs: InMessage[]): string[] {
  return msgs.flatMap((m) => decodeRollups(m.value!).map((r) => `${m.key}|${JSON.stringify(r)}`)).sort();
}

const here = dirname(fileURLToPath(import.meta.url));

/** A `noctua process`-like child (processor-child.ts) on a real broker; see processorReady(). */
export function processorChild(brokers: readonly string[], prefix: string, group: string, partitions: number): Proc {
  return startProcess(process.execPath, [join(here, 'processor-child.js')], {
    env: { ...process.env, NOCTUA_TEST_BROKERS: brokers.join(','), NOCTUA_TEST_PREFIX: prefix, NOCTUA_TEST_GROUP: group, NOCTUA_TEST_PARTITIONS: String(partitions), NOCTUA_LOG_LEVEL: process.env.NOCTUA_TEST_CHILD_LOG ?? 'warn' },
  });
}

/** Waits until the child says it joined and is processing; its output tells why when it died first. */
export async function processorReady(p: Proc): Promise<Proc> {
  await waitFor('processor child ready', () => {
    if (p.child.exitCode !== null) throw new Error(`child exited ${p.child.exitCode}: ${p.output().slice(-3000)}`);
    return p.output().includes('ready');
  }, 60_000, 50);
  return p;
}
