import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodecError, decodeBatch } from '../../core/codec.js';
import { packSnapshot, unpackSnapshot } from '../../processors/checkpoint.js';
import { Pipeline, emptyOutput, processorConfig, windowOptions, type PipelineState } from '../../processors/runner.js';
import { demoMessages, DEMO_RULES } from './harness.js';

test('snapshot container: state and binary attachments round-trip; a JSON-only snapshot from before still reads', () => {
  const att = [Uint8Array.from([1, 2, 3]), new Uint8Array(0), Uint8Array.from({ length: 300 }, (_, i) => i % 256)];
  const state = { v: 1, nested: { rows: 2, label: 'ü' } };
  const back = unpackSnapshot(packSnapshot(state, att));
  assert.deepEqual(back.state, state);
  assert.deepEqual(back.attachments.map((a) => [...a]), att.map((a) => [...a]));
  assert.deepEqual(unpackSnapshot(packSnapshot(state)), { state, attachments: [] });
  assert.deepEqual(unpackSnapshot(Buffer.from(JSON.stringify(state))), { state, attachments: [] });
});

test('snapshot container: damage is an error, never a state built from the wrong bytes', () => {
  assert.throws(() => unpackSnapshot(Buffer.from([0x51, 1, 0])), CodecError);
  assert.throws(() => unpackSnapshot(Buffer.from([0x50, 9, 0])), CodecError);
  const ok = packSnapshot({ a: 1 }, [Uint8Array.from([7, 7, 7, 7])]);
  assert.throws(() => unpackSnapshot(Buffer.concat([ok.subarray(0, 3), Buffer.from([200])])), CodecError, 'an attachment longer than the snapshot');
  assert.throws(() => unpackSnapshot(ok.subarray(0, ok.length - 2)), SyntaxError, 'a truncated state');
});

test('a pipeline restored from its checkpoint (binary window panes) continues exactly as the uninterrupted one', () => {
  const cfg = processorConfig({});
  const msgs = demoMessages(12);
  const half = Math.floor(msgs.length / 2);
  const a = Pipeline.create(windowOptions(cfg), DEMO_RULES);
  const outA = emptyOutput();
  for (const m of msgs) a.step(decodeBatch(m.value), outA);

  const b0 = Pipeline.create(windowOptions(cfg), DEMO_RULES);
  const outB = emptyOutput();
  for (const m of msgs.slice(0, half)) b0.step(decodeBatch(m.value), outB);
  const cp = b0.checkpoint();
  assert.ok(cp.attachments.length > 0, 'window rows travel as attachments');
  const back = unpackSnapshot(packSnapshot(cp.state, cp.attachments));
  const b = Pipeline.restore(windowOptions(cfg), DEMO_RULES, back.state as PipelineState, null, back.attachments);
  for (const m of msgs.slice(half)) b.step(decodeBatch(m.value), outB);
  assert.ok(outA.results.length > 1000);
  assert.deepEqual(outB.results, outA.results);
  assert.deepEqual(outB.changes, outA.changes);
  // and the checkpoint of the restored pipeline is the uninterrupted one's, byte for byte
  const ca = a.checkpoint();
  const cb = b.checkpoint();
  assert.deepEqual(packSnapshot(cb.state, cb.attachments), packSnapshot(ca.state, ca.attachments));
});
