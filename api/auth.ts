import { timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { generateToken } from '../core/config.js';
import { counter } from '../core/metrics.js';

const denied = counter('noctua_api_auth_denied_total', 'Requests refused for a missing or wrong token', ['route']);

/** Routes anyone may call: liveness and readiness probes (load balancers carry no token). */
export const PUBLIC_ROUTES = new Set(['/health', '/ready']);

/**
 * The API token: from config/NOCTUA_TOKEN, else generated once and kept in <dataDir>/api-token (0600)
 * so it survives restarts and the dashboard bookmark keeps working.
 */
export function resolveToken(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const file = join(dataDir, 'api-token');
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return t;
  }
  mkdirSync(dataDir, { recursive: true });
  const t = generateToken();
  writeFileSync(file, t + '\n', { mode: 0o600 });
  return t;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export const COOKIE = 'noctua_token';

/**
 * Bearer token in Authorization, `?token=` (a WebSocket or a CSV link), or the dashboard's cookie
 * (set when the dashboard was opened with a valid `?token=`).
 */
export function tokenOf(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.startsWith('Bearer ')) return h.slice(7).trim();
  const q = (req.query as Record<string, unknown> | undefined)?.token;
  if (typeof q === 'string') return q;
  const c = req.headers.cookie;
  if (typeof c === 'string') {
    for (const part of c.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === COOKIE) return decodeURIComponent(v.join('='));
    }
  }
  return null;
}

export function authHook(token: string) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC_ROUTES.has(path)) return;
    const given = tokenOf(req);
    if (given !== null && same(given, token)) {
      // The dashboard opened with ?token= keeps a session cookie for its assets and API calls.
      if (path.startsWith('/ui') && typeof (req.query as Record<string, unknown>)?.token === 'string') {
        reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`);
      }
      return;
    }
    denied.inc({ route: req.routeOptions.url ?? 'unknown' });
    await reply.code(401).header('www-authenticate', 'Bearer realm="noctua"').send({ error: 'unauthorized', message: 'a valid token is required: Authorization: Bearer <token>' });
  };
}
