import type { ClickHouse, Profile } from './clickhouse.js';
import type { Labels } from '../core/types.js';
import { M } from '../core/metrics.js';
import { checkReadOnlySql, SqlRejectedError } from './sql-guard.js';

export { SqlRejectedError } from './sql-guard.js';

/**
 * The query layer: series reads for charts and APIs, inventory listings, and analysts' read-only SQL.
 * Values are inlined as escaped literals rather than bound parameters because old servers (18.16)
 * have no query parameters; every literal goes through `str()` or `int()`.
 */

/** ClickHouse string literal. */
export function str(s: string): string {
  return "'" + String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

function int(n: number, what: string): string {
  if (!Number.isSafeInteger(n)) throw new QueryError(`${what} must be an integer, got ${String(n)}`);
  return String(n);
}

export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

/** Prometheus-style label matcher; regexes are anchored like Prometheus (whole value). */
export interface LabelMatcher {
  readonly name: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
}

export interface SeriesQuery {
  readonly metric: string;
  /** Equality map or matchers. */
  readonly labels?: Labels | readonly LabelMatcher[];
  /** Series id (decimal UInt64). */
  readonly series?: string;
  readonly device?: string;
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
  /** Bucket width in ms: points are aggregates per bucket (absent: raw points). */
  readonly step?: number;
  /**
   * What a point is when it stands for more than one sample (a bucket, or a rollup window): the
   * mean (default), or the highest or lowest sample in it - a score or an error burst read as a
   * mean over a minute is a tenth of itself.
   */
  readonly agg?: SeriesAgg;
  /** Bound on the points returned (default 100,000); more is an error asking for a larger step. */
  readonly maxPoints?: number;
}

export const SERIES_AGGS = ['avg', 'max', 'min'] as const;
export type SeriesAgg = (typeof SERIES_AGGS)[number];

export interface SeriesPoints {
  readonly id: string;
  readonly key: string;
  readonly metric: string;
  readonly device: string;
  readonly labels: Labels;
  /** [epoch ms, value]; value null for NaN/Inf. */
  readonly points: Array<[number, number | null]>;
}

export interface SeriesResult {
  readonly metric: string;
  readonly from: number;
  readonly to: number;
  readonly step: number | null;
  /** Which table answered (raw samples now; rollups later). */
  readonly source: string;
  readonly series: SeriesPoints[];
}

/**
 * Where points come from. Rollup tables plug in here: a source says which steps it can answer and
 * how to read it; `chooseSource` picks the coarsest one that fits (only raw samples exist today).
 */
export interface SampleSource {
  readonly name: string;
  /** Smallest step (ms) this source can answer, 0 for raw. */
  readonly resolutionMs: number;
  readonly table: (db: string) => string;
  /** Epoch-ms expression of the row's time, and the time filter on its columns. */
  readonly timeMs: (profile: Profile) => string;
  readonly timeFilter: (profile: Profile, from: number, to: number) => string;
  /** Expression of the value, and of the value aggregated over a bucket. */
  readonly value: (agg: SeriesAgg) => string;
  readonly bucketValue: (agg: SeriesAgg) => string;
  /** Legacy tables collapse duplicates only on merge: read them FINAL. */
  readonly final: (profile: Profile) => boolean;
}

export const RAW_SAMPLES: SampleSource = {
  name: 'samples',
  resolutionMs: 0,
  table: (db) => `${db}.samples`,
  timeMs: (p) => (p === 'full' ? 'toUnixTimestamp64Milli(ts)' : '(toUInt64(toUnixTimestamp(ts)) * 1000 + ms)'),
  timeFilter: (p, from, to) =>
    p === 'full'
      ? `ts >= fromUnixTimestamp64Milli(toInt64(${int(from, 'from')})) AND ts < fromUnixTimestamp64Milli(toInt64(${int(to, 'to')}))`
      : `ts >= toDateTime(${Math.floor(from / 1000)}) AND ts <= toDateTime(${Math.floor(to / 1000)}) AND (toUInt64(toUnixTimestamp(ts)) * 1000 + ms) >= ${int(from, 'from')} AND (toUInt64(toUnixTimestamp(ts)) * 1000 + ms) < ${int(to, 'to')}`,
  value: () => 'value',
  bucketValue: (agg) => `${agg}(value)`,
  final: (p) => p === 'legacy',
};

/**
 * A rollup table of the processors (storage/migrations.ts): one row per series and window, `sum` and
 * `count` re-aggregate exactly into any multiple of its resolution. ReplacingMergeTree keeps the
 * newest revision of a window (late-data corrections), so it is read FINAL.
 */
export function rollupSource(table: string, resolutionMs: number): SampleSource {
  return {
    name: table,
    resolutionMs,
    table: (db) => `${db}.${table}`,
    timeMs: (p) => (p === 'full' ? 'toUnixTimestamp64Milli(ts)' : '(toUInt64(toUnixTimestamp(ts)) * 1000)'),
    timeFilter: (p, from, to) =>
      p === 'full'
        ? `ts >= fromUnixTimestamp64Milli(toInt64(${int(from, 'from')})) AND ts < fromUnixTimestamp64Milli(toInt64(${int(to, 'to')}))`
        : `ts >= toDateTime(${Math.floor(from / 1000)}) AND ts < toDateTime(${Math.ceil(to / 1000)})`,
    value: (agg) => (agg === 'avg' ? 'sum / count' : agg),
    bucketValue: (agg) => (agg === 'avg' ? 'sum(sum) / sum(count)' : `${agg}(${agg})`),
    final: () => true,
  };
}

/** Where series reads can come from; a query with a step is answered by the coarsest that fits. */
export const SAMPLE_SOURCES: SampleSource[] = [RAW_SAMPLES, rollupSource('rollups_1m', 60_000), rollupSource('rollups_5m', 300_000), rollupSource('rollups_1h', 3_600_000)];

export function chooseSource(q: SeriesQuery, sources: readonly SampleSource[] = SAMPLE_SOURCES): SampleSource {
  const step = q.step ?? 0;
  let best = RAW_SAMPLES;
  for (const s of sources) if (s.resolutionMs <= step && s.resolutionMs > best.resolutionMs && step % Math.max(1, s.resolutionMs) === 0) best = s;
  return best;
}

function labelExpr(profile: Profile, name: string): string {
  return profile === 'full' ? `labels[${str(name)}]` : `label_values[indexOf(label_keys, ${str(name)})]`;
}

function matchersOf(labels: SeriesQuery['labels']): LabelMatcher[] {
  if (!labels) return [];
  if (Array.isArray(labels)) return labels as LabelMatcher[];
  return Object.entries(labels as Labels).map(([name, value]) => ({ name, op: '=' as const, value }));
}

function matcherSql(profile: Profile, m: LabelMatcher): string {
  const e = labelExpr(profile, m.name);
  switch (m.op) {
    case '=':
      return `${e} = ${str(m.value)}`;
    case '!=':
      return `${e} != ${str(m.value)}`;
    case '=~':
      return `match(${e}, ${str(`^(?:${m.value})$`)})`;
    case '!~':
      return `NOT match(${e}, ${str(`^(?:${m.value})$`)})`;
    default:
      throw new QueryError(`unknown label matcher operator ${String((m as LabelMatcher).op)}`);
  }
}

/** WHERE conditions on the series inventory (metric, device, labels). */
function inventoryWhere(profile: Profile, q: { metric?: string; device?: string; labels?: SeriesQuery['labels']; series?: string }): string[] {
  const w: string[] = [];
  if (q.metric !== undefined) w.push(`metric = ${str(q.metric)}`);
  if (q.device !== undefined) w.push(`device = ${str(q.device)}`);
  if (q.series !== undefined) {
    if (!/^\d{1,20}$/.test(q.series)) throw new QueryError(`series must be a decimal UInt64 id, got ${JSON.stringify(q.series)}`);
    w.push(`series = ${q.series}`);
  }
  for (const m of matchersOf(q.labels)) w.push(matcherSql(profile, m));
  return w;
}

interface InventoryRow {
  id: string;
  key: string;
  metric: string;
  device: string;
  labels: Labels;
  last_seen: number;
}

function inventorySelect(ch: ClickHouse): string {
  const lastSeen = ch.profile === 'full' ? 'toUnixTimestamp64Milli(last_seen)' : 'toUInt64(toUnixTimestamp(last_seen)) * 1000';
  return ch.profile === 'full'
    ? `SELECT toString(series) AS id, key, metric, device, labels, ${lastSeen} AS last_seen FROM ${ch.database}.series FINAL`
    : `SELECT toString(series) AS id, key, metric, device, label_keys, label_values, ${lastSeen} AS last_seen FROM ${ch.database}.series FINAL`;
}

function toInventory(r: Record<string, unknown>): InventoryRow {
  let labels: Labels;
  if (Array.isArray(r.label_keys)) {
    const keys = r.label_keys as string[];
    const values = r.label_values as string[];
    labels = Object.fromEntries(keys.map((k, i) => [k, values[i] ?? '']));
  } else labels = (r.labels ?? {}) as Labels;
  return { id: String(r.id), key: String(r.key), metric: String(r.metric), device: String(r.device), labels, last_seen: Number(r.last_seen) };
}

async function rows<T>(ch: ClickHouse, query: string): Promise<T[]> {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

export interface ListSeriesQuery {
  readonly metric?: string;
  readonly device?: string;
  readonly labels?: SeriesQuery['labels'];
  readonly limit?: number;
}

export interface SeriesInfoOut {
  readonly id: string;
  readonly key: string;
  readonly metric: string;
  readonly device: string;
  readonly labels: Labels;
  readonly lastSeen: number;
}

export async function listSeries(ch: ClickHouse, q: ListSeriesQuery = {}): Promise<SeriesInfoOut[]> {
  const where = inventoryWhere(ch.profile, q);
  const limit = int(q.limit ?? 10_000, 'limit');
  const sql = `${inventorySelect(ch)}${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY metric, key LIMIT ${limit}`;
  const out = await rows<Record<string, unknown>>(ch, sql);
  return out.map(toInventory).map((r) => ({ id: r.id, key: r.key, metric: r.metric, device: r.device, labels: r.labels, lastSeen: r.last_seen }));
}

export interface DeviceInfo {
  readonly device: string;
  readonly series: number;
  readonly metrics: number;
  readonly lastSeen: number;
}

export async function listDevices(ch: ClickHouse): Promise<DeviceInfo[]> {
  const lastSeen = ch.profile === 'full' ? 'toUnixTimestamp64Milli(max(last_seen))' : 'toUInt64(toUnixTimestamp(max(last_seen))) * 1000';
  const sql = `SELECT device, count() AS series, uniqExact(metric) AS metrics, ${lastSeen} AS last_seen FROM ${ch.database}.series FINAL GROUP BY device ORDER BY device`;
  const out = await rows<Record<string, unknown>>(ch, sql);
  return out.map((r) => ({ device: String(r.device), series: Number(r.series), metrics: Number(r.metrics), lastSeen: Number(r.last_seen) }));
}

/** Points of the series of one metric that match, grouped per series, in time order. */
export async function readSeries(ch: ClickHouse, q: SeriesQuery): Promise<SeriesResult> {
  if (typeof q.metric !== 'string' || q.metric === '') throw new QueryError('metric is required');
  int(q.from, 'from');
  int(q.to, 'to');
  if (q.to <= q.from) throw new QueryError(`to (${q.to}) must be after from (${q.from})`);
  if (q.step !== undefined && (!Number.isSafeInteger(q.step) || q.step < 1)) throw new QueryError(`step must be a positive integer (ms), got ${String(q.step)}`);
  const maxPoints = q.maxPoints ?? 100_000;
  const agg = q.agg ?? 'avg';
  if (!SERIES_AGGS.includes(agg)) throw new QueryError(`agg must be one of ${SERIES_AGGS.join(', ')}, got ${String(agg)}`);
  const p = ch.profile;
  const db = ch.database;
  const filters: string[] = [];
  if (q.device !== undefined) filters.push(`device = ${str(q.device)}`);
  if (q.series !== undefined) filters.push(inventoryWhere(p, { series: q.series })[0]!);
  const matchers = matchersOf(q.labels);
  if (matchers.length > 0) {
    const inv = inventoryWhere(p, { metric: q.metric, labels: matchers });
    filters.push(`series IN (SELECT series FROM ${db}.series WHERE ${inv.join(' AND ')})`);
  }
  const read = async (src: SampleSource, from: number, to: number) => {
    const where = [`metric = ${str(q.metric)}`, src.timeFilter(p, from, to), ...filters];
    const table = `${src.table(db)}${src.final(p) ? ' FINAL' : ''}`;
    const t = src.timeMs(p);
    const sql =
      q.step === undefined
        ? `SELECT toString(series) AS s, ${t} AS t, ${src.value(agg)} AS v FROM ${table} WHERE ${where.join(' AND ')} ORDER BY series, t LIMIT ${maxPoints + 1}`
        : `SELECT toString(series) AS s, intDiv(${t}, ${q.step}) * ${q.step} AS t, ${src.bucketValue(agg)} AS v FROM ${table} WHERE ${where.join(' AND ')} GROUP BY series, t ORDER BY series, t LIMIT ${maxPoints + 1}`;
    return rows<{ s: string; t: number | string; v: number | null }>(ch, sql);
  };
  // The coarsest source that answers reads first; rollups exist only for windows the processors
  // have closed, so each finer source (raw samples last) continues from where the coarser one ends.
  const step = q.step;
  const chain = step === undefined ? [RAW_SAMPLES] : SAMPLE_SOURCES.filter((x) => x.resolutionMs <= step && step % Math.max(1, x.resolutionMs) === 0).sort((a, b) => b.resolutionMs - a.resolutionMs);
  let src = chooseSource(q);
  let pts: { s: string; t: number | string; v: number | null }[] = [];
  let covered = q.from;
  let answered = false;
  for (const c of chain) {
    if (covered >= q.to) break;
    const got = await read(c, covered, q.to);
    if (got.length === 0) continue;
    if (!answered) src = c;
    answered = true;
    pts = pts.concat(got);
    if (step !== undefined) for (const r of got) covered = Math.max(covered, Number(r.t) + step);
  }
  if (!answered) src = RAW_SAMPLES;
  if (chain.length > 1) pts.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : Number(a.t) - Number(b.t)));
  if (pts.length > maxPoints) throw new QueryError(`more than ${maxPoints} points match; narrow the time range or use a larger step`);
  const bySeries = new Map<string, Array<[number, number | null]>>();
  for (const r of pts) {
    let arr = bySeries.get(r.s);
    if (!arr) bySeries.set(r.s, (arr = []));
    arr.push([Number(r.t), typeof r.v === 'number' && Number.isFinite(r.v) ? r.v : null]);
  }
  const meta = new Map<string, InventoryRow>();
  if (bySeries.size > 0) {
    const ids = [...bySeries.keys()].join(',');
    const inv = await rows<Record<string, unknown>>(ch, `${inventorySelect(ch)} WHERE metric = ${str(q.metric)} AND series IN (${ids})`);
    for (const r of inv.map(toInventory)) meta.set(r.id, r);
  }
  const series: SeriesPoints[] = [...bySeries].map(([id, points]) => {
    const m = meta.get(id);
    return { id, key: m?.key ?? '', metric: q.metric, device: m?.device ?? '', labels: m?.labels ?? {}, points };
  });
  return { metric: q.metric, from: q.from, to: q.to, step: q.step ?? null, source: src.name, series };
}

