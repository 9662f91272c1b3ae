import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { counter } from '../core/metrics.js';
import type { ClickHouse } from '../storage/clickhouse.js';
import { str } from '../storage/query.js';
import type { Ack, AlertChange, Silence } from '../processors/alerts.js';
import { CommandError, MatcherSchema, encodeCommand, newSilenceId, type CommandBody, type CommandSender, type SilenceBook, type SilenceCommand } from '../processors/commands.js';
import { parseDuration } from '../processors/window.js';
import { parseTime } from './server.js';

/**
 * Alert operations for the NOC:
 *   GET    /api/v1/alerts?state=&severity=&device=&limit=&source=   current state per fingerprint
 *   POST   /api/v1/alerts/:fingerprint/ack {by, comment}           acknowledge (stops repeats until resolved)
 *   (every write takes ?wait=<duration>, at most 30 s: answer once the command is seen applied)
 *   POST   /api/v1/alerts/:fingerprint/unack {by}                  withdraw the acknowledgement
 *   GET    /api/v1/silences                                        run-time silences (the local processors', else the silence book's)
 *   POST   /api/v1/silences {matchers, startsAt?, endsAt | duration, createdBy, comment, id?}
 *   DELETE /api/v1/silences/:id?by=                                expire a silence now
 *
 * Writes are operator commands on the processors' input topic (processors/commands.ts), so they reach
 * whichever `noctua process` instance holds the alert, in order with the samples and exactly once.
 * They are accepted (202/201) once the bus has them; the processor applies them as it reaches them.
 * With ?wait=5s a write answers once it sees its command applied - in the processors of this process,
 * or for acks in alert_history - (200/201, status "applied", with the alert or silence as it now is),
 * and still 202/201 "accepted" when it cannot tell or the time runs out: read-your-writes for a
 * ticketing system that acknowledges then reads back.
 * Reads come from the processor(s) in this process when there are any (their state is the truth), else
 * from ClickHouse's alert_history (the latest row per fingerprint).
 */

/** What the routes need from processors running in this process. */
export interface LocalAlerts {
  activeAlerts(): AlertChange[];
  silences(): Silence[];
}

export interface AlertRoutesDeps {
  /** Produces commands to the processors' input topic; null when this process has no bus. */
  readonly commands: CommandSender | null;
  /** Processors in this process (none: null). */
  readonly local: () => LocalAlerts | null;
  /** alert_history, for processes without a processor (and for resolved alerts). */
  readonly ch: ClickHouse | null;
  /** The silences the API issued (compacted topic), listed where no processor runs in this process. */
  readonly silences?: SilenceBook | null;
}

/** One alert as the API shows it. */
export interface AlertView {
  readonly fingerprint: string;
  readonly state: 'pending' | 'firing' | 'resolved';
  readonly rule: string;
  readonly severity: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly value: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  /** Time of the latest change. */
  readonly updatedAt: number;
  readonly suppressedBy: string | null;
  readonly flapping: boolean;
  readonly ack: Ack | null;
}

const rejected = counter('noctua_api_alert_rejections_total', 'Alert and silence requests refused, by route and reason', ['route', 'reason']);
const accepted = counter('noctua_api_alert_commands_total', 'Operator commands accepted by the API', ['type']);

const STATES = ['pending', 'firing', 'resolved'] as const;
const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
const FP = '^[0-9a-f]{16}$';

function view(c: AlertChange): AlertView {
  return {
    fingerprint: c.fingerprint, state: c.state, rule: c.rule, severity: c.severity, labels: { ...c.labels }, annotations: { ...c.annotations },
    value: c.value, startsAt: c.startsAt, endsAt: c.endsAt, updatedAt: c.ts, suppressedBy: c.suppressedBy, flapping: c.flapping, ack: c.ack,
  };
}

interface Filter {
  states: Set<string>;
  severities: Set<string> | null;
  device: string | null;
  limit: number;
}

