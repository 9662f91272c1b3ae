import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { DemoSource } from '../ingest/demo/source.js';
import { INCIDENT_KINDS } from '../ingest/demo/network.js';

/** Lets a trainer or a test inject an incident into the demo network: POST /api/v1/demo/incidents. */
export function demoRoutes(demo: () => DemoSource | null) {
  return (app: FastifyInstance) => {
    const Body = Type.Object({
      device: Type.String(),
      ifIndex: Type.Integer({ minimum: 1, default: 1 }),
      kind: Type.Union(INCIDENT_KINDS.map((k) => Type.Literal(k))),
      durationMs: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 120_000 }),
    });
    app.post('/api/v1/demo/incidents', { schema: { body: Body } }, async (req, reply) => {
      const d = demo();
      if (!d) return reply.code(409).send({ error: 'conflict', message: 'the demo network is not running in this process' });
      const b = req.body as { device: string; ifIndex: number; kind: (typeof INCIDENT_KINDS)[number]; durationMs: number };
      if (!d.network.deviceNames.includes(b.device)) return reply.code(404).send({ error: 'not_found', message: `no demo device ${b.device}; devices: ${d.network.deviceNames.join(', ')}` });
      return reply.code(201).send({ incident: d.inject(b) });
    });
  };
}
