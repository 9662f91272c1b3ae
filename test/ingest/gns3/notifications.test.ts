import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notificationEvent } from '../../../ingest/gns3/source.js';

// The node status changes no node can make on this machine (no emulator GNS3 accepts is installable
// here); the shapes are those of GNS3 3.0's node.updated, which carries the whole node.
test('GNS3 notifications: a node that stops is a warning, one that starts information; a rename or a move is nothing; a deleted node is named', () => {
  const ctx = { server: 'lab', project: 'campus-lab', nodeNames: new Map<string, string>(), nodeStatus: new Map([['n1', 'stopped']]) };
  const node = (over: Record<string, unknown>) => ({ node_id: 'n1', name: 'r1', node_type: 'qemu', status: 'stopped', x: 10, y: 20, ...over });
  assert.equal(notificationEvent('node.updated', node({ x: 99 }), ctx), null, 'a move');
  assert.equal(notificationEvent('node.updated', node({ name: 'r1-core' }), ctx), null, 'a rename');
  const started = notificationEvent('node.updated', node({ name: 'r1-core', status: 'started' }), ctx)!;
  assert.deepEqual([started.device, started.severity, started.message], ['r1-core', 'info', 'campus-lab: node r1-core started']);
  assert.equal(notificationEvent('node.updated', node({ name: 'r1-core', status: 'started', x: 5 }), ctx), null, 'still started');
  const stopped = notificationEvent('node.updated', node({ name: 'r1-core', status: 'suspended' }), ctx)!;
  assert.deepEqual([stopped.severity, stopped.message], ['warning', 'campus-lab: node r1-core suspended']);
  const gone = notificationEvent('node.deleted', { node_id: 'n1' }, ctx)!;
  assert.equal(gone.message, 'campus-lab: node r1-core deleted');
  assert.equal(notificationEvent('link.updated', { link_id: 'l1', nodes: [{ node_id: 'n1' }], filters: {} }, ctx), null, 'a filter edit');
  assert.equal(notificationEvent('link.updated', { link_id: 'l1', nodes: [{ node_id: 'n1' }], suspend: false }, ctx)!.message, 'campus-lab: link r1-core resumed');
});
