import type { ClickHouse, Profile } from './clickhouse.js';
import { M } from '../core/metrics.js';

/**
 * Versioned schema migrations, recorded in `<db>.schema_migrations` and applied in array order.
 *
 * To add one, append `{ name, full: [...], legacy: [...] }` to MIGRATIONS (never edit or reorder an
 * applied one). Statements must be idempotent on their own (IF NOT EXISTS, ...) because a crash can
 * land between a statement and the record of its migration. Placeholders: `{db}` (database) and
 * `{rawTtlDays}`; more can be passed through `MigrateOptions.vars`.
 *
 * Profiles: `full` is the embedded engine and servers >= 23.8; `legacy` is old servers (Debian's
 * 18.16): no DateTime64 (ts DateTime + ms UInt16), no codecs, TTL, Map or LowCardinality, and
 * ReplacingMergeTree everywhere so that a retried insert collapses (they have no
 * insert_deduplication_token; count such tables with FINAL).
 */
export interface Migration {
  readonly name: string;
  readonly full: readonly string[];
  readonly legacy: readonly string[];
}

export const MIGRATIONS: Migration[] = [
  {
    name: '0001_samples',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.samples (
        metric LowCardinality(String),
        series UInt64,
        device LowCardinality(String),
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD),
        value Float64 CODEC(Gorilla, ZSTD)
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMMDD(ts)
      ORDER BY (metric, series, ts)
      TTL toDateTime(ts) + INTERVAL {rawTtlDays} DAY
      SETTINGS non_replicated_deduplication_window = 10000`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.samples (
        metric String,
        series UInt64,
        device String,
        ts DateTime,
        ms UInt16,
        value Float64
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMMDD(ts)
      ORDER BY (metric, series, ts, ms)`,
    ],
  },
  {
    name: '0002_series',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.series (
        series UInt64,
        metric LowCardinality(String),
        device LowCardinality(String),
        labels Map(String, String),
        key String,
        last_seen DateTime64(3, 'UTC')
      ) ENGINE = ReplacingMergeTree(last_seen)
      ORDER BY (metric, series)`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.series (
        series UInt64,
        metric String,
        device String,
        label_keys Array(String),
        label_values Array(String),
        key String,
        last_seen DateTime
      ) ENGINE = ReplacingMergeTree(last_seen)
      ORDER BY (metric, series)`,
    ],
  },
  {
    name: '0003_events',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.events (
        id String,
        ts DateTime64(3, 'UTC'),
        source LowCardinality(String),
        kind LowCardinality(String),
        severity LowCardinality(String),
        device LowCardinality(String),
        message String,
        fields String
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (device, ts, id)
      SETTINGS non_replicated_deduplication_window = 10000`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.events (
        id String,
        ts DateTime,
        ms UInt16,
        source String,
        kind String,
        severity String,
        device String,
        message String,
        fields String
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (device, ts, ms, id)`,
    ],
  },
  {
    // The sink writes the offset range it is about to insert before inserting, so that a restarted
    // sink re-forms exactly the same ranges and their dedup tokens match (storage/sink.ts).
    name: '0004_sink_ledger',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.sink_ledger (
        consumer_group String,
        topic String,
        partition UInt32,
        first UInt64,
        last UInt64,
        created DateTime64(3, 'UTC') DEFAULT now64(3)
      ) ENGINE = ReplacingMergeTree
      ORDER BY (consumer_group, topic, partition, first)
      TTL toDateTime(created) + INTERVAL 7 DAY`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.sink_ledger (
        consumer_group String,
        topic String,
        partition UInt32,
        first UInt64,
        last UInt64,
        created DateTime DEFAULT now()
      ) ENGINE = ReplacingMergeTree
      ORDER BY (consumer_group, topic, partition, first)`,
    ],
  },
  {
    // Rollups written by processors/rollup-sink.ts from the processors' window results. A correction
    // (late data within allowed lateness) is a new row with a higher revision: ReplacingMergeTree(revision)
    // keeps the latest, so read with FINAL (or argMax by revision) until merges have run.
    name: '0005_rollups_1m',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_1m (
        metric LowCardinality(String),
        series UInt64,
        device LowCardinality(String),
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD),
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime64(3, 'UTC'),
        last_ts DateTime64(3, 'UTC'),
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String CODEC(ZSTD),
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)
      TTL toDateTime(ts) + INTERVAL 30 DAY`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_1m (
        metric String,
        series UInt64,
        device String,
        ts DateTime,
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime,
        last_ts DateTime,
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String,
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)`,
    ],
  },
  {
    // Rollups written by processors/rollup-sink.ts from the processors' window results. A correction
    // (late data within allowed lateness) is a new row with a higher revision: ReplacingMergeTree(revision)
    // keeps the latest, so read with FINAL (or argMax by revision) until merges have run.
    name: '0006_rollups_5m',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_5m (
        metric LowCardinality(String),
        series UInt64,
        device LowCardinality(String),
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD),
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime64(3, 'UTC'),
        last_ts DateTime64(3, 'UTC'),
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String CODEC(ZSTD),
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)
      TTL toDateTime(ts) + INTERVAL 180 DAY`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_5m (
        metric String,
        series UInt64,
        device String,
        ts DateTime,
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime,
        last_ts DateTime,
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String,
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)`,
    ],
  },
  {
    // Rollups written by processors/rollup-sink.ts from the processors' window results. A correction
    // (late data within allowed lateness) is a new row with a higher revision: ReplacingMergeTree(revision)
    // keeps the latest, so read with FINAL (or argMax by revision) until merges have run.
    name: '0007_rollups_1h',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_1h (
        metric LowCardinality(String),
        series UInt64,
        device LowCardinality(String),
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD),
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime64(3, 'UTC'),
        last_ts DateTime64(3, 'UTC'),
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String CODEC(ZSTD),
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)
      TTL toDateTime(ts) + INTERVAL 730 DAY`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.rollups_1h (
        metric String,
        series UInt64,
        device String,
        ts DateTime,
        count UInt64,
        sum Float64,
        min Float64,
        max Float64,
        first Float64,
        last Float64,
        first_ts DateTime,
        last_ts DateTime,
        p50 Float64,
        p95 Float64,
        p99 Float64,
        sketch String,
        revision UInt32
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY toYYYYMM(ts)
      ORDER BY (metric, series, ts)`,
    ],
  },
  {
    // Every alert state change (processors/alerts.ts AlertChange), kept two years; identical replays collapse.
    name: '0008_alert_history',
    full: [
      `CREATE TABLE IF NOT EXISTS {db}.alert_history (
        ts DateTime64(3, 'UTC'),
        fingerprint String,
        event LowCardinality(String),
        state LowCardinality(String),
        previous LowCardinality(String),
        rule LowCardinality(String),
        severity LowCardinality(String),
        device LowCardinality(String),
        labels Map(String, String),
        annotations Map(String, String),
        value Float64,
        starts_at DateTime64(3, 'UTC'),
        ends_at Nullable(DateTime64(3, 'UTC')),
        suppressed_by String,
        flapping UInt8,
        ack_by String,
        ack_at Nullable(DateTime64(3, 'UTC')),
        ack_comment String
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (fingerprint, ts, event, state)
      TTL toDateTime(ts) + INTERVAL 730 DAY`,
    ],
    legacy: [
      `CREATE TABLE IF NOT EXISTS {db}.alert_history (
        ts DateTime,
        ms UInt16,
        fingerprint String,
        event String,
        state String,
        previous String,
        rule String,
        severity String,
        device String,
        label_keys Array(String),
        label_values Array(String),
        annotation_keys Array(String),
        annotation_values Array(String),
        value Float64,
        starts_at DateTime,
        ends_at Nullable(DateTime),
        suppressed_by String,
        flapping UInt8,
        ack_by String,
        ack_at Nullable(DateTime),
        ack_comment String
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (fingerprint, ts, ms, event, state)`,
    ],
  },
];

