/**
 * Syslog receive capacity of one process (`npm run bench:syslog`): the security source's TCP receiver
 * (RFC 6587 octet counting, RFC 5424 messages) taking N messages from C connections, parsing each into
 * an event and putting it on the in-process bus (one event per message), beside rsyslog (Debian's
 * rsyslogd, imtcp into a file), the field's standard receiver, taking the same bytes in the same run.
 * Also: UDP datagrams taken (the rest the kernel dropped) from a sender process at full speed, beside
 * rsyslogd (imudp), and the paced rate taken without loss; and RSS.
 *
 * Prints figures, then one JSON line {"bench":"syslog",...} last.
 * Flags: --messages N (200000) --connections C (4) --udp N (50000)
 */
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../core/bus-memory.js';
import { registry } from '../core/metrics.js';
import { startSecuritySource } from '../ingest/security/source.js';
import { TOPICS } from '../core/types.js';
import { freePort, freeUdpPort, tcpAccepts, waitFor } from '../test/peers/util.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('messages', 200_000);
const C = arg('connections', 4);
const U = arg('udp', 50_000);

/** N octet-counted RFC 5424 messages split over C streams, built before the clock starts. */
function streams(n: number, c: number): Buffer[] {
  const out: Buffer[][] = Array.from({ length: c }, () => []);
  for (let i = 0; i < n; i++) {
    const msg = `<86>1 2026-12-07T14:05:01.${String(i % 1000).padStart(3, '0')}Z bastion-${i % 50} sshd ${1000 + (i % 300)} - [origin@32473 ip="192.0.2.${i % 250}"] Failed password for root from 198.51.100.${i % 250} port ${40000 + (i % 20000)} ssh2 seq=${i}`;
    out[i % c]!.push(Buffer.from(`${Buffer.byteLength(msg)} ${msg}`));
  }
  return out.map((parts) => Buffer.concat(parts));
}

async function send(port: number, data: readonly Buffer[]): Promise<void> {
  await Promise.all(data.map((d) => new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(d));
    s.on('close', () => resolve());
    s.on('error', reject);
  })));
}