/** Latest alert_history row per fingerprint (argMax over one tuple, so every field comes from the same row). */
export async function alertsFromHistory(ch: ClickHouse, f: Filter & { fingerprint?: string }): Promise<AlertView[]> {
  const legacy = ch.profile === 'legacy';
  const db = ch.database;
  const ms = (col: string) => (legacy ? `toUInt64(${col}) * 1000` : `toUnixTimestamp64Milli(${col})`);
  const tsMs = legacy ? `toUInt64(ts) * 1000 + ms` : ms('ts');
  const fields = [
    `${tsMs}`, 'state', 'rule', 'severity',
    legacy ? 'label_keys' : 'mapKeys(labels)', legacy ? 'label_values' : 'mapValues(labels)',
    legacy ? 'annotation_keys' : 'mapKeys(annotations)', legacy ? 'annotation_values' : 'mapValues(annotations)',
    'value', ms('starts_at'), `if(isNull(ends_at), toInt64(-1), toInt64(${ms('assumeNotNull(ends_at)')}))`, 'suppressed_by', 'flapping',
    'ack_by', `if(isNull(ack_at), toInt64(-1), toInt64(${ms('assumeNotNull(ack_at)')}))`, 'ack_comment',
  ];
  const names = ['ts', 'state', 'rule', 'severity', 'lk', 'lv', 'ak', 'av', 'value', 'starts', 'ends', 'suppressed', 'flapping', 'ack_by', 'ack_at', 'ack_comment'];
  const where: string[] = [];
  if (f.device !== null) where.push(`device = ${str(f.device)}`);
  if (f.fingerprint) where.push(`fingerprint = ${str(f.fingerprint)}`);
  const outer: string[] = [`tupleElement(l, 2) IN (${[...f.states].map(str).join(', ')})`];
  if (f.severities) outer.push(`tupleElement(l, 4) IN (${[...f.severities].map(str).join(', ')})`);
  const query = `SELECT fingerprint, ${names.map((n, i) => `tupleElement(l, ${i + 1}) AS ${n}`).join(', ')}
    FROM (SELECT fingerprint, argMax(tuple(${fields.join(', ')}), ${tsMs}) AS l FROM ${db}.alert_history ${where.length ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY fingerprint)
    WHERE ${outer.join(' AND ')} ORDER BY ts DESC, fingerprint LIMIT ${Math.trunc(f.limit)}`;
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  const rows = await rs.json<Record<string, unknown>>();
  const zip = (k: unknown, v: unknown) => Object.fromEntries((k as string[]).map((x, i) => [x, (v as string[])[i] ?? '']));
  return rows.map((r) => {
    const ends = Number(r.ends);
    const ackAt = Number(r.ack_at);
    return {
      fingerprint: String(r.fingerprint), state: r.state as AlertView['state'], rule: String(r.rule), severity: String(r.severity),
      labels: zip(r.lk, r.lv), annotations: zip(r.ak, r.av), value: Number(r.value), startsAt: Number(r.starts), endsAt: ends < 0 ? null : ends,
      updatedAt: Number(r.ts), suppressedBy: r.suppressed ? String(r.suppressed) : null, flapping: Number(r.flapping) === 1,
      ack: r.ack_by ? { by: String(r.ack_by), at: ackAt < 0 ? 0 : ackAt, comment: String(r.ack_comment ?? '') } : null,
    };
  });
}

const AlertsQs = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 100 })),
  severity: Type.Optional(Type.String({ maxLength: 100 })),
  device: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  source: Type.Optional(Type.Union([Type.Literal('processor'), Type.Literal('history')])),
  token: Type.Optional(Type.String()),
}, { additionalProperties: false });
const FpParams = Type.Object({ fingerprint: Type.String({ pattern: FP }) });
const AckBody = Type.Object({ by: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), comment: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });
const SilenceBody = Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  matchers: Type.Array(MatcherSchema, { minItems: 1, maxItems: 50 }),
  startsAt: Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 0 })])),
  endsAt: Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 0 })])),
  duration: Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 1 })])),
  createdBy: Type.String({ minLength: 1, maxLength: 200 }),
  comment: Type.Optional(Type.String({ maxLength: 2000 })),
}, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const WAIT = { wait: Type.Optional(Type.String({ maxLength: 20 })) };
const ByQs = Type.Object({ by: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), token: Type.Optional(Type.String()), ...WAIT }, { additionalProperties: false });
const WaitQs = Type.Object({ token: Type.Optional(Type.String()), ...WAIT }, { additionalProperties: false });
/** The longest a write waits to see its command applied (?wait=). */
const MAX_WAIT_MS = 30_000;

type Req = FastifyRequest & { validationError?: Error };

