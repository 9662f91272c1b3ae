import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBatch, CodecError } from '../../core/codec.js';
import { Pipeline, emptyOutput, outputMessages, processorConfig, windowOptions, rollupRecord, type RollupRecord } from '../../processors/runner.js';
import { decodeRollups, encodeRollups } from '../../processors/rollup-codec.js';
import { demoMessages, DEMO_RULES } from './harness.js';

function demoRollups(): RollupRecord[] {
  const pl = Pipeline.create(windowOptions(processorConfig({})), DEMO_RULES);
  const out = emptyOutput();
  for (const m of demoMessages(12)) pl.step(decodeBatch(m.value), out);
  return out.results.map(rollupRecord);
}

const edge: RollupRecord = {
  window: '1m', kind: 'correction', revision: 3, key: 'temp{device="rtr-ü",sensor="\u{1F525}"}', metric: 'temp', labels: { device: 'rtr-ü', sensor: '\u{1F525}' },
  start: 1_795_000_000_000, end: 1_795_000_060_000, count: 2.5, sum: -0.5, min: -3, max: 2.5, avg: -0.2, first: 0, firstTs: 1_795_000_000_001.5, last: 2.5, lastTs: 1_795_000_059_999,
  rate: null, p50: NaN, p95: Infinity, p99: -Infinity,
  sketch: { a: 0.01, pi: [-40, -2, 0, 7, 300], pc: [1, 0.5, 2, 1e15, 3], ni: [5, 6], nc: [1, 1], z: 2 },
};

test('rollup records round-trip exactly: every record of a demo run, and the edges (corrections, no rate, negative and zero buckets, fractional counts, non-finite quantiles, unicode labels)', () => {
  const recs = demoRollups();
  assert.ok(recs.length > 1000, `demo rollups (${recs.length})`);
  assert.ok(recs.some((r) => r.rate === null) && recs.some((r) => r.rate !== null), 'with and without a rate');
  // one record a message, and messages of 1..50 records (one device's from one transaction)
  let bin = 0;
  let json = 0;
  for (const r of recs) {
    assert.deepEqual(decodeRollups(encodeRollups([r])), [r]);
    json += Buffer.byteLength(JSON.stringify(r));
  }
  for (let i = 0, n = 1; i < recs.length; i += n, n = (n % 50) + 1) {
    const part = recs.slice(i, i + n);
    const b = encodeRollups(part);
    assert.deepEqual(decodeRollups(b), part);
    bin += b.length;
  }
  assert.deepEqual(decodeRollups(encodeRollups([edge])), [edge]);
  // a key that is not the canonical one travels as written; times before 1970 as floats
  const odd = { ...edge, key: 'temp:legacy-name', start: -5000, end: 55_000, firstTs: -4000, lastTs: 50_000, count: 7 };
  assert.deepEqual(decodeRollups(encodeRollups([odd, edge, odd])), [odd, edge, odd]);
  assert.throws(() => encodeRollups([]), CodecError);
  // the point of the format: well under half of JSON's bytes on the topic
  assert.ok(bin < json / 2, `binary ${bin} B vs JSON ${json} B`);
});

test('JSON rollup records written before the binary format still decode (a topic holding both reads whole)', () => {
  const r = demoRollups()[0]!;
  assert.deepEqual(decodeRollups(Buffer.from(JSON.stringify(r))), [r]);
  assert.throws(() => decodeRollups(Buffer.from('{"window":"1m"}')), CodecError);
});

test('a damaged rollup record is a CodecError, never another exception or a wrong record', () => {
  const b = encodeRollups([edge, demoRollups()[5]!, edge]);
  for (let n = 0; n < b.length; n++) assert.throws(() => decodeRollups(b.subarray(0, n)), CodecError, `truncated to ${n} bytes`);
  assert.throws(() => decodeRollups(Buffer.concat([b, Buffer.from([0])])), /trailing/);
  assert.throws(() => decodeRollups(Buffer.from([0x4e, 1, 0, 0])), /bad magic/);
  assert.throws(() => decodeRollups(Buffer.from([0x52, 9, 0, 0])), /version/);
  assert.throws(() => decodeRollups(Buffer.from('{not json')), CodecError);
  // random bytes behind a valid header: rejected cleanly, whatever they hold
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: 3 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
    junk[0] = 0x52;
    junk[1] = 1;
    try {
      decodeRollups(junk);
    } catch (err) {
      assert.ok(err instanceof CodecError, `junk ${junk.toString('hex')}: ${(err as Error).message}`);
    }
  }
});

test('rollup messages stay far below Kafka 1 MB even when every record carries a wide sketch', () => {
  const cfg = processorConfig({});
  const pi = Array.from({ length: 2048 }, (_, i) => i * 3 - 3000);
  const pc = pi.map((_, i) => 1 + (i % 70_000) * 997);
  const agg = { count: 2048, sum: 1, min: 0, max: 1, avg: 1, first: 0, firstTs: 1, last: 1, lastTs: 2, rate: null, p50: 0, p95: 1, p99: 1 };
  const results = Array.from({ length: 600 }, (_, i) => ({
    kind: 'final' as const, window: '1h', sizeMs: 3_600_000, key: `m{device="r1",ifIndex="${i}"}`, metric: 'm', labels: { device: 'r1', ifIndex: String(i) },
    start: 0, end: 3_600_000, revision: 0, agg, sketch: { a: 0.01, pi, pc },
  }));
  const msgs = outputMessages(cfg, { ...emptyOutput(), results }, '').get(cfg.rollupsTopic)!;
  assert.ok(msgs.length > 1, `split into ${msgs.length} messages`);
  for (const m of msgs) assert.ok(m.value!.length < 512 * 1024, `message of ${m.value!.length} B`);
  assert.deepEqual(msgs.flatMap((m) => decodeRollups(m.value!)), results.map(rollupRecord));
});
