import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startKafka } from '../peers/kafka.js';
import { startSnmpd } from '../peers/snmpd.js';
import { freePort, sleep, startProcess, tempDir, waitFor, type Proc } from '../peers/util.js';
import { KafkaBus } from '../../core/bus-kafka.js';
import { decodeBatch, decodeEvent } from '../../core/codec.js';
import { createLogger } from '../../core/log.js';
import { TOPICS } from '../../core/types.js';

const root = join(import.meta.dirname, '../../..');
const cli = join(root, 'dist/cli/noctua.js');

/** Every message of a topic, from its start to its end now. */
async function readTopic(bus: KafkaBus, topic: string): Promise<Buffer[]> {
  const ends = await bus.endOffsets(topic);
  const out: Buffer[] = [];
  const next = new Map<number, number>();
  const c = bus.consumer({ groupId: `read-${topic}-${Date.now()}`, fromBeginning: true, ephemeral: true });
  await c.subscribe([topic]);
  await c.run({
    eachBatch: async (b) => {
      for (const m of b.messages) if (m.value) out.push(m.value);
      next.set(b.partition, Number(b.messages.at(-1)?.offset ?? -1) + 1);
    },
  });
  await waitFor(`${topic} read to its end`, () => ends.every((e) => Number(e.offset) === 0 || (next.get(e.partition) ?? 0) >= Number(e.offset)), 60_000, 100);
  await c.stop();
  return out;
}

test('a poller killed while the broker is down sends what it held when it starts again: every syslog message and every poll of the outage, once', { timeout: 300_000 }, async () => {
  const [kafka, agent] = await Promise.all([startKafka(), startSnmpd()]);
  const dir = tempDir('spool-kill');
  const [port, tcpPort] = [await freePort(), await freePort()];
  const config = join(dir.path, 'noctua.yaml');
  writeFileSync(config, JSON.stringify({
    demo: { enabled: false },
    bus: { kind: 'kafka', brokers: kafka.brokers },
    snmp: { targets: [{ name: 'spool-agent', address: '127.0.0.1', port: agent.port, community: agent.community, intervalMs: 1000, timeoutMs: 500 }] },
    security: { syslog: { enabled: true, address: '127.0.0.1', tcpPort } },
  }));
  const token = 'spool-test-token-0123456789';
  const env = { ...process.env, NOCTUA_DATA_DIR: dir.path, NOCTUA_TOKEN: token, NOCTUA_API__PORT: String(port), NOCTUA_LOG_LEVEL: 'warn' };
  let proc: Proc | null = null;
  const start = async () => {
    const p = startProcess(process.execPath, [cli, 'poll', '--config', config], { cwd: root, env });
    proc = p;
    await waitFor('noctua poll to start', () => /Noctua is running/.test(p.output()) || p.child.exitCode !== null, 120_000, 100);
    assert.equal(p.child.exitCode, null, p.output());
    return p;
  };
  const metric = async (name: string, source: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{source="${source}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
  const syslog = (lines: string[]) =>
    new Promise<void>((resolve, reject) => {
      const s = connect(tcpPort, '127.0.0.1', () => s.end(lines.map((l) => `<13>${l}\n`).join('')));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'spool-test', logger: createLogger('silent') });
  try {
    await start();
    await syslog(['spool-before-1', 'spool-before-2']);
    await waitFor('polls on the bus', async () => (await metric('noctua_samples_ingested_total', 'snmp')) > 0, 60_000, 200);
    await sleep(2_000);

    // The broker dies; syslog keeps coming and the agent keeps being polled.
    const down = Date.now();
    await kafka.kill();
    const during = Array.from({ length: 20 }, (_, i) => `spool-during-${i + 1}`);
    await syslog(during.slice(0, 10));
    await sleep(1_000);
    await syslog(during.slice(10));
    await waitFor('what is held on disk', async () => (await metric('noctua_outbox_spooled_total', 'security')) >= 20 && (await metric('noctua_outbox_spooled_total', 'snmp')) >= 4, 60_000, 200);
    const killed = Date.now();
    await proc!.kill('SIGKILL');

    await kafka.restart();
    await start();
    assert.ok((await metric('noctua_outbox_replayed_total', 'security')) >= 20, 'the syslog messages came back from disk');
    const replayedPolls = await metric('noctua_outbox_replayed_total', 'snmp');
    assert.ok(replayedPolls >= 4, `${replayedPolls} polls came back from disk`);
    await waitFor('the replay taken by the bus', async () => (await metric('noctua_outbox_held_items', 'security')) === 0 && (await metric('noctua_outbox_held_items', 'snmp')) === 0, 60_000, 200);

    const messages = (await readTopic(bus, TOPICS.events)).map((v) => decodeEvent(v).message).filter((m) => m.includes('spool-'));
    for (const m of ['spool-before-1', 'spool-before-2', ...during]) assert.equal(messages.filter((x) => x === m).length, 1, `${m} once in ${messages.join(', ')}`);
    const polls = (await readTopic(bus, TOPICS.samples)).map(decodeBatch).filter((b) => b.device === 'spool-agent' && b.source === 'snmp').map((b) => b.ts);
    assert.equal(new Set(polls).size, polls.length, `no poll twice: ${polls.join(',')}`);
    const outage = polls.filter((t) => t > down && t < killed);
    assert.ok(outage.length >= Math.floor((killed - down) / 1000) - 2, `${outage.length} polls of the ${killed - down} ms outage arrived`);
  } finally {
    await (proc as Proc | null)?.stop(15_000);
    await bus.close();
    await kafka.stop();
    await agent.stop();
    dir.remove();
  }
});
