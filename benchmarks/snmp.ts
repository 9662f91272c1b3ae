/**
 * SNMP poll capacity of one poller process (`npm run bench:snmp`).
 *
 * Simulated devices: A agent processes (this file run with --agent), each answering SNMPv2c for any
 * community with a 48-interface device: system group, full ifTable (22 columns) and ifXTable (19),
 * hrProcessorLoad, hrStorage, UCD load and memory, counters advancing with time. They are hand-coded
 * BER responders so that the agents cost as little CPU as possible on this 2-core machine.
 *
 * Phases:
 *  1. throughput: every device polled back to back (concurrency C) -> devices/s, varbinds/s, CPU;
 *  2. reference: Net-SNMP's C `snmpbulkwalk` walking the same devices in P parallel processes;
 *  3. schedule: D devices on an interval I (scaled down from 60 s to keep the run short; capacity per
 *     60 s = D x 60 s / I) for a few intervals through the real scheduler, stepping D down until
 *     late+missed < 1% -> devices per 60 s, CPU per 1,000 device polls.
 * Prints figures, then one JSON line {"bench":"snmp",...} last.
 *
 * Flags: --agents N (2) --devices N (auto) --interval MS (10000) --intervals N (3) --tries N (3)
 *        --walkers N (8) --seconds N (10, throughput phase) --concurrency N (256)
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { SnmpPoller } from '../ingest/snmp/poller.js';
import { parseSnmpConfig, type Target } from '../ingest/snmp/config.js';
import { tlv, uintBytes, encodeOid, decodeOid } from '../test/peers/ber.js';

const IFACES = 48;

// ---------------------------------------------------------------- simulated agent (child process)

type Value = { fixed: Buffer } | { counter: 32 | 64; base: number; rate: number } | { ticks: true };

interface MibEntry {
  oid: string;
  parts: number[];
  enc: Buffer;
  value: Value;
}

function buildMib(): MibEntry[] {
  const rows: Array<[string, Value]> = [];
  const str = (s: string): Value => ({ fixed: tlv(0x04, Buffer.from(s)) });
  const int = (n: number, tag = 0x02): Value => ({ fixed: tlv(tag, uintBytes(n)) });
  rows.push(['1.3.6.1.2.1.1.1.0', str('Simulated 48-port switch')], ['1.3.6.1.2.1.1.2.0', { fixed: encodeOid('1.3.6.1.4.1.8072.3.2.10') }], ['1.3.6.1.2.1.1.3.0', { ticks: true }]);
  rows.push(['1.3.6.1.2.1.1.4.0', str('noc@example.invalid')], ['1.3.6.1.2.1.1.5.0', str('sim-switch')], ['1.3.6.1.2.1.1.6.0', str('bench')], ['1.3.6.1.2.1.1.7.0', int(6)]);
  rows.push(['1.3.6.1.2.1.2.1.0', int(IFACES)]);
  const IF = '1.3.6.1.2.1.2.2.1.';
  const IFX = '1.3.6.1.2.1.31.1.1.1.';
  for (let i = 1; i <= IFACES; i++) {
    const rate = 1_000_000 * i;
    const cols: Array<[string, Value]> = [
      [IF + '1.' + i, int(i)], [IF + '2.' + i, str(`GigabitEthernet1/0/${i}`)], [IF + '3.' + i, int(6)], [IF + '4.' + i, int(1500)],
      [IF + '5.' + i, int(1_000_000_000, 0x42)], [IF + '6.' + i, { fixed: tlv(0x04, Buffer.from([0, 0x1b, 0x21, 0, 0, i])) }], [IF + '7.' + i, int(1)], [IF + '8.' + i, int(i % 7 === 0 ? 2 : 1)],
      [IF + '9.' + i, int(12345, 0x43)], [IF + '10.' + i, { counter: 32, base: i * 1e6, rate: rate / 8 }], [IF + '11.' + i, { counter: 32, base: 0, rate: rate / 8000 }],
      [IF + '12.' + i, int(0, 0x41)], [IF + '13.' + i, int(0, 0x41)], [IF + '14.' + i, { counter: 32, base: 0, rate: 0.01 }], [IF + '15.' + i, int(0, 0x41)],
      [IF + '16.' + i, { counter: 32, base: i * 2e6, rate: rate / 16 }], [IF + '17.' + i, { counter: 32, base: 0, rate: rate / 16000 }], [IF + '18.' + i, int(0, 0x41)],
      [IF + '19.' + i, int(0, 0x41)], [IF + '20.' + i, int(0, 0x41)], [IF + '21.' + i, int(0, 0x42)], [IF + '22.' + i, { fixed: encodeOid('0.0') }],
      [IFX + '1.' + i, str(`Gi1/0/${i}`)], [IFX + '2.' + i, int(0, 0x41)], [IFX + '3.' + i, int(0, 0x41)], [IFX + '4.' + i, int(0, 0x41)], [IFX + '5.' + i, int(0, 0x41)],
      [IFX + '6.' + i, { counter: 64, base: 2 ** 40 + i, rate: rate / 8 }], [IFX + '7.' + i, { counter: 64, base: 0, rate: rate / 8000 }], [IFX + '8.' + i, { counter: 64, base: 0, rate: 1 }],
      [IFX + '9.' + i, { counter: 64, base: 0, rate: 1 }], [IFX + '10.' + i, { counter: 64, base: 2 ** 41, rate: rate / 16 }], [IFX + '11.' + i, { counter: 64, base: 0, rate: rate / 16000 }],
      [IFX + '12.' + i, { counter: 64, base: 0, rate: 1 }], [IFX + '13.' + i, { counter: 64, base: 0, rate: 1 }], [IFX + '14.' + i, int(2)], [IFX + '15.' + i, int(1000, 0x42)],
      [IFX + '16.' + i, int(1)], [IFX + '17.' + i, int(1)], [IFX + '18.' + i, str(i % 5 === 0 ? `uplink ${i}` : '')], [IFX + '19.' + i, int(0, 0x43)],
    ];
    rows.push(...cols);
  }
  rows.push(['1.3.6.1.2.1.25.2.3.1.2.1', { fixed: encodeOid('1.3.6.1.2.1.25.2.1.2') }], ['1.3.6.1.2.1.25.2.3.1.3.1', str('Physical memory')], ['1.3.6.1.2.1.25.2.3.1.4.1', int(1024)], ['1.3.6.1.2.1.25.2.3.1.5.1', int(4_194_304)], ['1.3.6.1.2.1.25.2.3.1.6.1', int(1_048_576)]);
  rows.push(['1.3.6.1.2.1.25.3.3.1.2.1', int(17)], ['1.3.6.1.2.1.25.3.3.1.2.2', int(23)]);
  rows.push(['1.3.6.1.4.1.2021.4.3.0', int(1_000_000)], ['1.3.6.1.4.1.2021.4.4.0', int(900_000)], ['1.3.6.1.4.1.2021.4.5.0', int(4_000_000)], ['1.3.6.1.4.1.2021.4.6.0', int(2_000_000)], ['1.3.6.1.4.1.2021.4.14.0', int(1000)], ['1.3.6.1.4.1.2021.4.15.0', int(2000)]);
  rows.push(['1.3.6.1.4.1.2021.10.1.5.1', int(42)], ['1.3.6.1.4.1.2021.10.1.5.2', int(37)], ['1.3.6.1.4.1.2021.10.1.5.3', int(30)]);
  const mib = rows.map(([oid, value]) => ({ oid, parts: oid.split('.').map(Number), enc: encodeOid(oid), value }));
  mib.sort((a, b) => cmpParts(a.parts, b.parts));
  return mib;
}

function cmpParts(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function runAgent(): void {
  const mib = buildMib();
  const index = new Map(mib.map((e, i) => [e.oid, i]));
  const started = Date.now();
  const nextIndex = (oid: string): number => {
    const i = index.get(oid);
    if (i !== undefined) return i + 1;
    const parts = oid.split('.').map(Number);
    let lo = 0;
    let hi = mib.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmpParts(mib[mid]!.parts, parts) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const valueOf = (e: MibEntry, now: number): Buffer => {
    const v = e.value;
    if ('fixed' in v) return v.fixed;
    if ('ticks' in v) return tlv(0x43, uintBytes(Math.floor((now - started) / 10) + 360_000));
    const raw = v.base + (v.rate * (now - started)) / 1000;
    if (v.counter === 32) return tlv(0x41, uintBytes(Math.floor(raw) % 4294967296));
    return tlv(0x46, uintBytes(BigInt(Math.floor(raw))));
  };
  const END = Buffer.from([0x82, 0x00]);
  const NOSUCH = Buffer.from([0x80, 0x00]);
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    try {
      // SEQ { INT version, OCTET community, PDU { reqId, a, b, SEQ { SEQ { OID, value } ... } } }
      let p = 0;
      const hdr = (at: number): [number, number, number] => {
        const tag = msg[at]!;
        let len = msg[at + 1]!;
        let start = at + 2;
        if (len & 0x80) {
          const n = len & 0x7f;
          len = 0;
          for (let i = 0; i < n; i++) len = len * 256 + msg[start + i]!;
          start += n;
        }
        return [tag, start, start + len];
      };
      const [, s0] = hdr(p);
      const [, , vEnd] = hdr(s0);
      const [, cStart, cEnd] = hdr(vEnd);
      const [pduTag, pStart] = hdr(cEnd);
      const [, rStart, rEnd] = hdr(pStart);
      const [, aStart, aEnd] = hdr(rEnd);
      const [, bStart, bEnd] = hdr(aEnd);
      const [, lStart, lEnd] = hdr(bEnd);
      const int = (s: number, e: number) => {
        let v = 0;
        for (let i = s; i < e; i++) v = v * 256 + msg[i]!;
        return v;
      };
      const nonRep = int(aStart, aEnd);
      const maxRep = int(bStart, bEnd);
      const oids: string[] = [];
      p = lStart;
      while (p < lEnd) {
        const [, vbStart, vbEnd] = hdr(p);
        const [, oStart, oEnd] = hdr(vbStart);
        oids.push(decodeOid(msg, oStart, oEnd));
        p = vbEnd;
      }
      const now = Date.now();
      const parts: Buffer[] = [];
      const vb = (enc: Buffer, val: Buffer) => parts.push(tlv(0x30, Buffer.concat([enc, val])));
      if (pduTag === 0xa0) {
        for (const oid of oids) {
          const i = index.get(oid);
          vb(encodeOid(oid), i === undefined ? NOSUCH : valueOf(mib[i]!, now));
        }
      } else if (pduTag === 0xa1 || pduTag === 0xa5) {
        const reps = pduTag === 0xa1 ? 1 : maxRep;
        const nr = pduTag === 0xa1 ? 0 : Math.min(nonRep, oids.length);
        for (let k = 0; k < nr; k++) {
          const i = nextIndex(oids[k]!);
          if (i < mib.length) vb(mib[i]!.enc, valueOf(mib[i]!, now));
          else vb(encodeOid(oids[k]!), END);
        }
        const cur = oids.slice(nr).map((o) => nextIndex(o));
        for (let r = 0; r < reps; r++) {
          for (let k = 0; k < cur.length; k++) {
            const i = cur[k]!;
            if (i < mib.length) {
              vb(mib[i]!.enc, valueOf(mib[i]!, now));
              cur[k] = i + 1;
            } else vb(encodeOid(oids[nr + k]!), END);
          }
        }
      } else return;
      const pdu = tlv(0xa2, Buffer.concat([msg.subarray(rStart - 2, rEnd), Buffer.from([0x02, 0x01, 0x00, 0x02, 0x01, 0x00]), tlv(0x30, Buffer.concat(parts))]));
      sock.send(tlv(0x30, Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), msg.subarray(cStart - 2, cEnd), pdu])), rinfo.port, rinfo.address);
    } catch {
      /* a malformed request is dropped, as a real agent would */
    }
  });
  sock.bind(0, '127.0.0.1', () => process.send!({ port: sock.address().port }));
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------- measurement helpers

