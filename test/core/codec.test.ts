import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBatch, decodeBatch, CodecError, encodeEvent, decodeEvent } from '../../core/codec.js';
import type { SampleBatch, NetEvent } from '../../core/types.js';

function batch(n: number): SampleBatch {
  const ifLabels = Array.from({ length: n }, (_, i) => ({ device: 'rtr-1', ifIndex: String(i + 1), ifName: `ge-0/0/${i}` }));
  const samples = ifLabels.flatMap((labels, i) => [
    { metric: 'ifHCInOctets', labels, ts: 1_700_000_000_000, value: 2 ** 60 + i },
    { metric: 'ifHCOutOctets', labels, ts: 1_700_000_000_001, value: i * 1.5 },
    { metric: 'ifOperStatus', labels, ts: 1_699_999_999_990, value: 1 },
  ]);
  return { device: 'rtr-1', source: 'snmp', ts: 1_700_000_000_000, samples };
}

test('a batch round-trips exactly: labels, event times before and after the batch ts, float values', () => {
  const b = batch(48);
  const out = decodeBatch(encodeBatch(b));
  assert.deepEqual(out, b);
});

test('an empty batch and unicode labels round-trip', () => {
  const b: SampleBatch = { device: 'sw-ü', source: 'demo', ts: 5, samples: [{ metric: 'm', labels: { ifAlias: 'uplink → core "A"' }, ts: 5, value: -0 }] };
  assert.deepEqual(decodeBatch(encodeBatch(b)), b);
  const e: SampleBatch = { device: 'x', source: 'demo', ts: 1, samples: [] };
  assert.deepEqual(decodeBatch(encodeBatch(e)), e);
});

test('the binary batch is several times smaller than JSON', () => {
  const b = batch(48);
  const bin = encodeBatch(b).length;
  const json = Buffer.byteLength(JSON.stringify(b));
  assert.ok(bin * 3 < json, `binary ${bin} B vs JSON ${json} B`);
});

test('every truncation and corruption of a batch is a CodecError, never another exception', () => {
  const buf = encodeBatch(batch(4));
  for (let cut = 0; cut < buf.length; cut++) {
    assert.throws(() => decodeBatch(buf.subarray(0, cut)), CodecError, `cut at ${cut}`);
  }
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 2000; i++) {
    const c = Buffer.from(buf);
    const k = 1 + Math.floor(rnd() * 4);
    for (let j = 0; j < k; j++) c[Math.floor(rnd() * c.length)] = Math.floor(rnd() * 256);
    try {
      decodeBatch(c);
    } catch (err) {
      assert.ok(err instanceof CodecError, `corruption ${i} threw ${(err as Error).name}: ${(err as Error).message}`);
    }
  }
  assert.throws(() => decodeBatch(Buffer.from('{"device":"x"}')), /bad magic/);
});

test('events round-trip and malformed events are rejected with the field named', () => {
  const e: NetEvent = { id: 'a1', ts: 1, source: 'syslog', kind: 'linkDown', severity: 'major', device: 'rtr-1', message: 'Gi0/1 down', fields: { ifIndex: 3 } };
  assert.deepEqual(decodeEvent(encodeEvent(e)), e);
  assert.throws(() => decodeEvent(Buffer.from('not json')), /not JSON/);
  assert.throws(() => decodeEvent(Buffer.from(JSON.stringify({ ...e, severity: 'bad' }))), /severity/);
  assert.throws(() => decodeEvent(Buffer.from(JSON.stringify({ ...e, ts: 'x' }))), /ts/);
});

test('a device repeating its string table and label sets gets the same labels objects; any change in them is decoded anew', () => {
  const l1 = { device: 'r9', ifIndex: '1', ifName: 'ge-0/0/1' };
  const mk = (ts: number, labels: Record<string, string>, v: number) => encodeBatch({ device: 'r9', source: 'snmp', ts, samples: [{ metric: 'ifHCInOctets', labels, ts, value: v }, { metric: 'ifOperStatus', labels, ts: ts + 1, value: 1 }] });
  const a = decodeBatch(mk(1_000, l1, 10));
  const b = decodeBatch(mk(2_000, { ...l1 }, 20));
  assert.equal(a.samples[0]!.labels, b.samples[0]!.labels, 'shared across messages');
  assert.deepEqual(b.samples.map((s) => [s.metric, s.ts, s.value]), [['ifHCInOctets', 2_000, 20], ['ifOperStatus', 2_001, 1]]);
  // The interface was renamed: same lengths, other bytes. The cache must not answer with the old name.
  const c = decodeBatch(mk(3_000, { ...l1, ifName: 'ge-0/0/2' }, 30));
  assert.equal(c.samples[0]!.labels.ifName, 'ge-0/0/2');
  assert.notEqual(c.samples[0]!.labels, a.samples[0]!.labels);
  // Another device with the same labels bytes but its own name.
  const d = decodeBatch(encodeBatch({ device: 'r10', source: 'snmp', ts: 4_000, samples: [{ metric: 'ifHCInOctets', labels: l1, ts: 4_000, value: 1 }] }));
  assert.equal(d.device, 'r10');
  assert.deepEqual(d.samples[0]!.labels, l1);
});
