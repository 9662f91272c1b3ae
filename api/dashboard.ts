import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const here = fileURLToPath(new URL('../../api/static/', import.meta.url));
const uplotDist = join(dirname(createRequire(import.meta.url).resolve('uplot')), '');

/** The NOC dashboard: a static page (api/static) with uPlot, served from the package, no CDN. */
export async function dashboard(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, { root: here, prefix: '/ui/', index: 'index.html' });
  await app.register(fastifyStatic, { root: uplotDist, prefix: '/ui/vendor/', decorateReply: false });
  app.get('/', async (req, reply) => reply.redirect('/ui/' + (req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '')));
}