export interface MigrateOptions {
  readonly rawTtlDays: number;
  readonly vars?: Readonly<Record<string, string | number>>;
  /** Defaults to MIGRATIONS; tests pass their own list. */
  readonly migrations?: readonly Migration[];
}

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

export function render(sql: string, vars: Readonly<Record<string, string | number>>): string {
  return sql.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new MigrationError(`unknown placeholder ${whole} in migration SQL`);
    return String(v);
  });
}

function ledgerDdl(profile: Profile, db: string): string {
  const at = profile === 'full' ? "DateTime64(3, 'UTC') DEFAULT now64(3)" : 'DateTime DEFAULT now()';
  return `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (name String, applied_at ${at}) ENGINE = ReplacingMergeTree ORDER BY name`;
}

/** Names of the migrations recorded as applied. */
export async function appliedMigrations(ch: ClickHouse): Promise<string[]> {
  const rs = await ch.client.query({ query: `SELECT DISTINCT name FROM ${ch.database}.schema_migrations ORDER BY name`, format: 'JSONEachRow' });
  return (await rs.json<{ name: string }>()).map((r) => r.name);
}

/** Applies the missing migrations in order; returns the names applied by this call. */
export async function migrate(ch: ClickHouse, opts: MigrateOptions): Promise<string[]> {
  const list = opts.migrations ?? MIGRATIONS;
  const seen = new Set<string>();
  for (const m of list) {
    if (seen.has(m.name)) throw new MigrationError(`migration ${m.name} is listed twice`);
    seen.add(m.name);
  }
  const db = ch.database;
  const vars = { ...opts.vars, db, rawTtlDays: opts.rawTtlDays };
  await ch.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await ch.client.command({ query: ledgerDdl(ch.profile, db) });
  const done = new Set(await appliedMigrations(ch));
  const applied: string[] = [];
  for (const m of list) {
    if (done.has(m.name)) continue;
    for (const stmt of m[ch.profile]) {
      const sql = render(stmt, vars);
      try {
        await ch.client.command({ query: sql });
      } catch (err) {
        M.errors.inc({ component: 'migrations', kind: 'apply' });
        throw new MigrationError(`migration ${m.name} (${ch.profile} profile) failed on ${ch.where}: ${(err as Error).message}\n${sql}`, { cause: err });
      }
    }
    await ch.client.insert({ table: `${db}.schema_migrations`, values: [{ name: m.name }], format: 'JSONEachRow', columns: ['name'] });
    applied.push(m.name);
  }
  if (ch.profile === 'full') await applyRawTtl(ch, opts.rawTtlDays);
  return applied;
}

/**
 * Keeps the raw samples' TTL in line with `clickhouse.rawTtlDays` after the table exists. Parts are
 * not rewritten (materialize_ttl_after_modify = 0): the new TTL applies as parts merge.
 */
export async function applyRawTtl(ch: ClickHouse, days: number): Promise<boolean> {
  if (!Number.isSafeInteger(days) || days < 1) throw new MigrationError(`rawTtlDays must be a positive integer, got ${days}`);
  const rs = await ch.client.query({
    query: `SELECT create_table_query AS q FROM system.tables WHERE database = '${ch.database}' AND name = 'samples'`,
    format: 'JSONEachRow',
  });
  const q = (await rs.json<{ q: string }>())[0]?.q ?? '';
  const m = /TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)/.exec(q);
  if (m && Number(m[1]) === days) return false;
  await ch.client.command({ query: `ALTER TABLE ${ch.database}.samples MODIFY TTL toDateTime(ts) + INTERVAL ${days} DAY SETTINGS materialize_ttl_after_modify = 0` });
  return true;
}