/** CPU seconds (user+sys) of a process from /proc. */
function procCpu(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function startAgents(n: number): Promise<Array<{ port: number; child: ChildProcess }>> {
  const file = fileURLToPath(import.meta.url);
  return Promise.all(
    Array.from({ length: n }, () => new Promise<{ port: number; child: ChildProcess }>((resolve, reject) => {
      const child = fork(file, ['--agent'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.once('message', (m) => resolve({ port: (m as { port: number }).port, child }));
      child.once('error', reject);
    })),
  );
}

function targetsFor(n: number, ports: number[], intervalMs: number): Target[] {
  return parseSnmpConfig({
    concurrency: 256,
    defaults: { version: 'v2c', intervalMs, timeoutMs: 2000, retries: 1, maxRepetitions: 25 },
    targets: Array.from({ length: n }, (_, i) => ({ address: '127.0.0.1', port: ports[i % ports.length]!, community: `dev${i}`, name: `sim${String(i).padStart(5, '0')}` })),
  }).targets;
}

async function runBulkwalk(ports: number[], devices: number, walkers: number, seconds: number): Promise<{ varbinds: number; walks: number; wallS: number; failed: number }> {
  let next = 0;
  let varbinds = 0;
  let failed = 0;
  let walks = 0;
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  const one = (i: number) => new Promise<void>((resolve) => {
    const c = spawn('snmpbulkwalk', ['-v2c', '-c', `dev${i}`, '-Cr25', '-On', '-Oq', '-t', '2', '-r', '1', `127.0.0.1:${ports[i % ports.length]}`, '.1.3.6'], { env: { ...process.env, MIBS: '' }, stdio: ['ignore', 'pipe', 'ignore'] });
    let lines = 0;
    c.stdout.on('data', (d: Buffer) => {
      for (let k = 0; k < d.length; k++) if (d[k] === 10) lines++;
    });
    c.on('close', (code) => {
      if (code === 0) {
        varbinds += lines;
        walks++;
      } else failed++;
      resolve();
    });
  });
  await Promise.all(Array.from({ length: walkers }, async () => {
    while (Date.now() < deadline) await one(next++ % devices);
  }));
  return { varbinds, walks, wallS: (Date.now() - t0) / 1000, failed };
}

// ---------------------------------------------------------------- main

let agentShares: number[] = [0];

async function scheduleRun(ports: number[], devices: number, intervalMs: number, intervals: number, concurrency: number) {
  const sched = targetsFor(devices, ports, intervalMs);
  let polls = 0;
  const p = new SnmpPoller({ concurrency, sink: { emit: () => void polls++ } });
  for (const t of sched) p.addTarget(t);
  const c1 = selfCpu();
  const s0 = Date.now();
  p.start();
  await new Promise((r) => setTimeout(r, intervalMs * intervals));
  let late = 0;
  let skipped = 0;
  let failed = 0;
  let attempted = 0;
  for (const t of sched) {
    const st = p.stats(t.id)!;
    late += st.late;
    skipped += st.skipped;
    failed += st.failures;
    attempted += st.polls + st.skipped;
  }
  const seconds = (Date.now() - s0) / 1000;
  await p.stop();
  const cpu = selfCpu() - c1;
  // Every device has one slot per interval; a slot neither polled nor skipped was lost by the scheduler.
  const slots = devices * intervals;
  const lost = Math.max(0, slots - attempted - concurrency); // up to `concurrency` polls may still be in flight
  const missed = skipped + failed + lost;
  return { seconds, polls, slots, late, missed, badPct: ((late + missed) / Math.max(1, slots)) * 100, cpuPer1000: (cpu / Math.max(1, polls)) * 1000 };
}

async function main(): Promise<void> {
  if (process.argv.includes('--agent')) return runAgent();
  process.env.NOCTUA_LOG_LEVEL ??= 'silent';
  const nAgents = arg('agents', 2);
  const intervalMs = arg('interval', 10_000);
  const intervals = arg('intervals', 3);
  const walkers = arg('walkers', 8);
  const seconds = arg('seconds', 10);
  const concurrency = arg('concurrency', 256);
  const agents = await startAgents(nAgents);
  const ports = agents.map((a) => a.port);
  const agentCpu = () => agents.reduce((s, a) => s + procCpu(a.child.pid!), 0);
  const out: Record<string, unknown> = { bench: 'snmp', cores: 2, loadavg_1m_start: Number(loadavg()[0]!.toFixed(2)), agents: nAgents, interfaces_per_device: IFACES };
  console.log(`snmp bench: ${nAgents} simulated agent processes, ${IFACES} interfaces per device (full ifTable + ifXTable), load average ${loadavg()[0]!.toFixed(2)}`);

  // 1. Throughput: poll devices back to back.
  const pool = targetsFor(4000, ports, intervalMs);
  const poller = new SnmpPoller({ concurrency, sink: { emit: () => {} } });
  for (const t of pool) poller.addTarget(t);
  await Promise.all(pool.slice(0, 50).map((t) => poller.poll(t.id))); // warm-up (JIT, sockets)
  let polled = 0;
  let vbs = 0;
  let failures = 0;
  let cursor = 0;
  const c0 = selfCpu();
  const a0 = agentCpu();
  const perAgent0 = agents.map((a) => procCpu(a.child.pid!));
  const t0 = Date.now();
  const stopAt = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < stopAt) {
      const r = await poller.poll(pool[cursor++ % pool.length]!.id);
      polled++;
      vbs += r.varbinds;
      if (r.outcome !== 'ok') failures++;
    }
  }));
  const wall = (Date.now() - t0) / 1000;
  const pollerCpu = selfCpu() - c0;
  const agentsCpu = agentCpu() - a0;
  agentShares = agents.map((a, i) => ((procCpu(a.child.pid!) - perAgent0[i]!) / wall) * 100);
  await poller.stop();
  const devPerS = polled / wall;
  const ourVbS = vbs / wall;
  out.throughput_devices_per_s = Math.round(devPerS);
  out.throughput_devices_per_min = Math.round(devPerS * 60);
  out.varbinds_per_device = Math.round(vbs / Math.max(1, polled));
  out.varbinds_per_s = Math.round(ourVbS);
  out.throughput_failures = failures;
  out.poller_cpu_pct = Math.round((pollerCpu / wall) * 100);
  out.agents_cpu_pct = Math.round((agentsCpu / wall) * 100);
  out.cpu_s_per_1000_devices = Number(((pollerCpu / polled) * 1000).toFixed(2));
  console.log(`throughput: ${polled} polls in ${wall.toFixed(1)} s = ${devPerS.toFixed(0)} devices/s (${(devPerS * 60).toFixed(0)}/min), ${(ourVbS / 1000).toFixed(0)}k varbinds/s, ${failures} failed; CPU poller ${out.poller_cpu_pct}% agents ${out.agents_cpu_pct}%; ${out.cpu_s_per_1000_devices} CPU-s per 1,000 device polls`);

  // 2. Reference: Net-SNMP's snmpbulkwalk walking the same devices, in parallel processes.
  const a1 = agentCpu();
  const ref = await runBulkwalk(ports, 4000, walkers, seconds);
  const refVbS = ref.varbinds / ref.wallS;
  out.snmpbulkwalk_walkers = walkers;
  out.snmpbulkwalk_varbinds_per_s = Math.round(refVbS);
  out.snmpbulkwalk_devices_per_s = Number((ref.walks / ref.wallS).toFixed(1));
  out.snmpbulkwalk_agents_cpu_pct = Math.round(((agentCpu() - a1) / ref.wallS) * 100);
  out.ratio_to_snmpbulkwalk = Number((ourVbS / refVbS).toFixed(2));
  console.log(`reference: snmpbulkwalk x${walkers} processes: ${ref.walks} device walks (${Math.round(ref.varbinds / Math.max(1, ref.walks))} varbinds each), ${(refVbS / 1000).toFixed(0)}k varbinds/s, ${ref.failed} failed; ours/theirs = ${out.ratio_to_snmpbulkwalk}`);

  // 3. On schedule: D devices through the scheduler, starting at 95% of the measured throughput and
  //    stepping down 15% while late+missed >= 1% (at most `tries` runs of `intervals` intervals).
  const tries = arg('tries', 3);
  let devices = arg('devices', Math.max(100, Math.floor(devPerS * (intervalMs / 1000) * 0.95)));
  let passed: { devices: number; badPct: number } | undefined;
  const runs: Array<Record<string, number>> = [];
  for (let attempt = 0; attempt < tries && !passed; attempt++) {
    const r = await scheduleRun(ports, devices, intervalMs, intervals, concurrency);
    runs.push({ devices, ...r });
    console.log(`schedule: ${devices} devices every ${intervalMs / 1000} s for ${r.seconds.toFixed(0)} s: ${r.polls} polls for ${r.slots} slots, ${r.late} late, ${r.missed} missed (${r.badPct.toFixed(2)}%), ${r.cpuPer1000.toFixed(2)} CPU-s per 1,000 polls => ${r.badPct < 1 ? `${Math.round(devices * (60_000 / intervalMs))} devices per 60 s` : 'over the 1% bound'}`);
    if (r.badPct < 1) passed = { devices, badPct: r.badPct };
    else devices = Math.floor(devices * 0.85);
  }
  const last = runs.at(-1)!;
  out.schedule_interval_ms = intervalMs;
  out.schedule_runs = runs.map((r) => ({ devices: r.devices, late_or_missed_pct: Number(r.badPct!.toFixed(2)) }));
  out.schedule_devices = last.devices;
  out.schedule_late = last.late;
  out.schedule_missed = last.missed;
  out.late_or_missed_pct = Number(last.badPct!.toFixed(2));
  out.schedule_cpu_s_per_1000_devices = Number(last.cpuPer1000!.toFixed(2));
  const perMin = passed ? Math.round(passed.devices * (60_000 / intervalMs)) : null;
  out.devices_per_min = perMin;
  out.interfaces_per_min = perMin === null ? null : perMin * IFACES;
  // What one fully available core would sustain at the measured CPU cost per poll.
  out.cpu_bound_devices_per_min_per_core = Math.round(60_000 / (out.cpu_s_per_1000_devices as number));

  const perAgentMax = Math.max(...agentShares);
  const load = loadavg()[0]!;
  const limit = (out.poller_cpu_pct as number) >= 85 ? 'poller' : perAgentMax >= 85 ? 'agents' : `shared CPU (load average ${load.toFixed(1)} on 2 cores: neither the poller nor an agent got a full core)`;
  out.limit = limit;
  out.agent_cpu_pct_max = Math.round(perAgentMax);
  out.target_10k_per_min = (perMin ?? 0) >= 10_000;
  out.target_50pct_of_c = (out.ratio_to_snmpbulkwalk as number) >= 0.5;
  out.loadavg_1m_end = Number(load.toFixed(2));
  console.log(`limit: ${limit}; CPU during throughput: poller ${out.poller_cpu_pct}%, busiest agent ${out.agent_cpu_pct_max}% of a core; one free core would sustain ~${out.cpu_bound_devices_per_min_per_core} devices/min`);
  for (const a of agents) a.child.kill();
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
