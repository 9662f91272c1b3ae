#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { loadConfig, ConfigError } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { configProblems, runRoles, ROLES, type RoleName } from './runtime.js';
import { resolveToken } from '../api/auth.js';
import { parseSnmpConfig } from '../ingest/snmp/config.js';
import { discover } from '../ingest/snmp/discovery.js';

const USAGE = `noctua: stream-processing time-series analytics for network operations

usage: noctua <command> [--config FILE] [--roles a,b,...]

roles (long-running):
  start      everything in one process (embedded default: in-process bus, embedded ClickHouse,
             a demo network when no targets are configured); --roles picks a subset,
             e.g. \`noctua start --roles sink,serve\`
  poll       pollers (SNMP and SSH targets or the demo network, GNS3 servers) and security events
             (syslog receiver, Suricata EVE and fail2ban files) -> Kafka
  process    stream processors: rates, windows, rollups, thresholds, alerts, anomalies
  sink       Kafka -> ClickHouse, idempotent, offsets committed after ClickHouse acknowledged
  serve      the API: /health /ready /metrics, series, SQL, live WebSocket
  report     scheduled reports (PDF, XLSX, CSV; e-mail): the built-in network-weekly
             and reports.list; run one now with POST /api/v1/reports/<name>/run

other commands:
  targets    list SNMP targets of a running noctua, slowest and failing first
             (asks its API: --url, default http://api.host:api.port)
  discover   probe snmp.discovery (addresses, CIDRs) with its configured credentials and print
             each device (sysName, sysObjectID, sysDescr, interfaces) and a targets: block to paste
  migrate    apply ClickHouse schema migrations and exit
  config     check the configuration as every role would (misspelt settings, rule file) and
             print it (secrets redacted); exit 2 with every problem listed
  help       this text

configuration: --config FILE, NOCTUA_CONFIG, or ./noctua.yaml; environment overrides
NOCTUA_<SECTION>__<FIELD>, CLICKHOUSE_URL/USER/PASSWORD, KAFKA_BROKERS, NOCTUA_TOKEN.
`;

function parseArgs(argv: string[]): { command: string; config?: string; roles?: string[]; url?: string } {
  const out: { command: string; config?: string; roles?: string[]; url?: string } = { command: argv[0] ?? 'help' };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (flag === '--config' || flag === '-c') out.config = value();
    else if (flag === '--url') out.url = value();
    else if (flag === '--roles') out.roles = value().split(',').map((s) => s.trim()).filter(Boolean);
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.command === 'help' || args.command === '--help' || args.command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  if (args.command === 'version' || args.command === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`noctua ${pkg.version}\n`);
    return;
  }
  if (args.command === 'config') {
    const problems = configProblems(args.config ? { file: args.config } : {});
    if (problems.length > 0) {
      process.stderr.write(`${new ConfigError(problems).message}\n`);
      process.exit(2);
    }
  }
  let cfg;
  try {
    cfg = loadConfig({ file: args.config });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(cfg.log.level);
  if (args.command === 'config') {
    const redacted = JSON.parse(JSON.stringify(cfg, (k, v) => (/password|passphrase|token|community|authKey|privKey/i.test(k) && v ? '[redacted]' : v)));
    process.stdout.write(JSON.stringify(redacted, null, 2) + '\n');
    return;
  }
  if (args.command === 'targets') {
    const url = args.url ?? `http://${cfg.api.host === '0.0.0.0' ? '127.0.0.1' : cfg.api.host}:${cfg.api.port}`;
    const token = resolveToken(cfg.api.token, cfg.dataDir);
    const r = await fetch(`${url}/api/v1/snmp/targets?format=text&limit=1000`, { headers: { authorization: `Bearer ${token}` } }).catch((err: Error) => {
      throw new Error(`cannot reach noctua at ${url}: ${err.message}`);
    });
    if (!r.ok) throw new Error(`${url} answered ${r.status}: ${await r.text()}`);
    process.stdout.write((await r.text()) + '\n');
    return;
  }
  if (args.command === 'discover') {
    const { config } = parseSnmpConfig(cfg.snmp);
    const started = Date.now();
    process.stderr.write('discovering...\n');
    const res = await discover(config, { log });
    for (const d of res.found) {
      process.stdout.write(`${d.address}  ${d.sysName ?? '?'}  ${d.sysObjectID ?? '?'}  ${d.interfaces.length} interfaces  ${(d.sysDescr ?? '').split('\n')[0]}\n`);
      for (const i of d.interfaces) process.stdout.write(`    ${i.ifIndex.padStart(5)}  ${(i.ifName ?? i.ifDescr ?? '').padEnd(24)} ${i.ifHighSpeed ?? '?'} Mb/s  ${i.ifAlias ?? ''}\n`);
    }
    for (const f of res.failed) process.stdout.write(`${f.address}  no answer: ${f.error}\n`);
    process.stdout.write(`\n${res.found.length} found, ${res.failed.length} failed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    if (res.found.length > 0) {
      process.stdout.write('\nsnmp:\n  targets:\n');
      for (const d of res.found) process.stdout.write(`    - { address: ${d.address}, version: ${d.target.version}, labels: { sysName: ${JSON.stringify(d.sysName ?? d.address)} } }  # credentials as in discovery\n`);
    }
    return;
  }
  let roles: RoleName[];
  if (args.command === 'start') roles = (args.roles ?? [...ROLES]) as RoleName[];
  else if (args.command === 'migrate') roles = ['migrate' as RoleName];
  else if ((ROLES as readonly string[]).includes(args.command)) roles = [args.command as RoleName];
  else {
    process.stderr.write(`unknown command ${args.command}\n\n${USAGE}`);
    process.exit(2);
  }
  for (const r of roles) {
    if (r !== ('migrate' as RoleName) && !(ROLES as readonly string[]).includes(r)) {
      process.stderr.write(`unknown role ${r}: roles are ${ROLES.join(', ')}\n`);
      process.exit(2);
    }
  }
  await runRoles(roles, cfg, log);
}

main().catch((err: Error) => {
  process.stderr.write(`noctua: ${err.message}\n`);
  process.exit(1);
});
