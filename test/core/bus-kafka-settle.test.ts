import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { whileTopicsSettle } from '../../core/bus-kafka.js';
import { registry } from '../../core/metrics.js';

const { KafkaJSProtocolError, KafkaJSNonRetriableError } = kafkajs;

// What a broker answers for a topic another process created a moment ago (kafkajs's own error, code 3).
const notYet = () => new KafkaJSProtocolError(Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: true }));

const settling = async () => {
  const text = await registry.getSingleMetricAsString('noctua_bus_topic_settling_waits_total');
  const m = /^noctua_bus_topic_settling_waits_total (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
};

test('a topic not yet in the broker\'s metadata is waited for: the subscribe or create succeeds once it is, each wait counted', async () => {
  const before = await settling();
  let calls = 0;
  const got = await whileTopicsSettle(async () => {
    if (++calls < 3) throw notYet();
    return 'subscribed';
  });
  assert.equal(got, 'subscribed');
  assert.equal(calls, 3);
  assert.equal((await settling()) - before, 2);
});

test('anything else fails at once, and a topic that never settles fails after the attempts', async () => {
  let calls = 0;
  await assert.rejects(
    whileTopicsSettle(async () => {
      calls++;
      throw new KafkaJSNonRetriableError('SASL authentication failed');
    }),
    /SASL authentication failed/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    whileTopicsSettle(async () => {
      calls++;
      throw notYet();
    }, 2),
    /does not host this topic-partition/,
  );
  assert.equal(calls, 3);
});
