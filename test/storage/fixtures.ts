import type { Bus, OutMessage } from '../../core/bus.js';
import type { SampleBatch, Labels, NetEvent } from '../../core/types.js';
import { TOPICS } from '../../core/types.js';
import { encodeBatch, encodeEvent } from '../../core/codec.js';
import { seriesId, seriesKey } from '../../core/series.js';
import type { ClickHouse } from '../../storage/clickhouse.js';
import { waitFor } from '../peers/util.js';

/** Expected per-series count and sum, keyed by series id. */
export type Expected = Map<string, { count: number; sum: number }>;

export interface Workload {
  readonly devices: number;
  readonly seriesPerDevice: number;
  readonly polls: number;
  /** Epoch ms of the first poll (keep a workload inside one or two days: one partition per day). */
  readonly t0: number;
  readonly intervalMs?: number;
  /** Metrics per label set (an SNMP poll reads ~20 per interface); default 1. */
  readonly metricsPerSet?: number;
}

/**
 * Poll batches, one message per device and poll, keyed by device. Values are integers so that
 * sums compare exactly whatever order the engine adds them in.
 */
export function sampleMessages(w: Workload, expected: Expected = new Map()): OutMessage[] {
  const out: OutMessage[] = [];
  const per = w.metricsPerSet ?? 1;
  const metrics = Array.from({ length: per }, (_, m) => (m === 0 ? 'ifHCInOctets' : `metric${m}`));
  // Series i of a device: label set floor(i / per), metric i % per.
  const labelSets: Labels[][] = [];
  for (let d = 0; d < w.devices; d++) {
    const sets: Labels[] = [];
    for (let i = 0; i < Math.ceil(w.seriesPerDevice / per); i++) sets.push({ device: `dev${d}`, ifIndex: String(i), ifName: `Gi0/${i}` });
    labelSets.push(sets);
  }
  const seriesOf = (d: number, i: number) => ({ metric: metrics[i % per]!, labels: labelSets[d]![Math.floor(i / per)]! });
  const ids = labelSets.map((_, d) => Array.from({ length: w.seriesPerDevice }, (_, i) => seriesId(seriesKey(seriesOf(d, i).metric, seriesOf(d, i).labels))));
  const step = w.intervalMs ?? 1000;
  for (let p = 0; p < w.polls; p++) {
    const ts = w.t0 + p * step;
    for (let d = 0; d < w.devices; d++) {
      const samples = Array.from({ length: w.seriesPerDevice }, (_, i) => ({ ...seriesOf(d, i), ts, value: p * 1000 + i }));
      const batch: SampleBatch = { device: `dev${d}`, source: 'test', ts, samples };
      out.push({ key: `dev${d}`, value: encodeBatch(batch) });
      for (let i = 0; i < samples.length; i++) {
        const id = ids[d]![i]!;
        const e = expected.get(id) ?? { count: 0, sum: 0 };
        e.count++;
        e.sum += samples[i]!.value;
        expected.set(id, e);
      }
    }
  }
  return out;
}

export function event(i: number, ts: number): NetEvent {
  return { id: `ev-${i}`, ts, source: 'syslog', kind: 'link', severity: 'major', device: `dev${i % 3}`, message: `Gi0/${i} down\ttab "quoted" \\ back`, fields: { i, text: 'a\nb' } };
}

export function eventMessage(e: NetEvent): OutMessage {
  return { key: e.device, value: encodeEvent(e) };
}

export async function produce(bus: Bus, topic: string, messages: readonly OutMessage[], chunk = 1000): Promise<void> {
  const p = await bus.producer();
  for (let i = 0; i < messages.length; i += chunk) await p.send(topic, messages.slice(i, i + chunk));
  await p.close();
}

/** Waits until the group committed every partition of `topic` up to its end offset. */
export async function waitCommitted(bus: Bus, group: string, topic: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `group ${group} to commit ${topic} to its end`,
    async () => {
      const [c, e] = await Promise.all([bus.committed(group, topic), bus.endOffsets(topic)]);
      return e.every((x) => Number(c.find((y) => y.partition === x.partition)?.offset ?? -1) === Number(x.offset) || Number(x.offset) === 0);
    },
    timeoutMs,
    50,
  );
}

/** Per-series count and sum as stored (FINAL collapses a legacy table's replays). */
export async function storedPerSeries(ch: ClickHouse, final = false): Promise<Expected> {
  const rs = await ch.client.query({
    query: `SELECT toString(series) AS s, count() AS c, sum(value) AS v FROM ${ch.database}.samples${final ? ' FINAL' : ''} GROUP BY series`,
    format: 'JSONEachRow',
  });
  const out: Expected = new Map();
  for (const r of await rs.json<{ s: string; c: number | string; v: number }>()) out.set(r.s, { count: Number(r.c), sum: Number(r.v) });
  return out;
}

export function compare(expected: Expected, stored: Expected): string[] {
  const problems: string[] = [];
  for (const [id, e] of expected) {
    const s = stored.get(id);
    if (!s) problems.push(`series ${id}: missing (expected ${e.count} rows)`);
    else if (s.count !== e.count || s.sum !== e.sum) problems.push(`series ${id}: stored ${s.count} rows sum ${s.sum}, expected ${e.count} rows sum ${e.sum}`);
  }
  for (const id of stored.keys()) if (!expected.has(id)) problems.push(`series ${id}: not expected`);
  return problems.slice(0, 10);
}

export const SAMPLES = TOPICS.samples;
export const EVENTS = TOPICS.events;
