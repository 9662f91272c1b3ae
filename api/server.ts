import Fastify, { type FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { registry, counter, histogram } from '../core/metrics.js';
import { authHook } from './auth.js';
import { alertRoutes, type AlertRoutesDeps } from './alert-routes.js';
import type { SeriesAgg } from '../storage/query.js';

export interface SeriesQuery {
  metric: string;
  device?: string;
  /** Exact label matches besides device. */
  labels?: Record<string, string>;
  series?: string;
  from: number;
  to: number;
  /** Bucket width in ms; absent = raw points. */
  step?: number;
  /** What a point stands for when it covers several samples: 'avg' (default), 'max' or 'min'. */
  agg?: SeriesAgg;
  limit?: number;
}

export interface SeriesResult {
  series: string;
  metric: string;
  labels: Record<string, string>;
  points: [number, number][];
}

/** What the API needs from storage; the roles wire storage/query.ts into it. */
export interface ApiQueries {
  readSeries(q: SeriesQuery): Promise<SeriesResult[]>;
  listSeries(q: { metric?: string; device?: string; limit: number }): Promise<unknown[]>;
  listDevices(): Promise<unknown[]>;
  sql(sql: string, format: 'json' | 'csv'): Promise<{ contentType: string; body: string }>;
}

/** An error whose message is meant for the API caller (bad SQL, bad range), with its HTTP status. */
export class ApiError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ReadyCheck {
  (): Promise<Record<string, string>>;
}

export interface ApiDeps {
  cfg: Config;
  token: string;
  log: Logger;
  queries: ApiQueries;
  /** Returns a map of check -> 'ok' | reason; ready when every value is 'ok'. */
  ready: ReadyCheck;
  /** Extra routes registered by other roles (demo incidents, SNMP target status, live hub...). */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
  /** Alerts, acknowledgements and silences (api/alert-routes.ts). */
  alerts?: AlertRoutesDeps;
}

const requests = counter('noctua_api_requests_total', 'API requests by route and status', ['route', 'status']);
const latency = histogram('noctua_api_request_seconds', 'API latency by route', ['route'], [0.005, 0.02, 0.1, 0.5, 1, 5, 30]);

const RELATIVE = /^(?:now)?-(\d+)(ms|s|m|h|d|w)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Accepts epoch ms, ISO 8601, `now`, or a relative `-15m` / `now-2h`. */
export function parseTime(v: string | undefined, fallback: number, now = Date.now()): number {
  if (v === undefined || v === '') return fallback;
  if (v === 'now') return now;
  const rel = RELATIVE.exec(v);
  if (rel) return now - Number(rel[1]) * UNIT[rel[2]!]!;
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ApiError(400, `cannot read time ${JSON.stringify(v)}: use epoch ms, ISO 8601, now or -15m`);
  return t;
}

/** What every long-running process answers over HTTP, whatever its roles: liveness, readiness, self-metrics. */
export interface OpsDeps {
  token: string;
  log: Logger;
  /** Returns a map of check -> 'ok' | reason; ready when every value is 'ok'. */
  ready: ReadyCheck;
}

/**
 * /health, /ready and /metrics behind the token (all but the two health checks): the whole API of a
 * process that runs no `serve` role, and the base the API builds on. A scaled-out `noctua process` or
 * `noctua sink` is scraped and probed like any exporter; without this its lag and errors were counted
 * where nobody could read them.
 */
export function buildOpsApi(deps: OpsDeps): FastifyInstance {
  const app: FastifyInstance = Fastify({
    // No per-request log lines (a NOC screen polls all day); errors are logged by the handler below
    // and requests are counted in noctua_api_requests_total.
    logger: false,
    bodyLimit: 1024 * 1024,
    trustProxy: false,
    // A shutdown must not wait for browsers' keep-alive or dashboard WebSocket connections.
    forceCloseConnections: true,
  });
  app.addHook('onRequest', authHook(deps.token));
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, status: String(reply.statusCode) });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err instanceof ApiError ? err.statusCode : err.validation ? 400 : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) deps.log.error({ route: req.routeOptions.url, err: err.message }, 'api error');
    await reply.code(status).send({ error: status >= 500 ? 'internal' : 'bad_request', message: err.message });
  });

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const checks = await deps.ready().catch((err: Error) => ({ ready: err.message }));
    const ok = Object.values(checks).every((v) => v === 'ok');
    await reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', async (_req, reply) => {
    await reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
  return app;
}

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = buildOpsApi(deps);

  const SeriesQs = Type.Object(
    {
      metric: Type.String({ minLength: 1, maxLength: 200 }),
      device: Type.Optional(Type.String({ maxLength: 200 })),
      series: Type.Optional(Type.String({ pattern: '^\\d{1,20}$' })),
      from: Type.Optional(Type.String()),
      to: Type.Optional(Type.String()),
      step: Type.Optional(Type.Integer({ minimum: 1 })),
      agg: Type.Optional(Type.Union([Type.Literal('avg'), Type.Literal('max'), Type.Literal('min')])),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
      token: Type.Optional(Type.String()),
    },
    { additionalProperties: Type.String() },
  );
  app.get('/api/v1/series', { schema: { querystring: SeriesQs } }, async (req) => {
    const q = req.query as Record<string, string> & { step?: number; limit?: number; agg?: SeriesAgg };
    const now = Date.now();
    const to = parseTime(q.to, now, now);
    const from = parseTime(q.from, to - 3_600_000, now);
    if (from >= to) throw new ApiError(400, `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(q)) if (k.startsWith('l.')) labels[k.slice(2)] = String(v);
    const series = await deps.queries.readSeries({ metric: q.metric, device: q.device, series: q.series, labels, from, to, step: q.step, agg: q.agg, limit: q.limit });
    return { metric: q.metric, from, to, step: q.step ?? null, series };
  });
  app.get('/api/v1/series/list', async (req) => {
    const q = req.query as Record<string, string>;
    return { series: await deps.queries.listSeries({ metric: q.metric, device: q.device, limit: Math.min(10_000, Number(q.limit ?? 1000) || 1000) }) };
  });
  app.get('/api/v1/devices', async () => ({ devices: await deps.queries.listDevices() }));

  const runSql = async (sql: unknown, format: unknown, reply: import('fastify').FastifyReply) => {
    if (typeof sql !== 'string' || sql.trim() === '') throw new ApiError(400, 'give the query as `sql` (JSON body) or `q` (query string)');
    if (sql.length > 100_000) throw new ApiError(400, 'query longer than 100000 characters');
    const fmt = format === 'csv' ? 'csv' : format === undefined || format === 'json' ? 'json' : null;
    if (fmt === null) throw new ApiError(400, `format must be json or csv, got ${JSON.stringify(format)}`);
    const res = await deps.queries.sql(sql, fmt);
    await reply.header('content-type', res.contentType).send(res.body);
  };
  app.post('/api/v1/sql', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    await runSql(b.sql, b.format ?? (req.query as Record<string, unknown>).format, reply);
  });
  app.get('/api/v1/sql', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    await runSql(q.q ?? q.sql, q.format, reply);
  });

  if (deps.alerts) alertRoutes(deps.alerts)(app);
  for (const p of deps.plugins ?? []) await p(app);
  return app;
}
