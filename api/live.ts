import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import type { Bus, BusConsumer } from '../core/bus.js';
import type { Logger } from '../core/log.js';
import { counter, gauge } from '../core/metrics.js';
import { TOPICS } from '../core/types.js';
import { decodeRollups } from '../processors/rollup-codec.js';
import type { RollupRecord } from '../processors/runner.js';

/**
 * The live hub: NOC screens subscribe over WebSocket to metrics (per device, per window) and to
 * alert transitions; the hub tails the rollups and alerts topics (from the newest offset, no commits:
 * live views need the present, history comes from ClickHouse) and pushes what matches.
 *
 * Protocol (JSON text frames):
 *   client -> {"op":"subscribe","id":"cpu","metric":"hrProcessorLoad","device":"core-rtr-1","window":"10s"}
 *             {"op":"unsubscribe","id":"cpu"}   {"op":"alerts"}   {"op":"ping"}
 *   server -> {"type":"point","sub":"cpu","metric":...,"labels":{...},"ts":end,"avg":..,"min":..,"max":..,"last":..}
 *             {"type":"alert",...transition}   {"type":"error","message":...}   {"type":"pong"}
 * Bounds: frames over api.maxWsPayloadBytes close the socket (1009); 50 subscriptions per client;
 * a client that reads too slowly has points dropped (counted) rather than growing server memory.
 */

const wsClients = gauge('noctua_ws_clients', 'Connected WebSocket clients');
const wsRejected = counter('noctua_ws_rejected_total', 'WebSocket frames or clients rejected', ['reason']);
const wsDropped = counter('noctua_ws_dropped_total', 'Points not sent to slow WebSocket clients');
const wsSent = counter('noctua_ws_messages_total', 'Messages pushed to WebSocket clients', ['type']);

const MAX_SUBS = 50;
const MAX_BUFFERED = 1 << 20;

interface Subscription {
  readonly id: string;
  readonly metric: string;
  readonly device?: string;
  readonly window: string;
  readonly labels: Readonly<Record<string, string>>;
}

interface Client {
  readonly ws: WebSocket;
  readonly subs: Map<string, Subscription>;
  alerts: boolean;
}

export class LiveHub {
  private readonly clients = new Set<Client>();
  private consumer: BusConsumer | null = null;

  constructor(private readonly bus: Bus, private readonly log: Logger, private readonly maxPayload: number) {}

  async start(): Promise<void> {
    const c = this.bus.consumer({ groupId: `noctua-live-${process.pid}-${Date.now()}`, fromBeginning: false, ephemeral: true });
    this.consumer = c;
    await c.subscribe([TOPICS.rollups, TOPICS.alerts]);
    await c.run({
      eachBatch: async (b) => {
        if (this.clients.size === 0) return;
        for (const m of b.messages) {
          if (!m.value) continue;
          try {
            if (b.topic === TOPICS.alerts) this.pushAlert(JSON.parse(m.value.toString('utf8')));
            else for (const r of decodeRollups(m.value)) this.pushRollup(r);
          } catch {
            wsRejected.inc({ reason: 'bad_record' });
          }
        }
      },
    });
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.ws.close(1001, 'server stopping');
    await this.consumer?.stop();
  }

  private send(c: Client, type: string, msg: unknown): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (c.ws.bufferedAmount > MAX_BUFFERED) {
      wsDropped.inc();
      return;
    }
    c.ws.send(JSON.stringify(msg));
    wsSent.inc({ type });
  }

  private pushRollup(r: RollupRecord): void {
    for (const c of this.clients) {
      for (const s of c.subs.values()) {
        if (s.metric !== r.metric || s.window !== r.window) continue;
        if (s.device !== undefined && r.labels.device !== s.device) continue;
        if (Object.entries(s.labels).some(([k, v]) => r.labels[k] !== v)) continue;
        this.send(c, 'point', { type: 'point', sub: s.id, metric: r.metric, labels: r.labels, window: r.window, ts: r.end, avg: r.avg, min: r.min, max: r.max, last: r.last, correction: r.kind === 'correction' });
      }
    }
  }

  private pushAlert(a: unknown): void {
    for (const c of this.clients) if (c.alerts) this.send(c, 'alert', { type: 'alert', ...(a as object) });
  }

  /** Registers the WebSocket route on an app whose auth hook already checked the token. */
  async register(app: FastifyInstance): Promise<void> {
    await app.register(websocket, { options: { maxPayload: this.maxPayload } });
    app.get('/api/v1/live', { websocket: true }, (ws: WebSocket) => {
      const client: Client = { ws, subs: new Map(), alerts: false };
      this.clients.add(client);
      wsClients.set(this.clients.size);
      ws.on('error', (err: Error & { code?: string }) => {
        // ws closes the socket itself with 1009 on an oversized frame; count it and move on.
        wsRejected.inc({ reason: err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'oversized' : 'socket_error' });
        this.log.warn({ err: err.message }, 'websocket client error');
      });
      ws.on('close', () => {
        this.clients.delete(client);
        wsClients.set(this.clients.size);
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(client, data, isBinary));
    });
  }

  private onMessage(c: Client, data: Buffer, isBinary: boolean): void {
    const fail = (message: string) => {
      wsRejected.inc({ reason: 'bad_request' });
      this.send(c, 'error', { type: 'error', message });
    };
    if (isBinary) return fail('send JSON text frames');
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail('not JSON');
    }
    if (typeof m !== 'object' || m === null) return fail('expected an object');
    switch (m.op) {
      case 'ping':
        return this.send(c, 'pong', { type: 'pong' });
      case 'alerts':
        c.alerts = true;
        return this.send(c, 'ack', { type: 'ack', op: 'alerts' });
      case 'unsubscribe':
        c.subs.delete(String(m.id));
        return this.send(c, 'ack', { type: 'ack', op: 'unsubscribe', id: String(m.id) });
      case 'subscribe': {
        if (typeof m.metric !== 'string' || m.metric.length === 0 || m.metric.length > 200) return fail('subscribe needs a metric');
        const id = typeof m.id === 'string' && m.id.length <= 100 ? m.id : m.metric;
        if (!c.subs.has(id) && c.subs.size >= MAX_SUBS) return fail(`at most ${MAX_SUBS} subscriptions per connection`);
        const labels: Record<string, string> = {};
        if (typeof m.labels === 'object' && m.labels !== null) for (const [k, v] of Object.entries(m.labels)) if (typeof v === 'string') labels[k] = v;
        c.subs.set(id, { id, metric: m.metric, device: typeof m.device === 'string' ? m.device : undefined, window: typeof m.window === 'string' ? m.window : '10s', labels });
        return this.send(c, 'ack', { type: 'ack', op: 'subscribe', id });
      }
      default:
        return fail(`unknown op ${JSON.stringify(m.op)}: subscribe, unsubscribe, alerts, ping`);
    }
  }
}
