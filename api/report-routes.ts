import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Reporter } from '../reports/reporter.js';

const TYPES: Readonly<Record<string, string>> = {
  pdf: 'application/pdf',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  csv: 'text/csv; charset=utf-8',
};

/**
 * Reports over the API: the list (schedules, next and last runs), a run now (`POST
 * /api/v1/reports/<name>/run`, optionally for another period and without e-mail), and the files of the
 * latest run. Runs happen in the process with the report role.
 */
export function reportRoutes(reporter: () => Reporter | null) {
  return (app: FastifyInstance) => {
    const here = (reply: { code(n: number): { send(b: unknown): unknown } }) => {
      const r = reporter();
      if (!r) reply.code(409).send({ error: 'conflict', message: 'reports run in the process with the report role (noctua start runs it; or noctua report)' });
      return r;
    };
    app.get('/api/v1/reports', async (_req, reply) => {
      const r = here(reply);
      if (!r) return reply;
      return { reports: r.list() };
    });
    const Body = Type.Object(
      {
        from: Type.Optional(Type.String({ description: 'ISO time; default: the report range before `to`' })),
        to: Type.Optional(Type.String({ description: 'ISO time; default: now' })),
        deliver: Type.Optional(Type.Boolean({ description: 'e-mail it to the report recipients (default true)' })),
      },
      { additionalProperties: false },
    );
    // No schema on the route: a bare `curl -X POST` (no body, no content type) runs the report as it is scheduled.
    app.post('/api/v1/reports/:name/run', async (req, reply) => {
      const r = here(reply);
      if (!r) return reply;
      const { name } = req.params as { name: string };
      if (!r.has(name)) return reply.code(404).send({ error: 'not_found', message: `no report ${name}` });
      const raw = req.body ?? {};
      if (!Value.Check(Body, raw)) {
        const first = [...Value.Errors(Body, raw)][0];
        return reply.code(400).send({ error: 'bad_request', message: `body${first?.path ?? ''}: ${first?.message ?? 'not valid'} (expected {from?, to?, deliver?})` });
      }
      const b = raw as { from?: string; to?: string; deliver?: boolean };
      const at = (s: string | undefined, what: string) => {
        if (s === undefined) return undefined;
        const t = Date.parse(s);
        if (!Number.isFinite(t)) throw Object.assign(new Error(`${what}: not a time: ${s}`), { statusCode: 400 });
        return t;
      };
      const from = at(b.from, 'from');
      const to = at(b.to, 'to');
      if (from !== undefined && to !== undefined && from >= to) return reply.code(400).send({ error: 'bad_request', message: 'from must be before to' });
      const result = await r.run(name, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), deliver: b.deliver ?? true });
      return reply.code(201).send({ ...result, dir: undefined, links: result.files.map((f) => `/api/v1/reports/${name}/latest/${f.name}`) });
    });
    app.get('/api/v1/reports/:name/latest/:file', async (req, reply) => {
      const r = here(reply);
      if (!r) return reply;
      const { name, file } = req.params as { name: string; file: string };
      const last = r.list().find((x) => x.name === name)?.last;
      // Only a file the latest run made: no path from the request reaches the disk.
      const made = last && 'files' in last ? last.files.find((f) => f.name === file) : undefined;
      if (!last || !('files' in last) || !made || !existsSync(join(last.dir, made.name))) return reply.code(404).send({ error: 'not_found', message: `no ${file} in the latest run of ${name}` });
      const ext = made.name.split('.').pop() ?? '';
      reply.header('content-type', TYPES[ext] ?? 'application/octet-stream');
      reply.header('content-disposition', `attachment; filename="${made.name}"`);
      return reply.send(createReadStream(join(last.dir, made.name)));
    });
  };
}
