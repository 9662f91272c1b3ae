import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConsumerPerf, parseProducerPerf } from '../../benchmarks/kafka-perf.js';

// Output shapes of Apache Kafka's perf tools (4.4.0), as benchmarks/kafka-perf.ts reads them.
const producerOut = `
99817 records sent, 19963.4 records/sec (19.50 MB/sec), 1211.3 ms avg latency, 2001.0 ms max latency.
200000 records sent, 17689.722271 records/sec (17.28 MB/sec), 1529.30 ms avg latency, 3565.00 ms max latency, 1411 ms 50th, 3098 ms 95th, 3463 ms 99th, 3540 ms 99.9th.
`;
const consumerOut = `WARN some log line
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-27 14:50:01:123, 2026-11-27 14:50:04:378, 195.3125, 60.0038, 200000, 61443.9324, 1197, 2058, 94.9040, 97181.7298
`;

test('the producer summary is the last "records sent" line, with its p99', () => {
  assert.deepEqual(parseProducerPerf(producerOut), { records: 200000, msgsPerSec: 17689.722271, mbPerSec: 17.28, avgLatencyMs: 1529.3, maxLatencyMs: 3565, p99LatencyMs: 3463 });
});

test('the consumer figures come from the columns the header names', () => {
  assert.deepEqual(parseConsumerPerf(consumerOut), { records: 200000, msgsPerSec: 61443.9324, mbPerSec: 60.0038, fetchMsgsPerSec: 97181.7298, fetchMbPerSec: 94.904 });
});

test('output without figures is an error that shows the output', () => {
  assert.throws(() => parseProducerPerf('Exception in thread "main" org.apache.kafka.common.errors.TimeoutException'), /TimeoutException/);
  assert.throws(() => parseConsumerPerf('WARN nothing consumed'), /nothing consumed/);
});