export function alertRoutes(deps: AlertRoutesDeps) {
  return (app: FastifyInstance): void => {
    /** A 4xx with a clear message, counted by route and reason. */
    const refuse = (reply: FastifyReply, req: FastifyRequest, status: number, reason: string, message: string) => {
      rejected.inc({ route: req.routeOptions.url ?? 'unknown', reason });
      return reply.code(status).send({ error: reason, message });
    };
    /** Schema errors of this route, answered here so they are counted like the others. */
    const invalid = (req: Req, reply: FastifyReply) => (req.validationError ? refuse(reply, req, 400, 'invalid', req.validationError.message) : null);
    const send = async (req: FastifyRequest, reply: FastifyReply, body: CommandBody): Promise<{ partitions: number[] } | null> => {
      if (!deps.commands) {
        await refuse(reply, req, 503, 'no_bus', 'this process has no bus producer for operator commands (run the serve role with a bus)');
        return null;
      }
      try {
        encodeCommand(body);
      } catch (err) {
        if (err instanceof CommandError) {
          await refuse(reply, req, 400, 'invalid', err.message);
          return null;
        }
        throw err;
      }
      const res = await deps.commands.send(body);
      accepted.inc({ type: body.type });
      return res;
    };

    /** ?wait=<duration>: how long the write may wait to see its command applied (0 = answer once it is on the bus). */
    const waitOf = (req: Req): number => {
      const w = (req.query as { wait?: string } | undefined)?.wait;
      if (w === undefined || w === '') return 0;
      const ms = parseDuration(w, 'wait');
      if (ms > MAX_WAIT_MS) throw new Error(`wait ${w} is longer than ${MAX_WAIT_MS / 1000} s`);
      return ms;
    };
    /** The write's ?wait, or null once a bad one was answered with a 400. */
    const waitOr400 = async (req: Req, reply: FastifyReply): Promise<number | null> => {
      try {
        return waitOf(req);
      } catch (err) {
        await refuse(reply, req, 400, 'invalid_wait', (err as Error).message);
        return null;
      }
    };
    /**
     * Polls `applied` until it holds or `ms` pass. Null when nothing in this process can tell (no
     * local processor and, for alerts, no alert_history): the command is on the bus either way.
     */
    const waitApplied = async <T>(ms: number, applied: () => Promise<T | null | 'unknown'>): Promise<T | null | 'unknown'> => {
      const until = Date.now() + ms;
      for (;;) {
        const r = await applied();
        if (r === 'unknown' || r !== null || Date.now() >= until) return r;
        await new Promise((res) => setTimeout(res, 50));
      }
    };

    const list = (v: string | undefined, allowed: readonly string[], what: string): Set<string> | null => {
      if (v === undefined || v === '' || v === 'all') return null;
      const items = v.split(',').map((x) => x.trim()).filter(Boolean);
      const bad = items.filter((x) => !allowed.includes(x));
      if (bad.length > 0) throw Object.assign(new Error(`unknown ${what} ${bad.map((b) => JSON.stringify(b)).join(', ')}: use ${allowed.join(', ')} (comma-separated) or all`), { reason: `bad_${what}` });
      return new Set(items);
    };

    /** Current alerts: the local processors' (pending/firing only) or alert_history's latest rows. */
    const current = async (f: Filter, source: 'processor' | 'history' | undefined, fingerprint?: string): Promise<{ source: string; alerts: AlertView[] } | null> => {
      const local = deps.local();
      const wantsResolved = f.states.has('resolved');
      if (local && source !== 'history' && (!wantsResolved || !deps.ch || source === 'processor')) {
        const alerts = local.activeAlerts().map(view).filter((a) =>
          f.states.has(a.state) && (!f.severities || f.severities.has(a.severity)) && (f.device === null || a.labels.device === f.device) && (!fingerprint || a.fingerprint === fingerprint));
        alerts.sort((a, b) => b.updatedAt - a.updatedAt || (a.fingerprint < b.fingerprint ? -1 : 1));
        return { source: 'processor', alerts: alerts.slice(0, f.limit) };
      }
      if (!deps.ch || source === 'processor') return null;
      return { source: 'history', alerts: await alertsFromHistory(deps.ch, { ...f, ...(fingerprint ? { fingerprint } : {}) }) };
    };

    app.get('/api/v1/alerts', { schema: { querystring: AlertsQs }, attachValidation: true }, async (req: Req, reply) => {
      const bad = invalid(req, reply);
      if (bad) return bad;
      const q = req.query as { state?: string; severity?: string; device?: string; limit?: number; source?: 'processor' | 'history' };
      let f: Filter;
      try {
        f = { states: list(q.state, STATES, 'state') ?? new Set(q.state === 'all' ? STATES : ['pending', 'firing']), severities: list(q.severity, SEVERITIES, 'severity'), device: q.device ?? null, limit: q.limit ?? 1000 };
      } catch (err) {
        return refuse(reply, req, 400, (err as { reason: string }).reason, (err as Error).message);
      }
      const res = await current(f, q.source);
      if (!res) return refuse(reply, req, 503, 'no_source', q.source === 'processor' ? 'no processor runs in this process' : 'no processor in this process and no ClickHouse to read alert_history from');
      return res;
    });

    const findActive = async (fp: string): Promise<AlertView | null | 'unknown'> => {
      const res = await current({ states: new Set(STATES), severities: null, device: null, limit: 1 }, undefined, fp);
      if (!res) return 'unknown';
      return res.alerts[0] ?? null;
    };

    const ackRoute = (type: 'ack' | 'unack') => async (req: Req, reply: FastifyReply) => {
      const bad = invalid(req, reply);
      if (bad) return bad;
      const { fingerprint } = req.params as { fingerprint: string };
      const b = (req.body ?? {}) as { by?: string; comment?: string };
      const wait = await waitOr400(req, reply);
      if (wait === null) return reply;
      if (!b.by) return refuse(reply, req, 400, 'missing_by', `${type === 'ack' ? 'acknowledging' : 'withdrawing an acknowledgement'} needs who does it: give "by" in the body (the API token carries no name)`);
      const a = await findActive(fingerprint);
      // Neither a local processor nor ClickHouse to check against: the command still reaches every partition.
      if (a === null) return refuse(reply, req, 404, 'not_found', `no alert with fingerprint ${fingerprint}`);
      if (a !== 'unknown' && a.state === 'resolved') return refuse(reply, req, 409, 'resolved', `alert ${fingerprint} is resolved; an acknowledgement covers one firing episode`);
      const at = Date.now();
      const device = a === 'unknown' ? undefined : a.labels.device;
      const body: CommandBody = type === 'ack'
        ? { type, fingerprint, ...(device ? { device } : {}), by: b.by, comment: b.comment ?? '', at }
        : { type, fingerprint, ...(device ? { device } : {}), by: b.by, at };
      const sent = await send(req, reply, body);
      if (!sent) return reply;
      if (wait > 0) {
        // applied = the alert (processor state, else its latest alert_history row) shows this very command
        const seen = await waitApplied(wait, async () => {
          const v = await findActive(fingerprint);
          if (v === 'unknown') return 'unknown';
          // (alert_history on an old server keeps whole seconds)
          const done = type === 'ack' ? v?.ack?.by === b.by && Math.abs((v?.ack?.at ?? -Infinity) - at) < 1000 : v !== null && v.ack === null;
          return done ? v : null;
        });
        if (seen !== null && seen !== 'unknown') return reply.code(200).send({ status: 'applied', command: body, partitions: sent.partitions, alert: seen });
      }
      return reply.code(202).send({ status: 'accepted', command: body, partitions: sent.partitions });
    };
    app.post('/api/v1/alerts/:fingerprint/ack', { schema: { params: FpParams, body: AckBody, querystring: WaitQs }, attachValidation: true }, ackRoute('ack'));
    app.post('/api/v1/alerts/:fingerprint/unack', { schema: { params: FpParams, body: AckBody, querystring: WaitQs }, attachValidation: true }, ackRoute('unack'));

    /** A silence as the processors in this process hold it (null: not (yet); 'unknown': no processor here). */
    const localSilence = async (id: string): Promise<Silence | null | 'unknown'> => {
      const local = deps.local();
      if (!local) return 'unknown';
      return local.silences().find((x) => x.id === id) ?? null;
    };

    /** Silences as this process knows them: its processors' state, else the book of issued silences. */
    const knownSilences = (): { source: string; list: Silence[] } | null => {
      const local = deps.local();
      if (local) return { source: 'processor', list: local.silences() };
      if (deps.silences) return { source: 'book', list: deps.silences.list() };
      return null;
    };

    app.get('/api/v1/silences', async (req, reply) => {
      const known = knownSilences();
      if (!known) return refuse(reply, req, 503, 'no_source', 'no processor and no silence book in this process');
      const now = Date.now();
      return { source: known.source, silences: known.list.map((s) => ({ ...s, status: now < s.startsAt ? 'pending' : now < s.endsAt ? 'active' : 'expired' })) };
    });

    app.post('/api/v1/silences', { schema: { body: SilenceBody, querystring: WaitQs }, attachValidation: true }, async (req: Req, reply) => {
      const bad = invalid(req, reply);
      if (bad) return bad;
      const wait = await waitOr400(req, reply);
      if (wait === null) return reply;
      const b = req.body as { id?: string; matchers: Silence['matchers']; startsAt?: string | number; endsAt?: string | number; duration?: string | number; createdBy: string; comment?: string };
      const now = Date.now();
      let startsAt: number;
      let endsAt: number;
      try {
        startsAt = parseTime(b.startsAt === undefined ? undefined : String(b.startsAt), now, now);
        if (b.endsAt !== undefined && b.duration !== undefined) throw new Error('give endsAt or duration, not both');
        if (b.endsAt !== undefined) endsAt = parseTime(String(b.endsAt), now, now);
        else if (b.duration !== undefined) endsAt = startsAt + parseDuration(b.duration, 'duration');
        else throw new Error('a silence needs an end: endsAt (time) or duration (e.g. "2h")');
      } catch (err) {
        return refuse(reply, req, 400, 'invalid_time', (err as Error).message);
      }
      if (endsAt <= now) return refuse(reply, req, 400, 'invalid_time', `the silence would end in the past (${new Date(endsAt).toISOString()})`);
      const body: CommandBody = { type: 'silence', id: b.id ?? newSilenceId(), matchers: b.matchers.map((m) => ({ ...m })), startsAt, endsAt, createdBy: b.createdBy, createdAt: now, comment: b.comment ?? '' };
      const sent = await send(req, reply, body);
      if (!sent) return reply;
      await deps.silences?.record({ noctua: 'command', v: 1, ...body } as SilenceCommand);
      const { type: _t, ...silence } = body;
      if (wait > 0) {
        const seen = await waitApplied(wait, async () => {
          const x = await localSilence(body.id);
          return x === 'unknown' || x === null ? x : x.endsAt === body.endsAt && x.startsAt === body.startsAt ? x : null;
        });
        if (seen !== null && seen !== 'unknown') return reply.code(201).send({ status: 'applied', silence, partitions: sent.partitions });
      }
      return reply.code(201).send({ status: 'accepted', silence, partitions: sent.partitions });
    });

    app.delete('/api/v1/silences/:id', { schema: { params: IdParams, querystring: ByQs }, attachValidation: true }, async (req: Req, reply) => {
      const bad = invalid(req, reply);
      if (bad) return bad;
      const { id } = req.params as { id: string };
      const by = (req.query as { by?: string }).by;
      const wait = await waitOr400(req, reply);
      if (wait === null) return reply;
      if (!by) return refuse(reply, req, 400, 'missing_by', 'expiring a silence needs who does it: ?by=<name> (the API token carries no name)');
      const known = knownSilences();
      const s = known?.list.find((x) => x.id === id);
      if (known && !s) return refuse(reply, req, 404, 'not_found', `no silence with id ${id}`);
      const body: CommandBody = { type: 'expire-silence', id, by, at: Date.now() };
      const sent = await send(req, reply, body);
      if (!sent) return reply;
      // The book keeps the silence with its new end (the processors compute the same from the command).
      const book = deps.silences?.get(id);
      if (book) await deps.silences!.record({ noctua: 'command', v: 1, type: 'silence', ...book, createdAt: book.createdAt ?? body.at, matchers: book.matchers.map((m) => ({ ...m })), endsAt: Math.max(book.startsAt + 1, Math.min(book.endsAt, body.at)) });
      if (wait > 0) {
        const seen = await waitApplied(wait, async () => {
          const x = await localSilence(id);
          return x === 'unknown' || x === null ? x : x.endsAt <= Math.max(x.startsAt + 1, body.at) ? x : null;
        });
        if (seen !== null && seen !== 'unknown') return reply.code(200).send({ status: 'applied', command: body, partitions: sent.partitions, silence: seen });
      }
      return reply.code(202).send({ status: 'accepted', command: body, partitions: sent.partitions });
    });
  };
}
