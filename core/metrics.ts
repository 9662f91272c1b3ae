import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

/**
 * Self-metrics, Prometheus format, one registry per process. Modules register their metrics here
 * at import time through `metric()`, so /metrics shows every role that runs in the process.
 */
export const registry = new Registry();
// The runtime's own figures under their standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes,
// ...), as every Prometheus client exports them: the stock Node.js dashboards and alerts read them as they are.
collectDefaultMetrics({ register: registry });

const made = new Map<string, Counter | Gauge | Histogram>();

function once<T extends Counter | Gauge | Histogram>(name: string, make: () => T): T {
  const m = made.get(name);
  if (m) return m as T;
  const n = make();
  made.set(name, n);
  return n;
}

export function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return once(name, () => new Counter({ name, help, labelNames, registers: [registry] }));
}
export function gauge(name: string, help: string, labelNames: string[] = []): Gauge {
  return once(name, () => new Gauge({ name, help, labelNames, registers: [registry] }));
}
export function histogram(name: string, help: string, labelNames: string[] = [], buckets?: number[]): Histogram {
  return once(name, () => new Histogram({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) }));
}

/** The metrics every role shares; source- and stage-specific ones live beside their code. */
export const M = {
  samplesIngested: counter('noctua_samples_ingested_total', 'Samples produced to the bus by sources', ['source']),
  batchesIngested: counter('noctua_batches_ingested_total', 'Sample batches produced to the bus', ['source']),
  errors: counter('noctua_errors_total', 'Errors by component and kind', ['component', 'kind']),
  rejected: counter('noctua_rejected_messages_total', 'Malformed messages skipped, by topic', ['topic', 'reason']),
  busLag: gauge('noctua_bus_lag_messages', 'Consumer lag in messages per group, topic and partition', ['group', 'topic', 'partition']),
  sinkBatchRows: histogram('noctua_sink_batch_rows', 'Rows per ClickHouse insert', ['table'], [10, 100, 1000, 10_000, 50_000, 100_000, 500_000]),
  sinkInsertSeconds: histogram('noctua_sink_insert_seconds', 'ClickHouse insert latency', ['table'], [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  sinkRows: counter('noctua_sink_rows_total', 'Rows acknowledged by ClickHouse', ['table']),
  sinkRetries: counter('noctua_sink_retries_total', 'ClickHouse insert retries', ['table']),
};
