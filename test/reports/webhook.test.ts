import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { MemoryBus } from '../../core/bus-memory.js';
import { createLogger } from '../../core/log.js';
import { startWebhookSender, webhookConfig } from '../../reports/webhook.js';
import { waitFor } from '../peers/util.js';

test('notifications reach their receiver over HTTP, retried through failures, in order, once each; unknown receivers and garbage are skipped', async () => {
  const got: { auth?: string; body: Record<string, unknown> }[] = [];
  let failures = 2;
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      if (failures-- > 0) {
        res.writeHead(503).end();
        return;
      }
      got.push({ auth: req.headers.authorization, body: JSON.parse(b) as Record<string, unknown> });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const bus = new MemoryBus();
  await bus.ensureTopics([{ topic: 'noctua.notifications', partitions: 2 }]);
  const cfg = webhookConfig({ receivers: [{ name: 'ticketing', url: `http://127.0.0.1:${port}/hook`, token: 'hook-secret-token' }], retryMinMs: 20 });
  const sender = await startWebhookSender(bus, cfg, createLogger('silent'));
  const payload = (n: number, receiver = 'ticketing') => Buffer.from(JSON.stringify({ version: '4', groupKey: 'g1', status: 'firing', receiver, alerts: [{ fingerprint: `f${n}` }] }));
  const producer = await bus.producer();
  await producer.send('noctua.notifications', [
    { key: 'g1', value: payload(1) },
    { key: 'g1', value: Buffer.from('{not json') },
    { key: 'g1', value: payload(2, 'nobody') },
    { key: 'g1', value: payload(3) },
  ]);
  await waitFor('two deliveries', () => got.length >= 2, 10_000, 20);
  assert.deepEqual(got.map((g) => (g.body.alerts as { fingerprint: string }[])[0]!.fingerprint), ['f1', 'f3']);
  assert.equal(got[0]!.auth, 'Bearer hook-secret-token');
  assert.equal(got[0]!.body.version, '4');
  await waitFor('offsets committed past every message', async () => {
    const c = await bus.committed(cfg.groupId, 'noctua.notifications');
    const ends = await bus.endOffsets('noctua.notifications');
    return ends.every((e) => c.find((x) => x.partition === e.partition)?.offset === e.offset || e.offset === '0');
  }, 5000, 20);
  await sender.stop();
  await producer.close();
  await bus.close();
  server.close();
  assert.equal(got.length, 2, 'no duplicates');
});
