import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKafka } from '../peers/kafka.js';
import { spawnSync } from 'node:child_process';
import { freePort, freeUdpPort, startProcess, tempDir, waitFor, type Proc } from '../peers/util.js';

const root = join(import.meta.dirname, '../../..');
const cli = join(root, 'dist/cli/noctua.js');

/** What the demo network's polls become: raw counters in samples, derived rates in the rollups. */
const RAW = ['ifHCInOctets', 'ifOperStatus', 'sysUpTime', 'hrProcessorLoad'];
const DERIVED = ['if_in_bps', 'if_out_bps', 'if_in_util_pct'];

test('poll, process and sink+serve as separate processes over Kafka store what noctua start stores', { timeout: 420_000 }, async () => {
  const kafka = await startKafka();
  const dirs = ['poll', 'process', 'store'].map((n) => tempDir(`roles-${n}`));
  // Each process answers HTTP on its own port: the API for sink+serve, probes and /metrics for the others.
  const [port, pollPort, processPort] = [await freePort(), await freePort(), await freePort()];
  const token = 'roles-test-token-0123456789';
  const env = (dir: string, p: number) => ({ ...process.env, KAFKA_BROKERS: kafka.brokers.join(','), NOCTUA_DATA_DIR: dir, NOCTUA_TOKEN: token, NOCTUA_LOG_LEVEL: 'warn', NOCTUA_DEMO__INTERVAL_MS: '1000', NOCTUA_API__PORT: String(p) });
  const procs: Proc[] = [];
  try {
    const launch = async (args: string[], dir: string, at: number) => {
      const p = startProcess(process.execPath, [cli, ...args], { cwd: root, env: env(dir, at) });
      procs.push(p);
      await waitFor(`noctua ${args.join(' ')} to start`, () => /Noctua is running/.test(p.output()) || p.child.exitCode !== null, 90_000, 100);
      assert.equal(p.child.exitCode, null, p.output());
      return p;
    };
    await launch(['start', '--roles', 'sink,serve'], dirs[2]!.path, port);
    const processor = await launch(['process'], dirs[1]!.path, processPort);
    // The poller also receives syslog (ingest/security), on its own host's port, into the same Kafka.
    const syslogPort = await freeUdpPort();
    const poller = startProcess(process.execPath, [cli, 'poll'], { cwd: root, env: { ...env(dirs[0]!.path, pollPort), NOCTUA_SECURITY__SYSLOG__ENABLED: 'true', NOCTUA_SECURITY__SYSLOG__ADDRESS: '127.0.0.1', NOCTUA_SECURITY__SYSLOG__UDP_PORT: String(syslogPort) } });
    procs.push(poller);
    await waitFor('noctua poll to start', () => /Noctua is running/.test(poller.output()) || poller.child.exitCode !== null, 90_000, 100);
    assert.equal(poller.child.exitCode, null, poller.output());
    assert.match(processor.output(), new RegExp(`Metrics +curl .*http://127\\.0\\.0\\.1:${processPort}/metrics`), processor.output());

    const sql = async (q: string) => {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/sql?format=csv&q=${encodeURIComponent(q)}`, { headers: { authorization: `Bearer ${token}` } });
      const t = await r.text();
      if (r.status !== 200) throw new Error(t);
      return t.trim().split('\n').slice(1).map((l) => l.replace(/"/g, ''));
    };
    await waitFor('raw demo samples', async () => (await sql('SELECT DISTINCT metric FROM noctua.samples')).length >= 10, 60_000, 1000);
    const raw = await sql('SELECT DISTINCT metric FROM noctua.samples');
    for (const m of RAW) assert.ok(raw.includes(m), `samples has ${m}: ${raw.join(',')}`);
    // One-minute windows close once the watermark (newest event time - 15 s) passes their end.
    await waitFor('1-minute rollups of derived rates', async () => {
      const got = await sql('SELECT DISTINCT metric FROM noctua.rollups_1m');
      return DERIVED.every((m) => got.includes(m));
    }, 240_000, 2000);
    const devices = await sql('SELECT DISTINCT device FROM noctua.series ORDER BY device');
    assert.ok(devices.includes('core-rtr-1') && devices.length === 12, devices.join(','));
    const logger = spawnSync('logger', ['--server', '127.0.0.1', '--udp', '--port', String(syslogPort), '--rfc5424', '--priority', 'local7.err', '--tag', 'bgpd', 'roles: BGP neighbor 192.0.2.1 down'], { encoding: 'utf8' });
    assert.equal(logger.status, 0, logger.stderr);
    await waitFor('the syslog message, through Kafka', async () => (await sql("SELECT severity FROM noctua.events WHERE source = 'syslog' AND message LIKE '%BGP neighbor%'")).join() === 'minor', 60_000, 1000);

    // A role without the API is probed and scraped like any exporter: its own counters, behind the token.
    const get = (p: number, path: string, auth = true) => fetch(`http://127.0.0.1:${p}${path}`, auth ? { headers: { authorization: `Bearer ${token}` } } : {});
    for (const p of [pollPort, processPort]) {
      assert.equal((await get(p, '/health', false)).status, 200);
      const ready = await get(p, '/ready', false);
      assert.equal(ready.status, 200, await ready.text());
      assert.equal((await get(p, '/metrics', false)).status, 401, 'metrics need the token');
      assert.equal((await get(p, '/api/v1/sql?q=SELECT%201')).status, 404, 'no SQL outside serve');
    }
    const counted = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name + '{')).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
    const pm = await (await get(processPort, '/metrics')).text();
    assert.ok(counted(pm, 'noctua_processor_messages_total') > 0, 'the processor counts its input');
    assert.match(pm, /noctua_bus_lag_messages\{[^}]*topic="noctua\.samples"/, 'and its lag on the samples it owns');
    const om = await (await get(pollPort, '/metrics')).text();
    assert.ok(counted(om, 'noctua_samples_ingested_total') > 0, 'the poller counts what it produced');
    assert.equal(counted(om, 'noctua_processor_messages_total'), 0, 'and nothing it did not do');
    // A clean start on a fresh broker is no error: an operator's alert on noctua_errors_total must stay quiet.
    const sm = await (await get(port, '/metrics')).text();
    for (const [role, text] of [['process', pm], ['poll', om], ['sink,serve', sm]] as const) {
      const errors = text.split('\n').filter((l) => l.startsWith('noctua_errors_total{'));
      assert.equal(counted(text, 'noctua_errors_total'), 0, `${role} counted errors on a clean start: ${errors.join('; ')}`);
    }
  } finally {
    for (const p of procs.reverse()) await p.stop(15_000);
    await kafka.stop();
    for (const d of dirs) d.remove();
  }
});