async function metric(name: string, match = ''): Promise<number> {
  const text = await registry.getSingleMetricAsString(name);
  return text.split('\n').filter((l) => l.startsWith(name) && l.includes(match)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
}


/** A fresh security source with its syslog receiver on an in-process bus, for one phase. */
async function withSource<T>(fn: (ports: { tcp: number; udp: number }) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-syslog-'));
  const bus = new MemoryBus({ retainConsumed: 0 });
  await bus.ensureTopics([{ topic: TOPICS.events, partitions: 12 }, { topic: TOPICS.samples, partitions: 12 }]);
  const [tcp, udp] = [await freePort(), await freeUdpPort()];
  const src = await startSecuritySource({ bus, dataDir: dir, security: { syslog: { enabled: true, address: '127.0.0.1', tcpPort: tcp, udpPort: udp } } });
  try {
    const r = await fn({ tcp, udp });
    await src.idle();
    return r;
  } finally {
    await src.stop();
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ours(data: readonly Buffer[]) {
  const tcp = await withSource(async (ports) => {
    const before = await metric('noctua_syslog_messages_total', 'transport="tcp"');
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    await send(ports.tcp, data);
    // Checked every 20 ms: the whole run is a few seconds.
    await waitFor('our receiver', async () => (await metric('noctua_syslog_messages_total', 'transport="tcp"')) - before >= N, 300_000, 20);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { secs, cpuS: (cpu.user + cpu.system) / 1e6, rssMiB: process.memoryUsage().rss / 2 ** 20 };
  });
  // UDP at full speed from another process, into a fresh source: what the receiver took of what was
  // sent (the kernel drops what the socket buffer cannot hold while the receiver is busy).
  const udpTaken = await withSource(async (ports) => {
    const u0 = await metric('noctua_syslog_messages_total', 'transport="udp"');
    return (await udpBlast(ports.udp, () => metric('noctua_syslog_messages_total', 'transport="udp"'))) - u0;
  });
  const udpSentPerS = U / udpSentSecs;
  // The paced rate it takes without loss (< 0.1% dropped), doubling from 5,000 datagrams/s.
  let lossless = 0;
  for (let rate = 5000; rate <= 160_000; rate *= 2) {
    const count = Math.min(U, rate * 3);
    const took = await withSource(async (ports) => {
      const u0 = await metric('noctua_syslog_messages_total', 'transport="udp"');
      return (await udpBlast(ports.udp, () => metric('noctua_syslog_messages_total', 'transport="udp"'), rate, count)) - u0;
    });
    const achieved = count / udpSentSecs;
    process.stdout.write(`  UDP paced at ${rate.toLocaleString()}/s (sent at ${Math.round(achieved).toLocaleString()}/s): ${took.toLocaleString()} of ${count.toLocaleString()} taken\n`);
    if (took < count * 0.999 || achieved < rate * 0.9) break;
    lossless = rate;
  }
  return { ...tcp, perS: N / tcp.secs, udpTaken, udpSentPerS, udpLossless: lossless };
}

let udpSentSecs = 0;

/** `count` datagrams from a sender process at `rate` per second (0: full speed); then what `taken()` counts once it stops growing. */
async function udpBlast(port: number, taken: () => Promise<number> | number, rate = 0, count = U): Promise<number> {
  const sender = fork(fileURLToPath(import.meta.url), ['--udp-sender', String(port), String(count), String(rate)]);
  // The sender's own sending time (not its start-up).
  sender.on('message', (m: { secs: number }) => (udpSentSecs = m.secs));
  await new Promise((r) => sender.on('exit', r));
  let n = await taken();
  for (let still = 0; still < 5; ) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await taken();
    still = now === n ? still + 1 : 0;
    n = now;
  }
  return n;
}

async function rsyslog(data: readonly Buffer[]) {
  const bin = '/usr/sbin/rsyslogd';
  if (!existsSync(bin)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'bench-rsyslog-'));
  const [port, udpPort] = [await freePort(), await freeUdpPort()];
  const out = join(dir, 'out.log');
  writeFileSync(join(dir, 'rsyslog.conf'), [
    `global(workDirectory="${dir}")`,
    'module(load="imtcp")',
    'module(load="imudp")',
    `input(type="imtcp" port="${port}" address="127.0.0.1")`,
    `input(type="imudp" port="${udpPort}" address="127.0.0.1")`,
    `action(type="omfile" file="${out}" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off")`,
  ].join('\n'));
  const p = spawn(bin, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await waitFor('rsyslogd to listen', () => tcpAccepts(port), 15_000, 20);
    const lines = () => {
      try {
        const b = readFileSync(out);
        let n = 0;
        for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
        return n;
      } catch {
        return 0;
      }
    };
    const t0 = process.hrtime.bigint();
    await send(port, data);
    // rsyslog writes asynchronously: wait until every line is in its file.
    let last = -1;
    await waitFor('rsyslogd', () => {
      if (!existsSync(out) || statSync(out).size === last) return false;
      last = statSync(out).size;
      return lines() >= N;
    }, 300_000, 20);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const udpTaken = await udpBlast(udpPort, lines);
    return { secs, perS: N / secs, udpTaken: udpTaken - N };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${err}`);
  } finally {
    p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--udp-sender') {
  const [port, count, rate] = [Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] ?? 0)];
  const t0 = performance.now();
  const u = createSocket('udp4');
  const dgram = Buffer.from('<86>1 2026-12-07T14:05:01.000Z bastion sshd 1000 - - Failed password for root from 198.51.100.7 port 40000 ssh2');
  let sent = 0;
  // In flights of 64: as fast as the socket takes them, without queueing all of them in memory.
  while (sent < count) {
    // Paced: no further ahead of `rate` per second than one flight.
    if (rate > 0) {
      const ahead = sent - ((performance.now() - t0) / 1000) * rate;
      if (ahead > 0) await new Promise((r) => setTimeout(r, Math.max(1, (ahead / rate) * 1000)));
    }
    const flight = Math.min(64, count - sent);
    await Promise.all(Array.from({ length: flight }, () => new Promise<void>((r) => u.send(dgram, port, '127.0.0.1', () => r()))));
    sent += flight;
  }
  u.close();
  process.send?.({ secs: (performance.now() - t0) / 1000 }, () => process.exit(0));
  await new Promise(() => {}); // the benchmark below is the parent's
}

const data = streams(N, C);
const bytes = data.reduce((a, d) => a + d.length, 0);
process.stdout.write(`syslog: ${N.toLocaleString()} RFC 5424 messages (${(bytes / 2 ** 20).toFixed(1)} MiB, octet-counted) over ${C} TCP connections\n`);
const r = await rsyslog(data);
if (r) process.stdout.write(`  rsyslogd (imtcp -> file)           ${Math.round(r.perS).toLocaleString()} msg/s (${r.secs.toFixed(2)} s)\n`);
else process.stdout.write('  rsyslogd not installed: no reference (apt-get install rsyslog)\n');
const o = await ours(data);
process.stdout.write(`  noctua (parse -> event -> bus)     ${Math.round(o.perS).toLocaleString()} msg/s (${o.secs.toFixed(2)} s, ${o.cpuS.toFixed(2)} s CPU, ${(o.cpuS / N * 1e6).toFixed(1)} µs CPU per message)${r ? `, ${(o.perS / r.perS).toFixed(2)}x rsyslogd` : ''}\n`);
process.stdout.write(`  UDP from another process at full speed (${Math.round(o.udpSentPerS).toLocaleString()} datagrams/s), taken of ${U.toLocaleString()} (the rest the kernel dropped): noctua ${o.udpTaken.toLocaleString()}${r ? `, rsyslogd ${r.udpTaken.toLocaleString()}` : ''}\n  UDP taken without loss up to ${o.udpLossless.toLocaleString()} datagrams/s (paced); RSS after the TCP phase ${o.rssMiB.toFixed(0)} MiB\n`);
process.stdout.write(JSON.stringify({ bench: 'syslog', messages: N, connections: C, noctua_msgs_per_s: Math.round(o.perS), noctua_cpu_us_per_msg: Number((o.cpuS / N * 1e6).toFixed(1)), rsyslogd_msgs_per_s: r ? Math.round(r.perS) : null, ratio_to_rsyslogd: r ? Number((o.perS / r.perS).toFixed(2)) : null, udp_sent: U, udp_sent_per_s: Math.round(o.udpSentPerS), udp_taken: o.udpTaken, udp_lossless_per_s: o.udpLossless, rsyslogd_udp_taken: r ? r.udpTaken : null, rss_mib: Math.round(o.rssMiB) }) + '\n');
process.exit(0);