export interface SqlLimits {
  readonly maxExecutionTimeS: number;
  readonly maxResultRows: number;
  readonly maxMemoryBytes: number;
  /** Longest accepted query text (default 100,000 characters). */
  readonly maxQueryLength?: number;
}

export type SqlResult =
  | { readonly format: 'json'; readonly meta: ReadonlyArray<{ name: string; type: string }>; readonly data: unknown[]; readonly rows: number; readonly elapsedMs: number }
  | { readonly format: 'csv'; readonly text: string; readonly elapsedMs: number };

/** ClickHouse rejected or failed the query: `message` is the engine's text, without a stack. */
export class SqlQueryError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'SqlQueryError';
  }
}

/**
 * Runs one analyst query with the engine in readonly mode and bounded time, rows and memory.
 * Embedded: settings go in a query-level SETTINGS clause because the embedded connection turns
 * per-query settings into session-wide SETs (a readonly=1 would stick to the sink's session).
 * SELECT/WITH are wrapped in `SELECT * FROM (...)` so the row limit holds for UNIONs too.
 */
export async function runReadOnlySql(ch: ClickHouse, sql: string, opts: { format: 'json' | 'csv'; limits: SqlLimits }): Promise<SqlResult> {
  let checked;
  try {
    checked = checkReadOnlySql(sql, opts.limits.maxQueryLength);
  } catch (err) {
    if (err instanceof SqlRejectedError) M.errors.inc({ component: 'sql', kind: 'rejected' });
    throw err;
  }
  const l = opts.limits;
  const settings: Record<string, string | number> = {
    max_execution_time: Math.max(1, Math.ceil(l.maxExecutionTimeS)),
    max_result_rows: l.maxResultRows,
    result_overflow_mode: 'throw',
    max_memory_usage: l.maxMemoryBytes,
    readonly: 1,
  };
  const body = checked.kind === 'SELECT' || checked.kind === 'WITH' ? `SELECT * FROM (\n${checked.sql}\n)` : checked.sql;
  const format = opts.format === 'json' ? 'JSON' : 'CSVWithNames';
  const started = performance.now();
  try {
    if (ch.embedded) {
      const clause = Object.entries(settings)
        .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : str(v)}`)
        .join(', ');
      const rs = await ch.client.query({ query: `${body}\nSETTINGS ${clause}`, format });
      return finish(rs, opts.format, started);
    }
    const rs = await ch.client.query({ query: body, format, clickhouse_settings: settings as never });
    return finish(rs, opts.format, started);
  } catch (err) {
    M.errors.inc({ component: 'sql', kind: 'query' });
    const e = err as Error & { code?: string };
    throw new SqlQueryError(cleanMessage(e.message ?? String(err)), e.code);
  }
}

async function finish(rs: { text(): Promise<string> }, format: 'json' | 'csv', started: number): Promise<SqlResult> {
  const text = await rs.text();
  if (format === 'csv') return { format, text, elapsedMs: performance.now() - started };
  const j = JSON.parse(text) as { meta: Array<{ name: string; type: string }>; data: unknown[]; rows: number };
  return { format, meta: j.meta, data: j.data, rows: j.rows, elapsedMs: performance.now() - started };
}

/** Engine messages sometimes carry a stack trace or the server version tail: keep the first part. */
function cleanMessage(m: string): string {
  return m.replace(/\s*Stack trace:[\s\S]*$/, '').replace(/, e\.what\(\) = DB::Exception\s*$/, '').trim();
}
