import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus } from '../../core/bus-kafka.js';
import { startKafka, type KafkaPeer } from '../peers/kafka.js';
import { busConformance } from './bus-conformance.js';

let kafka: KafkaPeer;
before(async () => {
  kafka = await startKafka();
});
after(async () => {
  await kafka?.stop();
});

busConformance('kafka', async () => new KafkaBus({ brokers: kafka.brokers, clientId: 'noctua-conformance', batchRetryMinMs: 50, batchRetryMaxMs: 200 }), { settleMs: 15_000, quietMs: 1_500 });
