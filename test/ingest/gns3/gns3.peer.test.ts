import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gns3Missing, startGns3 } from '../../peers/gns3.js';
import { startGns3Source } from '../../../ingest/gns3/source.js';
import { MemoryBus } from '../../../core/bus-memory.js';
import { decodeBatch, decodeEvent } from '../../../core/codec.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../../core/types.js';
import { waitFor } from '../../peers/util.js';

test('a GNS3 lab server: its compute, projects, nodes and links polled as samples; node and link changes from its notification stream as events; a wrong password and a server gone are each said once', { timeout: 240_000, skip: gns3Missing() }, async () => {
  const g = await startGns3();
  const bus = new MemoryBus({ retainConsumed: 0 });
  await bus.ensureTopics([{ topic: TOPICS.samples, partitions: 1 }, { topic: TOPICS.events, partitions: 1 }]);
  const batches: SampleBatch[] = [];
  const events: NetEvent[] = [];
  const consumer = await bus.consumer({ groupId: 'gns3-test' });
  await consumer.subscribe([TOPICS.samples, TOPICS.events]);
  await consumer.run({ eachBatch: async ({ topic, messages }) => {
    for (const m of messages) topic === TOPICS.samples ? batches.push(decodeBatch(m.value!)) : events.push(decodeEvent(m.value!));
  } });
  let src: Awaited<ReturnType<typeof startGns3Source>> | null = null;
  try {
    const project = await g.api<{ project_id: string }>('POST', '/v3/projects', { name: 'campus-lab' });
    const pid = project.project_id;
    const node = (name: string) => g.api<{ node_id: string }>('POST', `/v3/projects/${pid}/nodes`, { name, node_type: 'vpcs', compute_id: 'local' });
    const [pc1, pc2] = [await node('pc1'), await node('pc2')];
    await g.api('POST', `/v3/projects/${pid}/links`, { nodes: [{ node_id: pc1.node_id, adapter_number: 0, port_number: 0 }, { node_id: pc2.node_id, adapter_number: 0, port_number: 0 }] });

    src = await startGns3Source({ bus, gns3: { servers: [
      { url: g.url, name: 'lab', user: g.user, password: g.password, intervalMs: 1000, timeoutMs: 3000 },
      { url: g.url.replace('127.0.0.1', 'localhost'), name: 'lab-wrong-password', user: 'admin', password: 'nope', intervalMs: 1000, timeoutMs: 3000, notifications: false },
    ] } });
    const latest = (device: string, metric: string) => batches.filter((b) => b.device === device).flatMap((b) => b.samples).filter((s) => s.metric === metric).at(-1);
    await waitFor('the lab polled', () => latest('lab', 'gns3_project_links') && latest('pc1', 'gns3_node_up'), 30_000, 200);
    assert.equal(latest('lab', 'gns3_up')!.value, 1);
    assert.equal(latest('lab', 'gns3_project_open')!.labels.project, 'campus-lab');
    assert.deepEqual([latest('lab', 'gns3_project_nodes')!.value, latest('lab', 'gns3_project_nodes_started')!.value, latest('lab', 'gns3_project_links')!.value], [2, 0, 1]);
    const mem = latest('lab', 'gns3_compute_mem_pct')!;
    assert.ok(mem.value > 0 && mem.value < 100 && mem.labels.compute === 'local');
    assert.deepEqual([latest('pc2', 'gns3_node_up')!.value, latest('pc2', 'gns3_node_up')!.labels.node_type], [0, 'vpcs']);
    // The wrong password: down, said once, and the right one unaffected.
    await waitFor('the refused login said', () => events.some((e) => e.device === 'lab-wrong-password'), 10_000, 200);
    assert.equal(latest('lab-wrong-password', 'gns3_up')!.value, 0);
    assert.match(events.find((e) => e.device === 'lab-wrong-password')!.message, /login refused for admin/);

    // Changes made in GNS3 arrive from its notification stream, not from the next poll.
    await waitFor('the stream open', () => batches.filter((b) => b.device === 'lab').length >= 2, 10_000, 200);
    await g.api('PUT', `/v3/projects/${pid}/nodes/${pc2.node_id}`, { name: 'pc2-renamed' });
    const pc3 = await node('pc3');
    await g.api('DELETE', `/v3/projects/${pid}/nodes/${pc3.node_id}`);
    await waitFor('node events', () => events.some((e) => e.kind === 'node.deleted'), 15_000, 100);
    const kinds = events.filter((e) => e.source === 'gns3' && e.kind.startsWith('node.')).map((e) => `${e.kind} ${e.device}`);
    assert.ok(kinds.includes('node.created pc3') && kinds.includes('node.deleted pc3'), kinds.join(', '));
    assert.ok(!kinds.some((k) => k.startsWith('node.updated')), 'a rename (no status) is no event');
    // Deleting pc1 deletes its link; a link suspended (a cut cable in the lab) is said as a warning.
    const pc4 = await node('pc4');
    await g.api('DELETE', `/v3/projects/${pid}/nodes/${pc1.node_id}`);
    await waitFor('the link deleted', () => events.some((e) => e.kind === 'link.deleted'), 15_000, 100);
    const link = await g.api<{ link_id: string }>('POST', `/v3/projects/${pid}/links`, { nodes: [{ node_id: pc2.node_id, adapter_number: 0, port_number: 0 }, { node_id: pc4.node_id, adapter_number: 0, port_number: 0 }] });
    await g.api('PUT', `/v3/projects/${pid}/links/${link.link_id}`, { suspend: true });
    await waitFor('the suspension said', () => events.some((e) => e.kind === 'link.updated'), 15_000, 100);
    const suspended = events.find((e) => e.kind === 'link.updated')!;
    assert.match(suspended.message, /campus-lab: link pc2-renamed - pc4 suspended/);
    assert.equal(suspended.severity, 'warning');
    // Deleting pc1 deleted its link: said too.
    assert.match(events.find((e) => e.kind === 'link.deleted')!.message, /campus-lab: link .*pc1.* deleted/);
    assert.equal(events.find((e) => e.kind === 'link.deleted')!.severity, 'warning');

    // The server gone: down and said once; back (a new process, a new token secret): followed again.
    await g.stop();
    await waitFor('the lab down', () => latest('lab', 'gns3_up')?.value === 0, 15_000, 200);
    assert.equal(events.filter((e) => e.device === 'lab' && e.kind === 'unreachable').length, 1);
  } finally {
    await src?.stop();
    await consumer.stop();
    await bus.close();
    await g.stop().catch(() => {});
  }
});
