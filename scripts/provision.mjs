#!/usr/bin/env node
// Installs the real peers the test suites need, when missing: Debian packages through apt-get,
// Apache Kafka's broker jars through Maven (deploy/kafka). Idempotent; prints what it does.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Debian packages and the file that proves each is installed. */
export const APT = [
  ['snmpd', '/usr/sbin/snmpd'],
  ['snmp', '/usr/bin/snmpbulkwalk'],
  ['snmpsim', '/usr/bin/snmpsimd'],
  ['clickhouse-server', '/usr/sbin/clickhouse-server'],
  ['docker-compose', '/usr/bin/docker-compose'],
  // Java and Maven for the Kafka broker (deploy/kafka/fetch.sh checks them too).
  ['maven', '/usr/bin/mvn'],
  // Headless browser for the dashboard test and the PDF reports; pdftotext reads the PDFs back.
  ['chromium', '/usr/bin/chromium'],
  ['poppler-utils', '/usr/bin/pdftotext'],
  // A real fail2ban server writes the log the security source follows (util-linux's logger, the
  // syslog client, is part of every Debian system).
  ['fail2ban', '/usr/bin/fail2ban-server'],
  // The SSH source's peer: Debian's OpenSSH server, started per test on its own port and config.
  ['openssh-server', '/usr/sbin/sshd'],
  // rsyslog: the reference receiver `npm run bench:syslog` measures beside ours.
  ['rsyslog', '/usr/sbin/rsyslogd'],
  // python3 -m venv for the GNS3 server (provisionGns3).
  ['python3-venv', '/usr/share/doc/python3-venv'],
];

function log(msg) {
  process.stderr.write(`[provision] ${msg}\n`);
}

export function provisionApt() {
  const missing = APT.filter(([, file]) => !existsSync(file)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid && process.getuid() !== 0) throw new Error(`missing Debian packages ${missing.join(' ')}; run as root or install them: apt-get install -y ${missing.join(' ')}`);
  log(`apt-get install ${missing.join(' ')}`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error(`apt-get install failed (${r.status})`);
}

/** The GNS3 server (PyPI) in a virtual environment of its own under .peers/gns3, for the GNS3 source's tests. */
export const GNS3_VERSION = '3.0.6';
export function provisionGns3() {
  const venv = join(root, '.peers', 'gns3');
  const bin = join(venv, 'bin', 'gns3server');
  if (existsSync(bin)) return;
  log(`pip install gns3-server==${GNS3_VERSION} into .peers/gns3`);
  if (!existsSync(join(venv, 'bin', 'pip'))) {
    const v = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    if (v.status !== 0) throw new Error(`python3 -m venv failed (${v.status}): apt-get install python3-venv`);
  }
  const r = spawnSync(join(venv, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', `gns3-server==${GNS3_VERSION}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`pip install gns3-server failed (${r.status})`);
}

export function provisionKafka() {
  const script = join(root, 'deploy/kafka/fetch.sh');
  if (!existsSync(script)) return;
  const r = spawnSync('bash', [script], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`deploy/kafka/fetch.sh failed (${r.status})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    provisionApt();
    provisionKafka();
    provisionGns3();
    log('peers ready');
  } catch (err) {
    log(String(err.message ?? err));
    process.exit(1);
  }
}
