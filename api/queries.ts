import type { Config } from '../core/config.js';
import type { ClickHouse } from '../storage/clickhouse.js';
import { listDevices, listSeries, readSeries, runReadOnlySql, QueryError, SqlQueryError, SqlRejectedError } from '../storage/query.js';
import { ApiError, type ApiQueries } from './server.js';

/** Binds the API to storage/query.ts; caller mistakes become 400s carrying the engine's own words. */
export function storageQueries(ch: ClickHouse, cfg: Config): ApiQueries {
  const asApi = (err: unknown): never => {
    if (err instanceof QueryError || err instanceof SqlQueryError || err instanceof SqlRejectedError) throw new ApiError(400, err.message);
    throw err;
  };
  return {
    async readSeries(q) {
      const labels = q.labels && Object.keys(q.labels).length > 0 ? q.labels : undefined;
      const res = await readSeries(ch, { metric: q.metric, device: q.device, series: q.series, labels, from: q.from, to: q.to, step: q.step, agg: q.agg, maxPoints: q.limit }).catch(asApi);
      return res.series.map((s) => ({ series: s.id, metric: s.metric, labels: { ...s.labels }, points: s.points.filter((p): p is [number, number] => p[1] !== null) }));
    },
    listSeries: (q) => listSeries(ch, q).catch(asApi),
    listDevices: () => listDevices(ch).catch(asApi),
    async sql(sql, format) {
      const res = await runReadOnlySql(ch, sql, { format, limits: cfg.api.sql }).catch(asApi);
      if (res.format === 'csv') return { contentType: 'text/csv; charset=utf-8', body: res.text };
      return { contentType: 'application/json; charset=utf-8', body: JSON.stringify({ meta: res.meta, data: res.data, rows: res.rows, elapsedMs: res.elapsedMs }) };
    },
  };
}
