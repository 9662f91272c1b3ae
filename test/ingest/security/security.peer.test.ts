import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fail2banMissing, startFail2ban } from '../../peers/fail2ban.js';
import { freePort, freeUdpPort, startProcess, tempDir, waitFor, type Proc } from '../../peers/util.js';

const root = join(import.meta.dirname, '../../../..');
const cli = join(root, 'dist/cli/noctua.js');

const eveAlert = (n: number, severity = 2) => JSON.stringify({ timestamp: new Date().toISOString().replace('Z', '+0000'), flow_id: 1000 + n, in_iface: 'eth0', event_type: 'alert', src_ip: `192.0.2.${n}`, src_port: 40000 + n, dest_ip: '198.51.100.10', dest_port: 22, proto: 'TCP', alert: { action: 'allowed', gid: 1, signature_id: 2001219, rev: 20, signature: `ET SCAN Potential SSH Scan ${n}`, category: 'Attempted Information Leak', severity } });
const eveFlow = (n: number) => JSON.stringify({ timestamp: new Date().toISOString().replace('Z', '+0000'), flow_id: 5000 + n, event_type: 'flow', src_ip: '192.0.2.1', dest_ip: '198.51.100.10', proto: 'TCP', flow: { pkts_toserver: n } });

test('syslog from logger, fail2ban from a real fail2ban server and Suricata EVE records reach ClickHouse as events; garbage is counted; a killed process reads on from where the bus had everything', { timeout: 300_000, skip: fail2banMissing() }, async () => {
  const dir = tempDir('security');
  const f2b = await startFail2ban(2);
  const [port, udpPort, tcpPort] = [await freePort(), await freeUdpPort(), await freePort()];
  const eve = join(dir.path, 'eve.json');
  writeFileSync(eve, `${eveAlert(1)}\n`);
  const config = join(dir.path, 'noctua.yaml');
  const configure = (startAt: 'beginning' | 'end') =>
    writeFileSync(config, JSON.stringify({
      demo: { enabled: false },
      security: {
        syslog: { enabled: true, address: '127.0.0.1', udpPort, tcpPort },
        eve: { files: [{ path: eve, device: 'ids-1' }] },
        fail2ban: { files: [{ path: f2b.log, device: 'bastion' }] },
        startAt,
        countStepMs: 1000,
      },
    }));
  configure('beginning');
  const token = 'security-test-token-0123456789';
  const env = { ...process.env, NOCTUA_DATA_DIR: dir.path, NOCTUA_TOKEN: token, NOCTUA_API__PORT: String(port), NOCTUA_LOG_LEVEL: 'warn' };
  let proc: Proc | null = null;
  const start = async () => {
    const p = startProcess(process.execPath, [cli, 'start', '--config', config], { cwd: root, env });
    proc = p;
    await waitFor('noctua to start', () => /Noctua is running/.test(p.output()) || p.child.exitCode !== null, 120_000, 100);
    assert.equal(p.child.exitCode, null, p.output());
  };
  const sql = async (q: string) => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/sql?format=csv&q=${encodeURIComponent(q)}`, { headers: { authorization: `Bearer ${token}` } });
    const t = await r.text();
    if (r.status !== 200) throw new Error(t);
    return t.trim().split('\n').slice(1).map((l) => l.replace(/"/g, ''));
  };
  const count = async (where: string) => Number((await sql(`SELECT count() FROM noctua.events FINAL WHERE ${where}`))[0]);
  try {
    await start();
    // logger (util-linux), the syslog client of every Linux host: BSD over UDP, RFC 5424 over TCP,
    // octet-counted and newline-framed.
    const logger = (...args: string[]) => {
      const r = spawnSync('logger', ['--server', '127.0.0.1', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    logger('--udp', '--port', String(udpPort), '--rfc3164', '--priority', 'auth.err', '--tag', 'sshd', 'udp-3164 Failed password for root');
    logger('--tcp', '--port', String(tcpPort), '--rfc5424', '--octet-count', '--priority', 'local4.warning', '--tag', 'ifmgr', '--msgid', 'LINK', '--sd-id', 'origin@32473', '--sd-param', 'ifName="Gi0/1"', 'tcp-5424 octet-counted link flap');
    logger('--tcp', '--port', String(tcpPort), '--rfc5424', '--priority', 'daemon.info', '--tag', 'bgpd', 'tcp-5424 newline-framed neighbor up');
    // Garbage between good messages: a datagram of binary, a TCP stream with a bad PRI between two good lines.
    const u = createSocket('udp4');
    await new Promise<void>((r) => u.send(Buffer.from([0, 1, 2, 3, 255, 254]), udpPort, '127.0.0.1', () => r()));
    await new Promise<void>((r) => u.send('<14>garbage-neighbour good after binary', udpPort, '127.0.0.1', () => r()));
    u.close();
    await new Promise<void>((resolve, reject) => {
      const s = connect(tcpPort, '127.0.0.1', () => s.end('<13>tcp-good-1\n<9999>tcp-bad-pri\n<13>tcp-good-2\n'));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    // fail2ban: three failures from one address ban it (maxretry 2), two seconds later it is unbanned.
    for (let i = 0; i < 3; i++) appendFileSync(f2b.authLog, f2b.failure('192.0.2.66'));
    appendFileSync(eve, `${eveFlow(1)}\n{"not json\n${eveAlert(2)}\n`);

    await waitFor('syslog events', async () => (await count("source = 'syslog'")) >= 6, 60_000, 500);
    const syslog = await sql("SELECT device, severity, message, JSONExtractString(fields, 'format'), JSONExtractString(fields, 'facility') FROM noctua.events FINAL WHERE source = 'syslog' ORDER BY message");
    const line = (needle: string) => syslog.find((l) => l.includes(needle)) ?? assert.fail(`${needle} not in ${syslog.join(' | ')}`);
    assert.match(line('udp-3164'), /,minor,sshd: udp-3164 Failed password for root,rfc3164,auth$/);
    assert.match(line('octet-counted'), /,warning,ifmgr: tcp-5424 octet-counted link flap,rfc5424,local4$/);
    assert.match(line('newline-framed'), /,info,bgpd: tcp-5424 newline-framed neighbor up,rfc5424,daemon$/);
    for (const good of ['garbage-neighbour', 'tcp-good-1', 'tcp-good-2']) line(good);
    assert.equal(await count("source = 'syslog' AND message LIKE '%bad-pri%'"), 0);
    const sd = await sql("SELECT JSONExtractString(fields, 'structuredData', 'origin@32473', 'ifName') FROM noctua.events FINAL WHERE message LIKE '%octet-counted%'");
    assert.deepEqual(sd, ['Gi0/1']);

    await waitFor('fail2ban ban and unban', async () => (await count("source = 'fail2ban' AND kind = 'unban'")) === 1, 60_000, 500);
    assert.equal(await count("source = 'fail2ban' AND kind = 'ban' AND device = 'bastion' AND message = '[sshd-test] ban 192.0.2.66'"), 1);
    assert.equal(await count("source = 'fail2ban' AND kind = 'found'"), 3);
    await waitFor('EVE alerts', async () => (await count("source = 'suricata'")) === 2, 30_000, 500);
    assert.equal(await count("source = 'suricata' AND kind = 'ids-alert' AND device = 'ids-1' AND severity = 'minor'"), 2);

    // Counted for alert rules: security_events_5m per device, source, kind and severity. A high-severity
    // IDS alert fires the shipped IntrusionDetected rule; the minor ones before it did not.
    await waitFor('the bans counted', async () => Number((await sql("SELECT max(value) FROM noctua.samples WHERE series IN (SELECT series FROM noctua.series WHERE metric = 'security_events_5m' AND device = 'bastion' AND labels['kind'] = 'ban')"))[0]) === 1, 30_000, 500);
    const alerts = async () => ((await (await fetch(`http://127.0.0.1:${port}/api/v1/alerts?state=firing`, { headers: { authorization: `Bearer ${token}` } })).json()) as { alerts: { rule: string; labels: Record<string, string> }[] }).alerts;
    assert.deepEqual((await alerts()).filter((a) => a.rule === 'IntrusionDetected'), []);
    appendFileSync(eve, `${eveAlert(99, 1)}\n`);
    const fired = await waitFor('IntrusionDetected', async () => (await alerts()).find((a) => a.rule === 'IntrusionDetected'), 30_000, 500);
    assert.deepEqual([fired.labels.device, fired.labels.severity], ['ids-1', 'major']);

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    assert.match(metrics, /noctua_syslog_rejected_total\{reason="binary"\} 1/);
    assert.match(metrics, /noctua_syslog_rejected_total\{reason="bad_pri"\} 1/);
    assert.match(metrics, /noctua_security_lines_total\{kind="eve",outcome="json"\} 1/);
    assert.match(metrics, /noctua_security_lines_total\{kind="eve",outcome="skipped_type"\} 1/);
    assert.match(metrics, /noctua_samples_ingested_total\{source="security"\} [1-9]/, 'the counts are samples the source produced');

    // Killed: lines written while it is down are read when it is back (from the saved position: the
    // restart says 'end' for files it never followed), and none of the ones before twice.
    await waitFor('positions saved', () => readPositions(dir.path)[eve]?.offset === statSync(eve).size, 10_000, 100);
    await proc!.kill('SIGKILL');
    configure('end');
    for (let n = 3; n <= 40; n++) appendFileSync(eve, `${eveAlert(n)}\n`);
    for (let i = 0; i < 3; i++) appendFileSync(f2b.authLog, f2b.failure('192.0.2.77'));
    await start();
    for (let n = 41; n <= 50; n++) appendFileSync(eve, `${eveAlert(n)}\n`);
    await waitFor('every EVE alert, once', async () => (await count("source = 'suricata'")) >= 51, 60_000, 500);
    await waitFor('the ban fail2ban made while noctua was down', async () => (await count("source = 'fail2ban' AND kind = 'unban'")) === 2, 60_000, 500);
    assert.deepEqual(await sql("SELECT count(), uniqExact(id), uniqExact(JSONExtractUInt(fields, 'flow_id')) FROM noctua.events WHERE source = 'suricata'"), ['51,51,51'], 'none read twice, even before merges');
    assert.equal(await count("source = 'fail2ban' AND kind = 'found'"), 6);
    // The counts went on from what the killed process had: alerts 1 and 2 before the kill, 3 to 50
    // after, all within the 5 minutes (the major alert 99 is its own series, still 1).
    const countSeries = (severity: string) => sql(`SELECT argMax(value, ts) FROM noctua.samples WHERE series IN (SELECT series FROM noctua.series WHERE metric = 'security_events_5m' AND device = 'ids-1' AND labels['severity'] = '${severity}')`);
    await waitFor('the IDS alerts counted across the kill', async () => Number((await countSeries('minor'))[0]) === 50, 30_000, 500);
    assert.deepEqual(await countSeries('major'), ['1']);
  } finally {
    await (proc as Proc | null)?.stop(15_000);
    await f2b.stop();
    dir.remove();
  }
});

function readPositions(dataDir: string): Record<string, { offset: number } | undefined> {
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'security', 'positions.json'), 'utf8')) as { positions: Record<string, { offset: number }> }).positions;
  } catch {
    return {};
  }
}
