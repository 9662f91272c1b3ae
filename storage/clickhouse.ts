import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection, type ChdbConnection } from 'chdb/connection';
import type { Config } from '../core/config.js';
import { safeUrl } from '../core/log.js';
import { M } from '../core/metrics.js';

/**
 * One handle on ClickHouse, embedded (chdb, in this process) or a server over HTTP.
 * The same @clickhouse/client API serves both; `insertTsv` is the sink's fast path because the
 * embedded connection stringifies `client.insert` bodies while chdb's raw insert takes Buffers.
 */

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

/** `full`: the embedded engine and servers >= 23.8 (DateTime64, codecs, TTL, Map, dedup tokens).
 *  `legacy`: old servers such as Debian's 18.16 (DateTime + ms column, ReplacingMergeTree collapsing). */
export type Profile = 'full' | 'legacy';

export type ClickHouseSettings = Record<string, string | number>;

export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly profile: Profile;
  readonly embedded: boolean;
  /** Database holding noctua's tables (cfg.database). */
  readonly database: string;
  /** Engine version, e.g. `26.7.2.1` or `18.16.1`. */
  readonly version: string;
  /** Where the embedded engine keeps its data, or the server URL without credentials. */
  readonly where: string;
  /** Inserts a TabSeparated byte body (no header) into `table` (qualified) with its column list. */
  insertTsv(table: string, columns: readonly string[], body: Buffer, settings?: ClickHouseSettings): Promise<void>;
  /** Inserts objects as JSONEachRow; settings apply to this statement only (also on the embedded engine). */
  insertRows(table: string, rows: readonly Record<string, unknown>[], settings?: ClickHouseSettings): Promise<void>;
  close(): Promise<void>;
}

export class ClickHouseOpenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClickHouseOpenError';
  }
}

/** Minimum server version that gets the full profile (DateTime64 codecs, TTL, Map, dedup tokens on MergeTree). */
const FULL_PROFILE_MIN: readonly [number, number] = [23, 8];

export function profileForVersion(version: string): Profile {
  const [maj = 0, min = 0] = version.split('.').map((p) => Number.parseInt(p, 10) || 0);
  return maj > FULL_PROFILE_MIN[0] || (maj === FULL_PROFILE_MIN[0] && min >= FULL_PROFILE_MIN[1]) ? 'full' : 'legacy';
}

export async function openClickHouse(cfg: Config['clickhouse'], dataDir: string): Promise<ClickHouse> {
  return cfg.url ? openServer(cfg, cfg.url) : openEmbedded(cfg, dataDir);
}

function openEmbedded(cfg: Config['clickhouse'], dataDir: string): Promise<ClickHouse> {
  const path = resolve(dataDir, 'clickhouse');
  mkdirSync(path, { recursive: true });
  let conn: ChdbConnection;
  try {
    conn = createChdbConnection({ path });
  } catch (err) {
    M.errors.inc({ component: 'clickhouse', kind: 'open' });
    throw new ClickHouseOpenError(explainEmbeddedFailure(path, err), { cause: err });
  }
  const serial = new SerialChdb(conn);
  const client = createClient({ connection: serial.connection() });
  const handle: ClickHouse = {
    client,
    profile: cfg.profile === 'legacy' ? 'legacy' : 'full',
    embedded: true,
    database: cfg.database,
    version: '',
    where: path,
    async insertTsv(table, columns, body, settings) {
      if (body.length === 0) return;
      await serial.run(() => conn.chdb.rawInsert({ table, columns, values: body, format: 'TabSeparated', ...(settings ? { settings } : {}) }));
    },
    async insertRows(table, rows, settings) {
      if (rows.length === 0) return;
      const body = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', 'utf8');
      await serial.run(() => conn.chdb.rawInsert({ table, values: body, format: 'JSONEachRow', ...(settings ? { settings } : {}) }));
    },
    close: () => client.close(),
  };
  return finishOpen(handle, cfg);
}

/**
 * The embedded engine runs one statement at a time per connection anyway, and a statement that
 * fails while writing output (a JSON header, say) leaves that output in the session buffer, where
 * it is prepended to the NEXT statement's result, whoever runs it (verified with chdb 3.4). So every
 * operation goes through one queue, and a failure is followed by a throw-away statement that takes
 * the leftovers before anyone else runs.
 */
class SerialChdb {
  private tail: Promise<void> = Promise.resolve();
  constructor(private readonly conn: ChdbConnection) {}

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      try {
        return await op();
      } catch (err) {
        await this.conn.chdb.queryAsync('SELECT 1', { format: 'TSV' }).catch(() => undefined);
        throw err;
      }
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  connection(): ClientConnection {
    const c = this.conn;
    type P = { clickhouse_settings?: Record<string, unknown> };
    const scoped = <T>(p: P, op: () => Promise<T>) => this.run(() => this.withScopedSettings(p, op));
    const wrapped = {
      ping: (p: never) => this.run(() => c.ping(p)),
      query: (p: P) => scoped(p, () => c.query(p as never)),
      insert: (p: P) => scoped(p, () => c.insert(p as never)),
      command: (p: P) => scoped(p, () => c.command(p as never)),
      exec: (p: P) => scoped(p, () => c.exec(p as never)),
      close: () => c.close(),
    };
    // chdb types its Connection against its own copy of @clickhouse/client-common; the shapes match.
    return wrapped as unknown as ClientConnection;
  }

