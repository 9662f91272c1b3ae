import { Type, type Static } from '@sinclair/typebox';
import type { Bus, BusConsumer, ConsumedBatch, BatchContext } from '../core/bus.js';
import { validate } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { M, counter, histogram } from '../core/metrics.js';

/**
 * Alert notifications to ticketing: the processors put Alertmanager v4 webhook payloads on the
 * notifications topic (one per alert group flush); this posts each to the receiver its route names,
 * so an Alertmanager webhook receiver (ticketing bridge, chat relay) works unchanged.
 *
 * At least once, in order per group: an offset is committed only after the receiver answered 2xx.
 * A failing receiver is retried with exponential backoff up to `maxRetryMs`; then the notification
 * is dropped, logged and counted, so one broken receiver cannot hold the others back for ever.
 * Receivers deduplicate on groupKey + alerts' fingerprints and startsAt, as for Alertmanager.
 */

export const WebhookConfig = Type.Object({
  topic: Type.String({ default: 'noctua.notifications' }),
  groupId: Type.String({ default: 'noctua-webhooks' }),
  receivers: Type.Array(
    Type.Object({
      name: Type.String({ minLength: 1, description: 'the route receiver name in the rule file' }),
      url: Type.String({ pattern: '^https?://' }),
      /** Sent as `Authorization: Bearer ...`; never logged. */
      token: Type.Optional(Type.String()),
      timeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
    }),
    { default: [] },
  ),
  retryMinMs: Type.Integer({ minimum: 1, default: 1000 }),
  maxRetryMs: Type.Integer({ minimum: 1, default: 3_600_000, description: 'give up on one notification after retrying this long' }),
});
export type WebhookConfig = Static<typeof WebhookConfig>;

export function webhookConfig(raw: unknown): WebhookConfig {
  return validate(WebhookConfig, raw, 'config.notify');
}

const sent = counter('noctua_webhook_notifications_total', 'Alert notifications posted, by receiver and outcome', ['receiver', 'outcome']);
const seconds = histogram('noctua_webhook_request_seconds', 'Webhook POST latency', ['receiver'], [0.05, 0.1, 0.5, 1, 5, 10]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WebhookSender {
  stop(): Promise<void>;
}

export async function startWebhookSender(bus: Bus, cfg: WebhookConfig, log: Logger): Promise<WebhookSender> {
  const receivers = new Map(cfg.receivers.map((r) => [r.name, r]));
  const consumer: BusConsumer = bus.consumer({ groupId: cfg.groupId, fromBeginning: true, readCommitted: true });
  let running = true;
  await consumer.subscribe([cfg.topic]);

  const post = async (name: string, body: Buffer): Promise<'ok' | 'retry'> => {
    const r = receivers.get(name)!;
    const t = Date.now();
    try {
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(r.token ? { authorization: `Bearer ${r.token}` } : {}) },
        body,
        signal: AbortSignal.timeout(r.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      seconds.observe({ receiver: name }, (Date.now() - t) / 1000);
      if (res.ok) return 'ok';
      log.warn({ receiver: name, status: res.status }, 'webhook receiver refused a notification; retrying');
    } catch (err) {
      log.warn({ receiver: name, err: (err as Error).message }, 'webhook receiver unreachable; retrying');
    }
    M.errors.inc({ component: 'webhook', kind: 'post' });
    return 'retry';
  };

  await consumer.run({
    async eachBatch(batch: ConsumedBatch, ctx: BatchContext) {
      for (const m of batch.messages) {
        if (!running || !ctx.isRunning()) return;
        if (m.value) {
          let name: string | undefined;
          try {
            name = (JSON.parse(m.value.toString('utf8')) as { receiver?: string }).receiver;
          } catch {
            M.rejected.inc({ topic: batch.topic, reason: 'json' });
            log.warn({ topic: batch.topic, partition: batch.partition, offset: m.offset }, 'malformed notification skipped');
          }
          if (name !== undefined && !receivers.has(name)) {
            sent.inc({ receiver: name, outcome: 'no_receiver' });
            log.debug({ receiver: name }, 'notification for a receiver with no webhook configured');
          } else if (name !== undefined) {
            const started = Date.now();
            let wait = cfg.retryMinMs;
            for (;;) {
              if ((await post(name, m.value)) === 'ok') {
                sent.inc({ receiver: name, outcome: 'delivered' });
                break;
              }
              if (Date.now() - started > cfg.maxRetryMs) {
                sent.inc({ receiver: name, outcome: 'dropped' });
                log.error({ receiver: name, topic: batch.topic, partition: batch.partition, offset: m.offset }, 'notification dropped after retrying for maxRetryMs');
                break;
              }
              if (!running || !ctx.isRunning()) return;
              await ctx.heartbeat();
              await sleep(wait);
              wait = Math.min(wait * 2, 60_000);
            }
          }
        }
        await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(m.offset) + 1n).toString() }]);
      }
    },
  });
  return {
    async stop() {
      running = false;
      await consumer.stop();
    },
  };
}
