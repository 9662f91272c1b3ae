// The outbox spool during an outage: syslog-sized events (200 B, framed as the security source frames
// them) pushed while the bus refuses them, a few per turn of the event loop as a TCP receiver pushes
// them, written to disk by the spool; then read back by a restarted outbox. The reference, measured in
// the same run on the same disk, is appending the same frames with one write per turn (what the spool
// cannot beat). Last line: one JSON object with every figure.
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Outbox } from '../ingest/outbox.js';
import { frameMessage, unframeMessage } from '../ingest/spool.js';
import type { OutMessage } from '../core/bus.js';

interface Item {
  readonly topic: string;
  readonly message: OutMessage;
}

const N = Number(process.env.SPOOL_ITEMS ?? 300_000);
const PER_TURN = 20;
const turn = () => new Promise<void>((r) => setImmediate(r));
const item: Item = { topic: 'noctua.events', message: { key: 'edge-1', value: Buffer.alloc(200, 0x61), timestamp: 1_800_000_000_000 } };
const spool = (dir: string) => ({ dir, encode: (i: Item) => frameMessage(i.topic, i.message), decode: (f: Buffer) => unframeMessage(f) as Item });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'noctua-spool-bench-'));
  try {
    // Reference: the same frames appended, one write per turn.
    const frame = frameMessage(item.topic, item.message);
    const head = Buffer.alloc(5);
    head[0] = 0xa5;
    head.writeUInt32BE(frame.length, 1);
    const fd = openSync(join(dir, 'reference'), 'a');
    let t = process.hrtime.bigint();
    for (let i = 0; i < N; i += PER_TURN) {
      const chunk: Buffer[] = [];
      for (let j = 0; j < PER_TURN; j++) chunk.push(head, frameMessage(item.topic, item.message));
      writeSync(fd, Buffer.concat(chunk));
      await turn();
    }
    closeSync(fd);
    const refPerSec = N / (Number(process.hrtime.bigint() - t) / 1e9);

    // The outbox with its spool, the bus down.
    let down = true;
    const send = async () => {
      await new Promise((r) => setTimeout(r, 1));
      if (down) throw new Error('broker unreachable');
    };
    const box = new Outbox<Item>({ source: 'bench-spool', send, bytes: (i) => (i.message.value?.length ?? 0) + 64, retryMinMs: 100, retryMaxMs: 100, maxBytes: 1024 * 1024 * 1024, spool: spool(join(dir, 'spool')) });
    box.push(item);
    while (statSync(join(dir, 'spool', 'items')).size === 0) await new Promise((r) => setTimeout(r, 10));
    t = process.hrtime.bigint();
    for (let i = 0; i < N; i += PER_TURN) {
      for (let j = 0; j < PER_TURN; j++) box.push(item);
      await turn();
    }
    await turn();
    const spillPerSec = N / (Number(process.hrtime.bigint() - t) / 1e9);
    const bytes = statSync(join(dir, 'spool', 'items')).size;
    const heap = process.memoryUsage().heapUsed;
    // A restart: a new outbox reads the spool back and the bus, back, takes it all.
    await box.close(0);
    down = false;
    t = process.hrtime.bigint();
    const next = new Outbox<Item>({ source: 'bench-spool-2', send, bytes: (i) => (i.message.value?.length ?? 0) + 64, maxBytes: 1024 * 1024 * 1024, spool: spool(join(dir, 'spool')) });
    const held = next.held;
    const loadMs = Number(process.hrtime.bigint() - t) / 1e6;
    await next.idle();
    const replayMs = Number(process.hrtime.bigint() - t) / 1e6;
    await next.close(1000);
    console.log(`${N.toLocaleString('en-US')} events of 200 B while the bus is down, ${PER_TURN} per turn of the event loop`);
    console.log(`spooled            ${Math.round(spillPerSec).toLocaleString('en-US').padStart(12)} events/s   (${(bytes / (N + 1)).toFixed(0)} B each on disk)`);
    console.log(`append (reference) ${Math.round(refPerSec).toLocaleString('en-US').padStart(12)} events/s   (same frames, one write per turn)`);
    console.log(`restart: ${held.toLocaleString('en-US')} read back in ${loadMs.toFixed(0)} ms, all taken by the bus in ${replayMs.toFixed(0)} ms; heap ${(heap / 1048576).toFixed(0)} MiB while held`);
    console.log(JSON.stringify({ bench: 'spool', events: N, perTurn: PER_TURN, spooledPerSec: Math.round(spillPerSec), referenceAppendPerSec: Math.round(refPerSec), bytesPerEvent: Math.round(bytes / (N + 1)), readBack: held, loadMs: Math.round(loadMs), replayMs: Math.round(replayMs) }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