  /**
   * The embedded connection applies `clickhouse_settings` as session-wide SETs, so a setting meant
   * for one statement (an insert_deduplication_token!) would stick to every later one. Here they are
   * restored to their previous values right after the statement, inside the queue.
   */
  private async withScopedSettings<T>(p: { clickhouse_settings?: Record<string, unknown> }, op: () => Promise<T>): Promise<T> {
    const names = Object.keys(p.clickhouse_settings ?? {}).filter((k) => p.clickhouse_settings![k] !== undefined && !HTTP_ONLY.has(k) && k !== 'default_format');
    if (names.length === 0) return op();
    if (names.includes('readonly')) {
      throw new Error('readonly cannot be a per-statement setting on the embedded engine (it could not be unset): put it in a query-level SETTINGS clause');
    }
    for (const n of names) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new Error(`invalid setting name ${JSON.stringify(n)}`);
    const sel = names.map((n) => `toString(getSetting('${n}')) AS ${n}`).join(', ');
    const prev = JSON.parse((await this.conn.chdb.queryAsync(`SELECT ${sel}`, { format: 'JSONEachRow' })).text().trim()) as Record<string, string>;
    try {
      return await op();
    } finally {
      const restore = names.map((n) => `${n} = '${String(prev[n]).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ');
      await this.conn.chdb.queryAsync(`SET ${restore}`, { format: 'TSV' });
    }
  }
}

/** Settings the embedded connection drops anyway (HTTP transport only). */
const HTTP_ONLY = new Set(['wait_end_of_query', 'send_progress_in_http_headers', 'http_response_buffer_size', 'http_headers_progress_interval_ms', 'enable_http_compression', 'http_zlib_compression_level']);

/** The engine locks `<path>/status`; a second process gets a bare "Failed to create connection". */
function explainEmbeddedFailure(path: string, err: unknown): string {
  const reason = err instanceof Error ? err.message : String(err);
  let holder = '';
  try {
    holder = readFileSync(join(path, 'status'), 'utf8').trim().replace(/\s*\n\s*/g, ', ');
  } catch {
    // no status file: not a lock problem
  }
  if (holder) {
    return (
      `embedded ClickHouse data directory ${path} is already open in another process (${holder}). ` +
      'The embedded engine owns one data directory per process: run the sink and the API in one process ' +
      '(`noctua start`), give this process another dataDir, or set clickhouse.url (CLICKHOUSE_URL) to use a ClickHouse server. ' +
      `(${reason})`
    );
  }
  return `cannot open embedded ClickHouse at ${path}: ${reason}`;
}

async function openServer(cfg: Config['clickhouse'], url: string): Promise<ClickHouse> {
  const client = createClient({
    url,
    username: cfg.user,
    password: cfg.password,
    request_timeout: 60_000,
    // Failures reach the caller, which logs them with context (and counts them); the client's own
    // logger would print every refused connection of an outage with a stack.
    log: { level: ClickHouseLogLevel.OFF },
    // Old servers (18.x) reject settings they do not know; send none by default.
    clickhouse_settings: {},
  });
  const handle: ClickHouse = {
    client,
    profile: 'full',
    embedded: false,
    database: cfg.database,
    version: '',
    where: safeUrl(url),
    async insertTsv(table, columns, body, settings) {
      if (body.length === 0) return;
      await client.insert({
        table,
        columns: columns as [string, ...string[]],
        values: bufferStream(body),
        format: 'TabSeparated',
        ...(settings ? { clickhouse_settings: settings } : {}),
      });
    },
    async insertRows(table, rows, settings) {
      if (rows.length === 0) return;
      await client.insert({ table, values: rows as Record<string, unknown>[], format: 'JSONEachRow', ...(settings ? { clickhouse_settings: settings } : {}) });
    },
    close: () => client.close(),
  };
  return finishOpen(handle, cfg);
}

/** A non-object-mode stream of one Buffer: clickhouse-js sends raw formats from byte streams. */
export function bufferStream(body: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(body);
      }
      this.push(null);
    },
  });
}

async function finishOpen(handle: ClickHouse, cfg: Config['clickhouse']): Promise<ClickHouse> {
  let version: string;
  try {
    const rs = await handle.client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const rows = await rs.json<{ v: string }>();
    version = rows[0]?.v ?? '';
  } catch (err) {
    M.errors.inc({ component: 'clickhouse', kind: 'open' });
    await handle.close().catch(() => undefined);
    throw new ClickHouseOpenError(`cannot reach ClickHouse at ${handle.where}: ${(err as Error).message}`, { cause: err });
  }
  let profile: Profile;
  if (cfg.profile === 'full' || cfg.profile === 'legacy') profile = cfg.profile;
  else profile = handle.embedded ? 'full' : profileForVersion(version);
  return { ...handle, version, profile };
}
