import { gzipSync, gunzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import type { Bus, OutMessage } from '../core/bus.js';
import { counter, histogram } from '../core/metrics.js';
import { CodecError, Reader, Writer } from '../core/codec.js';

/**
 * Operator state checkpoints on a compacted changelog topic (Kafka Streams' model, with whole
 * snapshots instead of per-key updates).
 *
 * One snapshot per INPUT partition is written inside the same transaction as the outputs and the
 * consumer offset it corresponds to, so "committed offset = N" and "snapshot at offset N" become
 * visible together or not at all. A snapshot is a gzipped container split into chunks (Kafka's default
 * message limit is 1 MB); chunk i of n has key `<prefix>#<i>`, and the offset it belongs to rides in a
 * header, so a reader takes chunks 0..n-1 carrying the SAME offset. The changelog has ONE
 * partition: chunks of one snapshot stay in order, and a restore reads a single log.
 *
 * Restore = read the changelog from the beginning (compaction keeps it to about one snapshot per
 * input partition) until, for each wanted input partition, the snapshot whose offset equals the
 * group's committed offset is complete. It must exist, because both were committed atomically.
 */

export const CHANGELOG_PARTITIONS = 1;
const CHUNK_BYTES = 512 * 1024;

export interface Snapshot {
  /** The input position the state corresponds to: the next offset to process. */
  readonly offset: string;
  readonly state: unknown;
  /** Binary sections the state refers to by index (the window panes' rows). */
  readonly attachments: readonly Uint8Array[];
}

/**
 * Container (before gzip): 'P' 0x01, the number of attachments, each as (length, bytes), then the
 * state's JSON to the end. Bulk numeric state travels as binary attachments: writing it as JSON text
 * was most of a transaction's snapshot time. A body starting with '{' is a snapshot from before the
 * container (JSON only), and still restores.
 */
const PACK_MAGIC = 0x50;
const PACK_VERSION = 1;

export function packSnapshot(state: unknown, attachments: readonly Uint8Array[] = []): Buffer {
  const head = new Writer(8 + 10 * attachments.length);
  head.ensure(2);
  head.buf[head.pos++] = PACK_MAGIC;
  head.buf[head.pos++] = PACK_VERSION;
  head.varint(attachments.length);
  for (const a of attachments) head.varint(a.byteLength);
  return Buffer.concat([head.bytes(), ...attachments, Buffer.from(JSON.stringify(state), 'utf8')]);
}

export function unpackSnapshot(body: Buffer): { state: unknown; attachments: Uint8Array[] } {
  if (body[0] === 0x7b) return { state: JSON.parse(body.toString('utf8')), attachments: [] };
  if (body[0] !== PACK_MAGIC || body[1] !== PACK_VERSION) throw new CodecError(`unknown snapshot container 0x${(body[0] ?? 0).toString(16)} v${body[1]}`);
  const r = new Reader(body);
  r.pos = 2;
  const n = r.count('attachment', r.remaining);
  const lens: number[] = [];
  for (let i = 0; i < n; i++) lens.push(r.varint());
  let at = r.pos;
  const attachments: Uint8Array[] = [];
  for (const len of lens) {
    if (at + len > body.length) throw new CodecError(`attachment of ${len} bytes overruns the snapshot`, at);
    attachments.push(body.subarray(at, at + len));
    at += len;
  }
  return { state: JSON.parse(body.toString('utf8', at)), attachments };
}

const snapshotBytes = histogram('noctua_processor_snapshot_bytes', 'Compressed size of one partition state snapshot', [], [1e3, 1e4, 1e5, 3e5, 1e6, 3e6, 1e7]);
const restoreErrors = counter('noctua_processor_restore_errors_total', 'Changelog records that could not be decoded during restore', ['reason']);

export function snapshotKey(group: string, topic: string, partition: number): string {
  return `${group}/${topic}/${partition}`;
}

/** Messages that store `state` (and its attachments) as the snapshot of `prefix` at input offset `offset`. */
export function encodeSnapshot(prefix: string, offset: string, state: unknown, attachments: readonly Uint8Array[] = []): OutMessage[] {
  const body = gzipSync(packSnapshot(state, attachments), { level: 1 });
  snapshotBytes.observe(body.length);
  const n = Math.max(1, Math.ceil(body.length / CHUNK_BYTES));
  const out: OutMessage[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      key: `${prefix}#${i}`,
      value: body.subarray(i * CHUNK_BYTES, Math.min(body.length, (i + 1) * CHUNK_BYTES)),
      headers: { offset, chunk: String(i), chunks: String(n) },
    });
  }
  return out;
}

interface Pending {
  readonly want: string;
  readonly chunks: Map<number, { offset: string; value: Buffer; n: number }>;
}

/**
 * Reads the changelog until every wanted prefix has its snapshot at the wanted offset.
 * `wanted`: prefix -> committed input offset. Throws (with the prefixes still missing) on timeout.
 */
export async function restoreSnapshots(bus: Bus, changelog: string, wanted: ReadonlyMap<string, string>, timeoutMs = 60_000): Promise<Map<string, Snapshot>> {
  const found = new Map<string, Snapshot>();
  if (wanted.size === 0) return found;
  const pending = new Map<string, Pending>();
  for (const [prefix, want] of wanted) pending.set(prefix, { want, chunks: new Map() });
  // A throwaway group: restores never move anyone's committed position.
  const consumer = bus.consumer({ groupId: `noctua-restore-${randomUUID()}`, fromBeginning: true, readCommitted: true, ephemeral: true });
  let done!: () => void;
  const complete = new Promise<void>((r) => (done = r));
  await consumer.subscribe([changelog]);
  await consumer.run({
    async eachBatch(batch) {
      for (const m of batch.messages) {
        if (m.key === null || m.value === null) continue;
        const hash = m.key.lastIndexOf('#');
        if (hash < 0) continue;
        const p = pending.get(m.key.slice(0, hash));
        if (!p) continue;
        const i = Number(m.key.slice(hash + 1));
        const n = Number(m.headers.chunks);
        const offset = m.headers.offset ?? '';
        if (!Number.isInteger(i) || !Number.isInteger(n) || n < 1) {
          restoreErrors.inc({ reason: 'bad_headers' });
          continue;
        }
        p.chunks.set(i, { offset, value: m.value, n });
        if (offset !== p.want) continue;
        const parts: Buffer[] = [];
        for (let k = 0; k < n; k++) {
          const c = p.chunks.get(k);
          if (!c || c.offset !== p.want || c.n !== n) break;
          parts.push(c.value);
        }
        if (parts.length !== n) continue;
        const prefix = m.key.slice(0, hash);
        try {
          found.set(prefix, { offset: p.want, ...unpackSnapshot(gunzipSync(Buffer.concat(parts))) });
          pending.delete(prefix);
        } catch (err) {
          restoreErrors.inc({ reason: 'decode' });
          throw new Error(`snapshot ${prefix} at offset ${p.want} in ${changelog} cannot be decoded: ${(err as Error).message}`);
        }
      }
      if (pending.size === 0) done();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      complete,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`restore from ${changelog} timed out after ${timeoutMs} ms; missing snapshots: ${[...pending].map(([k, p]) => `${k}@${p.want}`).join(', ')}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await consumer.stop();
  }
  return found;
}
