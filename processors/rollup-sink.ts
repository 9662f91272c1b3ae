import type { Bus, BusConsumer, ConsumedBatch } from '../core/bus.js';
import type { Logger } from '../core/log.js';
import { M, counter } from '../core/metrics.js';
import { seriesId } from '../core/series.js';
import { TOPICS } from '../core/types.js';
import type { ClickHouse } from '../storage/clickhouse.js';
import { seriesRow, type SeriesInfo } from '../storage/rows.js';
import type { AlertChange } from './alerts.js';
import type { RollupRecord } from './runner.js';
import { decodeRollups } from './rollup-codec.js';
import { CodecError } from '../core/codec.js';

/**
 * Rollups and alert history from the bus into ClickHouse (tables of storage/migrations.ts
 * 0005-0008). Reads committed records only (the processors write in transactions), inserts a
 * consumed batch, then commits its offset. A replay after a crash between insert and commit
 * re-inserts identical rows, which the ReplacingMergeTree tables collapse (rollups keep the highest
 * revision; read with FINAL), so what a query sees is exactly once.
 */

/** Window name -> rollup table; other windows (e.g. 10 s live views) are not stored. */
export const ROLLUP_TABLES: Readonly<Record<string, string>> = { '1m': 'rollups_1m', '5m': 'rollups_5m', '1h': 'rollups_1h' };

const rows = counter('noctua_rollup_sink_rows_total', 'Rows written by the rollup sink', ['table']);

export interface RollupSinkOptions {
  readonly bus: Bus;
  readonly ch: ClickHouse;
  readonly groupId?: string;
  readonly rollupsTopic?: string;
  readonly alertsTopic?: string;
  readonly log?: Logger;
}

export interface RollupSink {
  stop(): Promise<void>;
}


/** DateTime64(3) and DateTime text in UTC, accepted by JSONEachRow on every ClickHouse version. */
function dt(t: number, legacy: boolean): string {
  const iso = new Date(t).toISOString();
  return legacy ? iso.slice(0, 19).replace('T', ' ') : iso.slice(0, 23).replace('T', ' ');
}

export function rollupRow(r: RollupRecord, legacy: boolean): Record<string, unknown> {
  return {
    metric: r.metric,
    series: seriesId(r.key),
    device: r.labels.device ?? '',
    ts: dt(r.start, legacy),
    count: r.count,
    sum: r.sum,
    min: r.min,
    max: r.max,
    first: r.first,
    last: r.last,
    first_ts: dt(r.firstTs, legacy),
    last_ts: dt(r.lastTs, legacy),
    p50: r.p50,
    p95: r.p95,
    p99: r.p99,
    sketch: JSON.stringify(r.sketch),
    revision: r.revision,
  };
}

export function alertRow(c: AlertChange, legacy: boolean): Record<string, unknown> {
  const common = {
    fingerprint: c.fingerprint,
    event: c.event,
    state: c.state,
    previous: c.previous,
    rule: c.rule,
    severity: c.severity,
    device: c.labels.device ?? '',
    value: Number.isFinite(c.value) ? c.value : 0,
    starts_at: dt(c.startsAt, legacy),
    ends_at: c.endsAt === null ? null : dt(c.endsAt, legacy),
    suppressed_by: c.suppressedBy ?? '',
    flapping: c.flapping ? 1 : 0,
    ack_by: c.ack?.by ?? '',
    ack_at: c.ack ? dt(c.ack.at, legacy) : null,
    ack_comment: c.ack?.comment ?? '',
  };
  if (!legacy) return { ts: dt(c.ts, false), ...common, labels: c.labels, annotations: c.annotations };
  return {
    ts: dt(c.ts, true),
    ms: c.ts % 1000,
    ...common,
    label_keys: Object.keys(c.labels),
    label_values: Object.values(c.labels),
    annotation_keys: Object.keys(c.annotations),
    annotation_values: Object.values(c.annotations),
  };
}

export async function startRollupSink(opts: RollupSinkOptions): Promise<RollupSink> {
  const { bus, ch } = opts;
  const groupId = opts.groupId ?? 'noctua-rollup-sink';
  const legacy = ch.profile === 'legacy';
  const db = ch.database;
  const consumer: BusConsumer = bus.consumer({ groupId, fromBeginning: true, readCommitted: true });
  const rollupsTopic = opts.rollupsTopic ?? TOPICS.rollups;
  const inventoried = new Set<string>();
  await consumer.subscribe([rollupsTopic, opts.alertsTopic ?? TOPICS.alerts]);
  await consumer.run({
    async eachBatch(batch: ConsumedBatch) {
      const byTable = new Map<string, Record<string, unknown>[]>();
      const add = (table: string, row: Record<string, unknown>) => {
        let a = byTable.get(table);
        if (!a) byTable.set(table, (a = []));
        a.push(row);
      };
      for (const m of batch.messages) {
        if (m.value === null) continue;
        try {
          if (batch.topic === rollupsTopic) {
            for (const r of decodeRollups(m.value)) {
              const table = ROLLUP_TABLES[r.window];
              if (!table) continue;
              add(table, rollupRow(r, legacy));
              // Derived series (rates, utilisation) exist only here: put them in the inventory so
              // reads by label (ifName, ...) find them. Once per series per process is enough.
              if (!inventoried.has(r.key)) {
                inventoried.add(r.key);
                add('series', seriesRow(ch.profile, { id: seriesId(r.key), key: r.key, metric: r.metric, device: r.labels.device ?? '', labels: r.labels } as SeriesInfo, r.end));
              }
            }
          } else {
            add('alert_history', alertRow(JSON.parse(m.value.toString('utf8')) as AlertChange, legacy));
          }
        } catch (err) {
          M.rejected.inc({ topic: batch.topic, reason: err instanceof CodecError ? 'codec' : 'json' });
          opts.log?.warn({ topic: batch.topic, partition: batch.partition, offset: m.offset, err: (err as Error).message }, 'malformed record skipped');
        }
      }
      if (inventoried.size > 1_000_000) inventoried.clear();
      for (const [table, r] of byTable) {
        try {
          await ch.insertRows(`${db}.${table}`, r);
        } catch (err) {
          M.errors.inc({ component: 'rollup-sink', kind: 'insert' });
          throw new Error(`insert of ${r.length} rows into ${db}.${table} failed (topic ${batch.topic} partition ${batch.partition} from offset ${batch.messages[0]!.offset}): ${(err as Error).message}`, { cause: err });
        }
        rows.inc({ table }, r.length);
      }
      const last = batch.messages[batch.messages.length - 1]!;
      await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
    },
  });
  return { stop: () => consumer.stop() };
}
