// Batch codec: the binary format against JSON, on the shape of a real poll (one device, 48 interfaces,
// ~20 IF-MIB columns each). Prints bytes per sample and encode/decode samples/s for both, JSON being
// the reference measured in the same run. Last line: one JSON object with every figure.
import { encodeBatch, decodeBatch } from '../core/codec.js';
import type { Sample, SampleBatch } from '../core/types.js';

const COLUMNS = ['ifHCInOctets', 'ifHCOutOctets', 'ifHCInUcastPkts', 'ifHCOutUcastPkts', 'ifHCInMulticastPkts', 'ifHCOutMulticastPkts',
  'ifHCInBroadcastPkts', 'ifHCOutBroadcastPkts', 'ifInErrors', 'ifOutErrors', 'ifInDiscards', 'ifOutDiscards', 'ifOperStatus',
  'ifAdminStatus', 'ifHighSpeed', 'ifMtu', 'ifLastChange', 'ifInUnknownProtos', 'ifOutQLen', 'ifPromiscuousMode'];

function poll(device: string, ts: number): SampleBatch {
  const samples: Sample[] = [];
  for (let i = 1; i <= 48; i++) {
    const labels = { device, ifIndex: String(i), ifName: `GigabitEthernet1/0/${i}`, ifAlias: `access port ${i}` };
    for (const metric of COLUMNS) samples.push({ metric, labels, ts, value: Math.floor(Math.random() * 2 ** 40) });
  }
  return { device, source: 'snmp', ts, samples };
}

function rate(label: string, n: number, fn: () => void): number {
  const start = process.hrtime.bigint();
  let iters = 0;
  while (process.hrtime.bigint() - start < 1_000_000_000n) {
    fn();
    iters++;
  }
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  const perSec = (iters * n) / s;
  console.log(`${label.padEnd(24)} ${Math.round(perSec).toLocaleString('en-US').padStart(14)} samples/s`);
  return perSec;
}

const batches = Array.from({ length: 50 }, (_, i) => poll(`sw-${i}`, 1_700_000_000_000 + i));
const n = batches.reduce((a, b) => a + b.samples.length, 0);
const bin = batches.map(encodeBatch);
const json = batches.map((b) => Buffer.from(JSON.stringify(b)));
const binBytes = bin.reduce((a, b) => a + b.length, 0) / n;
const jsonBytes = json.reduce((a, b) => a + b.length, 0) / n;
console.log(`bytes/sample: binary ${binBytes.toFixed(1)}, JSON ${jsonBytes.toFixed(1)} (x${(jsonBytes / binBytes).toFixed(1)})`);
const encBin = rate('encode binary', n, () => batches.forEach(encodeBatch));
const encJson = rate('encode JSON (reference)', n, () => batches.forEach((b) => Buffer.from(JSON.stringify(b))));
const decBin = rate('decode binary', n, () => bin.forEach(decodeBatch));
const decJson = rate('decode JSON (reference)', n, () => json.forEach((b) => JSON.parse(b.toString())));
console.log(JSON.stringify({ bench: 'codec', samplesPerBatch: n / batches.length, bytesPerSampleBinary: +binBytes.toFixed(2), bytesPerSampleJson: +jsonBytes.toFixed(2),
  encodeBinaryPerSec: Math.round(encBin), encodeJsonPerSec: Math.round(encJson), decodeBinaryPerSec: Math.round(decBin), decodeJsonPerSec: Math.round(decJson) }));
