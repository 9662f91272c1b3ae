/**
 * Which insert body gets samples into the embedded engine fastest? Each variant encodes the same
 * 1,000,000 samples (1,000 series x 1,000 timestamps) from sink-side data (SeriesInfo + ts + value)
 * and inserts them into the real `samples` table (full profile) with a dedup token.
 *
 * Reference: PEERS.md measured JSONEachRow objects at 0.49M rows/s and raw CSV streams at 1.4M rows/s
 * (plus ~1 s per million rows to build the CSV string in JS). Target: >= 1M rows/s end to end.
 *
 *   npm run bench:sink-formats [-- rows]
 */
import { tempDir } from '../test/peers/util.js';
import { openClickHouse, bufferStream, type ClickHouse } from '../storage/clickhouse.js';
import { migrate } from '../storage/migrations.js';
import { SeriesIndex, writeSampleRow, SAMPLE_COLUMNS, type SeriesInfo } from '../storage/rows.js';
import { TsvBuilder, escapeTsv } from '../storage/tsv.js';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const SERIES = 1000;
const STEPS = Math.ceil(ROWS / SERIES);

function series(): SeriesInfo[] {
  const idx = new SeriesIndex();
  const out: SeriesInfo[] = [];
  for (let i = 0; i < SERIES; i++) {
    const labels = { device: `rtr${i % 50}`, ifIndex: String(i), ifName: `Gi0/${i}` };
    out.push(idx.get(labels.device, i % 2 ? 'ifHCInOctets' : 'if_in_bps', SeriesIndex.labelPart(labels), labels));
  }
  return out;
}

interface Variant {
  name: string;
  encode(ss: SeriesInfo[], t0: number): unknown;
  insert(ch: ClickHouse, body: unknown, token: string): Promise<void>;
}

const value = (i: number, k: number): number => (k % 2 === 0 ? i * 1000 + k : (i * 7.31 + k) / 3);

const variants: Variant[] = [
  {
    name: 'JSONEachRow objects -> client.insert',
    encode(ss, t0) {
      const rows: Record<string, unknown>[] = [];
      for (let k = 0; k < STEPS; k++) for (let i = 0; i < ss.length; i++) {
        const s = ss[i]!;
        rows.push({ metric: s.metric, series: s.id, device: s.device, ts: t0 + k * 1000, value: value(i, k) });
      }
      return rows;
    },
    async insert(ch, body, token) {
      await ch.client.insert({ table: 'noctua.samples', values: body as Record<string, unknown>[], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: token } });
    },
  },
  {
    name: 'TSV string (template + join) -> chdb raw insert',
    encode(ss, t0) {
      const lines: string[] = [];
      for (let k = 0; k < STEPS; k++) for (let i = 0; i < ss.length; i++) {
        const s = ss[i]!;
        lines.push(`${escapeTsv(s.metric)}\t${s.id}\t${escapeTsv(s.device)}\t${t0 + k * 1000}\t${value(i, k)}`);
      }
      return Buffer.from(lines.join('\n') + '\n');
    },
    async insert(ch, body, token) {
      await ch.insertTsv('noctua.samples', SAMPLE_COLUMNS.full, body as Buffer, { insert_deduplication_token: token });
    },
  },
  {
    name: 'TSV bytes (TsvBuilder, cached prefixes) -> client.insert stream',
    encode(ss, t0) {
      const b = new TsvBuilder(ROWS * 48);
      for (let k = 0; k < STEPS; k++) for (let i = 0; i < ss.length; i++) writeSampleRow(b, 'full', ss[i]!, t0 + k * 1000, value(i, k));
      return b.take();
    },
    async insert(ch, body, token) {
      await ch.client.insert({ table: 'noctua.samples', columns: [...SAMPLE_COLUMNS.full] as [string], values: bufferStream(body as Buffer), format: 'TabSeparated', clickhouse_settings: { insert_deduplication_token: token } });
    },
  },
  {
    name: 'TSV bytes (TsvBuilder, cached prefixes) -> chdb raw insert',
    encode(ss, t0) {
      const b = new TsvBuilder(ROWS * 48);
      for (let k = 0; k < STEPS; k++) for (let i = 0; i < ss.length; i++) writeSampleRow(b, 'full', ss[i]!, t0 + k * 1000, value(i, k));
      return b.take();
    },
    async insert(ch, body, token) {
      await ch.insertTsv('noctua.samples', SAMPLE_COLUMNS.full, body as Buffer, { insert_deduplication_token: token });
    },
  },
];

async function main(): Promise<void> {
  const dir = tempDir('bench-sink');
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 }, dir.path);
  await migrate(ch, { rawTtlDays: 14 });
  const ss = series();
  const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3_600_000; // inside one day partition
  console.log(`sink-formats: ${ROWS} rows (${SERIES} series x ${STEPS} steps) into the embedded engine ${ch.version}`);
  console.log('reference: PEERS.md JSONEachRow 0.49M rows/s, raw CSV 1.4M rows/s (+~1 s/M to build the string); target >= 1M rows/s');
  let n = 0;
  for (const v of variants) {
    // Fresh timestamps per variant: same data would be deduplicated by content hash.
    const base = t0 + n * STEPS * 1000;
    const e0 = performance.now();
    const c0 = process.cpuUsage();
    const body = v.encode(ss, base);
    const e1 = performance.now();
    const c1 = process.cpuUsage();
    await v.insert(ch, body, `bench-${n}`);
    const e2 = performance.now();
    const c2 = process.cpuUsage();
    const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.user - a.user + b.system - a.system) / 1e6;
    const rs = await ch.client.query({ query: `SELECT count() AS c FROM noctua.samples WHERE ts >= fromUnixTimestamp64Milli(${base}) AND ts < fromUnixTimestamp64Milli(${base + STEPS * 1000})`, format: 'JSONEachRow' });
    const landed = Number((await rs.json<{ c: number | string }>())[0]?.c);
    const enc = (e1 - e0) / 1000;
    const ins = (e2 - e1) / 1000;
    const rate = (ROWS / (enc + ins) / 1e6).toFixed(2);
    console.log(`${v.name.padEnd(64)} encode ${enc.toFixed(3)} s (cpu ${cpu(c0, c1).toFixed(2)})  insert ${ins.toFixed(3)} s (cpu ${cpu(c1, c2).toFixed(2)})  => ${rate}M rows/s wall (landed ${landed})`);
    if (landed !== STEPS * SERIES) throw new Error(`${v.name}: ${landed} rows landed, expected ${STEPS * SERIES}`);
    n++;
  }
  await ch.close();
  dir.remove();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
