import type { FastifyInstance } from 'fastify';
import { targetStatus, formatStatus } from '../ingest/snmp/status.js';

/**
 * Poller health for the NOC: GET /api/v1/snmp/targets lists the targets this process polls, slowest
 * and failing first (JSON, or a text table with ?format=text). Pollers in other processes export
 * the same figures as per-target self-metrics on their /metrics.
 */
export function snmpRoutes(app: FastifyInstance): void {
  app.get('/api/v1/snmp/targets', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const rows = targetStatus();
    const limit = Math.max(1, Math.min(10_000, Number(q.limit ?? 100) || 100));
    if (q.format === 'text') return reply.header('content-type', 'text/plain; charset=utf-8').send(formatStatus(rows.slice(0, limit)));
    return { targets: rows.slice(0, limit), total: rows.length };
  });
}
