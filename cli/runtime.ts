import { join, resolve } from 'node:path';
import type { Config, LoadOptions } from '../core/config.js';
import { ConfigError, demoEnabled, loadConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Bus, TopicSpec } from '../core/bus.js';
import { createBus } from '../core/bus-factory.js';
import { TOPICS } from '../core/types.js';
import { openClickHouse, type ClickHouse } from '../storage/clickhouse.js';
import { migrate } from '../storage/migrations.js';
import { Sink } from '../storage/sink.js';
import { buildApi, buildOpsApi, type ReadyCheck } from '../api/server.js';
import type { FastifyInstance } from 'fastify';
import { resolveToken } from '../api/auth.js';
import { storageQueries } from '../api/queries.js';
import { DEMO_STATE_TOPIC, DemoSource } from '../ingest/demo/source.js';
import { demoRoutes } from '../api/demo-routes.js';
import { LiveHub } from '../api/live.js';
import { dashboard } from '../api/dashboard.js';
import { startSnmpSource } from '../ingest/snmp/source.js';
import { snmpRoutes } from '../api/snmp-routes.js';
import { startRollupSink } from '../processors/rollup-sink.js';
import { anomalyStage, processorConfig, startProcessor, windowOptions, processorTimings, type Processor, type ProcessorConfig } from '../processors/runner.js';
import { CommandSender, SilenceBook } from '../processors/commands.js';
import { loadRulesFile, watchRules } from '../processors/rules.js';
import { parseSnmpConfig } from '../ingest/snmp/config.js';
import { parseSecurityConfig, securityEnabled } from '../ingest/security/config.js';
import { startSecuritySource } from '../ingest/security/source.js';
import { Reporter } from '../reports/reporter.js';
import { parseSshConfig } from '../ingest/ssh/config.js';
import { startSshSource } from '../ingest/ssh/source.js';
import { parseGns3Config } from '../ingest/gns3/config.js';
import { startGns3Source } from '../ingest/gns3/source.js';
import { parseReportsConfig } from '../reports/config.js';
import { reportRoutes } from '../api/report-routes.js';
import { startWebhookSender, webhookConfig } from '../reports/webhook.js';
import { fileURLToPath } from 'node:url';

const DEFAULT_RULES = fileURLToPath(new URL('../../deploy/rules/default.yaml', import.meta.url));

/**
 * Validates what each role validates when it starts (`noctua config`): the processors' settings, their
 * durations and anomaly operator, the rule file, the SNMP section and the webhooks, so a check does
 * not wait for the role that would trip on it. All problems at once, as one ConfigError.
 */
export function checkConfig(cfg: Config): void {
  const problems: string[] = [];
  const check = (f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      problems.push(...(err instanceof ConfigError ? err.problems : [(err as Error).message]));
    }
  };
  let pcfg: ProcessorConfig | undefined;
  check(() => (pcfg = processorConfig(cfg.processors)));
  if (pcfg) {
    const p = pcfg;
    check(() => windowOptions(p));
    check(() => processorTimings(p));
    check(() => anomalyStage(p));
    check(() => loadRulesFile(resolve(p.rulesFile ?? DEFAULT_RULES)));
  }
  check(() => webhookConfig({ topic: pcfg?.notificationsTopic, ...cfg.notify }));
  check(() => parseSnmpConfig(cfg.snmp));
  check(() => parseSecurityConfig(cfg.security));
  check(() => parseSshConfig(cfg.ssh));
  check(() => parseGns3Config(cfg.gns3));
  check(() => parseReportsConfig(cfg.reports));
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * Every problem of a configuration at once, as `noctua config` reports them: the top level's, and the
 * sections' the roles check at their start (checkConfig) even when the top level has problems of its
 * own, so one run lists everything to fix. Empty when it is fine.
 */
export function configProblems(opts: LoadOptions): string[] {
  try {
    checkConfig(loadConfig(opts));
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (!err.merged) return err.problems;
    const raw = err.merged;
    const sections = { processors: raw.processors ?? {}, notify: raw.notify ?? {}, snmp: raw.snmp ?? {}, ssh: raw.ssh ?? {}, gns3: raw.gns3 ?? {}, security: raw.security ?? {}, reports: raw.reports ?? {} } as unknown as Config;
    try {
      checkConfig(sections);
    } catch (inner) {
      if (!(inner instanceof ConfigError)) throw inner;
      return [...err.problems, ...inner.problems.filter((p) => !err.problems.includes(p))];
    }
    return err.problems;
  }
}

export const ROLES = ['poll', 'process', 'sink', 'serve', 'report'] as const;
export type RoleName = (typeof ROLES)[number] | 'migrate';

export interface Runtime {
  readonly cfg: Config;
  readonly bus: Bus | null;
  readonly ch: ClickHouse | null;
  readonly url: string | null;
  readonly token: string;
  readonly demo: DemoSource | null;
  readonly sink: Sink | null;
  stop(): Promise<void>;
}

export function topicSpecs(cfg: Config): TopicSpec[] {
  const p = cfg.bus.partitions;
  return [
    { topic: TOPICS.samples, partitions: p },
    { topic: TOPICS.events, partitions: p },
    { topic: TOPICS.rollups, partitions: p },
    { topic: TOPICS.alerts, partitions: p },
    { topic: TOPICS.targets, partitions: p, compacted: true },
    { topic: TOPICS.sshTargets, partitions: p, compacted: true },
    { topic: TOPICS.gns3Targets, partitions: p, compacted: true },
  ];
}

/** Starts the given roles in this process; each is a thin composition of the folders. */
export async function startRuntime(roles: readonly RoleName[], cfg: Config, log: Logger): Promise<Runtime> {
  const has = (r: RoleName) => roles.includes(r);
  const stops: (() => Promise<void>)[] = [];
  const token = resolveToken(cfg.api.token, cfg.dataDir);
  let bus: Bus | null = null;
  let ch: ClickHouse | null = null;
  let demo: DemoSource | null = null;
  let sink: Sink | null = null;
  let url: string | null = null;
  let processor: Processor | null = null;
  let reporter: Reporter | null = null;
  const stopAll = async () => {
    for (const s of stops.reverse()) {
      try {
        log.debug({ step: s.toString().slice(0, 80) }, 'stopping');
        await s();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'error while stopping');
      }
    }
    stops.length = 0;
  };
  try {
    if (cfg.bus.kind === 'memory' && roles.some((r) => r !== 'migrate' && r !== 'report') && !(has('poll') && has('sink'))) {
      throw new Error(`the in-process bus only connects roles of one process; running ${roles.join(',')} alone needs Kafka: set KAFKA_BROKERS=host:port (or bus.kind: kafka)`);
    }
    if (has('sink') || has('serve') || has('report') || has('migrate')) {
      ch = await openClickHouse(cfg.clickhouse, cfg.dataDir);
      const c = ch;
      stops.push(() => c.close());
      await migrate(ch, cfg.clickhouse);
      log.info({ clickhouse: ch.where, profile: ch.profile, version: ch.version }, 'clickhouse ready');
      if (has('migrate') && roles.length === 1) {
        await stopAll();
        return { cfg, bus, ch: null, url, token, demo, sink, stop: async () => {} };
      }
    }
    // Embedded: the in-process log journals to dataDir/bus, so a killed process resumes without loss.
    bus = createBus(cfg.bus, { memory: { dir: join(cfg.dataDir, 'bus') } });
    const b = bus;
    stops.push(() => b.close());
    await bus.ensureTopics(topicSpecs(cfg));

    if (has('serve')) {
      if (!ch) throw new Error('serve needs ClickHouse');
      const c = ch;
      const hub = new LiveHub(bus, log, cfg.api.maxWsPayloadBytes);
      // Acks and silences are commands on the processors' input topic, whichever process runs them.
      const input = processorConfig(cfg.processors).input;
      await bus.ensureTopics([{ topic: input, partitions: cfg.bus.partitions }]);
      const commands = new CommandSender(bus, input);
      stops.push(() => commands.close());
      const silences = new SilenceBook(bus);
      await silences.start();
      stops.push(() => silences.stop());
      const app = await buildApi({
        cfg,
        token,
        log,
        queries: storageQueries(c, cfg),
        ready: readiness(c),
        plugins: [demoRoutes(() => demo), snmpRoutes, reportRoutes(() => reporter), dashboard, (a) => hub.register(a)],
        alerts: { commands, local: () => processor, ch: c, silences },
      });
      url = await listen(app, cfg);
      stops.push(() => app.close());
      await hub.start();
      stops.push(() => hub.stop());
    }
    if (has('sink')) {
      if (!ch) throw new Error('sink needs ClickHouse');
      sink = new Sink({ bus, ch, cfg: cfg.sink, log });
      await sink.start();
      const s = sink;
      stops.push(() => s.stop());
      // Rollups and alert history ride the same role: they are the processors' outputs to store.
      const rollups = await startRollupSink({ bus, ch, log });
      stops.push(() => rollups.stop());
    }
    if (has('process')) {
      const pcfg = processorConfig(demoEnabled(cfg) ? demoProcessors(cfg.processors) : cfg.processors);
      // The shipped defaults (deploy/rules/default.yaml) unless processors.rulesFile names another file.
      const rulesFile = resolve(pcfg.rulesFile ?? DEFAULT_RULES);
      const watcher = watchRules(rulesFile, (r) => processor?.setRules(r), { log });
      stops.push(async () => watcher.close());
      processor = await startProcessor({ bus, config: pcfg, rules: watcher.current(), log, partitions: cfg.bus.partitions });
      const p = processor;
      stops.push(() => p.stop());
      const ncfg = webhookConfig({ topic: pcfg.notificationsTopic, ...cfg.notify });
      if (ncfg.receivers.length > 0) {
        const hooks = await startWebhookSender(bus, ncfg, log);
        stops.push(() => hooks.stop());
      }
      log.info({ rulesFile, rules: watcher.current().rules.length }, 'processors started');
    }
    if (has('poll')) {
      if (demoEnabled(cfg)) {
        demo = new DemoSource(bus, { ...cfg.demo, intervalMs: cfg.demo.intervalMs, stateTopic: DEMO_STATE_TOPIC }, log);
        await demo.start();
        const d = demo;
        stops.push(() => d.stop());
      } else {
        // One process polls everything it is configured with; separate `noctua poll` processes
        // divide the targets through the targets topic's consumer group.
        const alone = roles.includes('sink');
        if ((cfg.snmp.targets ?? []).length > 0 || (cfg.ssh.targets ?? []).length === 0) {
          const snmp = await startSnmpSource({ bus, snmp: cfg.snmp, mode: alone ? 'local' : 'shared', publish: true, partitions: cfg.bus.partitions, dataDir: cfg.dataDir, log });
          stops.push(() => snmp.stop());
          log.info({ targets: snmp.targets.length, mode: alone ? 'local' : 'shared' }, 'snmp source started');
        }
        if ((cfg.ssh.targets ?? []).length > 0) {
          // As SNMP: separate poll processes divide them through noctua.targets.ssh's consumer group.
          const ssh = await startSshSource({ bus, ssh: cfg.ssh, dataDir: cfg.dataDir, mode: alone ? 'local' : 'shared', partitions: cfg.bus.partitions, log });
          stops.push(() => ssh.stop());
        }
      }
      // A lab server beside the network (the demo, or real targets): polled and listened to.
      if ((cfg.gns3.servers ?? []).length > 0) {
        const gns3 = await startGns3Source({ bus, gns3: cfg.gns3, dataDir: cfg.dataDir, mode: roles.includes('sink') ? 'local' : 'shared', partitions: cfg.bus.partitions, log });
        stops.push(() => gns3.stop());
      }
      // Syslog, EVE and fail2ban are this host's: every poll process runs what its own config names.
      if (securityEnabled(parseSecurityConfig(cfg.security))) {
        const byAddress = new Map(parseSnmpConfig(cfg.snmp).targets.map((t) => [t.address, t.device]));
        const security = await startSecuritySource({ bus, security: cfg.security, dataDir: cfg.dataDir, deviceFor: (a) => byAddress.get(a), log });
        stops.push(() => security.stop());
      }
    }
    if (has('report')) {
      if (!ch) throw new Error('report needs ClickHouse');
      const r = new Reporter({ ch, config: parseReportsConfig(cfg.reports), limits: cfg.api.sql, dataDir: cfg.dataDir, log });
      r.start();
      reporter = r;
      stops.push(() => r.stop().then(() => undefined));
    }
    if (!has('serve')) {
      // A process without the API still answers probes and scrapes (compose healthchecks, Prometheus).
      const app = buildOpsApi({ token, log, ready: readiness(ch) });
      url = await listen(app, cfg);
      stops.push(() => app.close());
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { cfg, bus, ch, url, token, demo, sink, stop: stopAll };
}

/** Ready when ClickHouse (for the roles that hold a client) answers; the bus reconnects by itself. */
function readiness(ch: ClickHouse | null): ReadyCheck {
  return async () => {
    const checks: Record<string, string> = {};
    if (ch) {
      try {
        await ch.client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json());
        checks.clickhouse = 'ok';
      } catch (err) {
        checks.clickhouse = `unreachable: ${(err as Error).message}`;
      }
    }
    checks.bus = 'ok';
    return checks;
  };
}

/** Listens on api.host:api.port and returns the URL to print; a taken or privileged port says what to set. */
async function listen(app: FastifyInstance, cfg: Config): Promise<string> {
  await app.listen({ host: cfg.api.host, port: cfg.api.port }).catch((err: NodeJS.ErrnoException) => {
    const where = `${cfg.api.host}:${cfg.api.port}`;
    if (err.code === 'EADDRINUSE') throw new Error(`the API cannot listen on ${where}: another process (another noctua?) holds it; set api.port in noctua.yaml or NOCTUA_API__PORT`, { cause: err });
    if (err.code === 'EACCES') throw new Error(`the API may not listen on ${where} (a port below 1024 needs privileges); set api.port in noctua.yaml or NOCTUA_API__PORT`, { cause: err });
    throw err;
  });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.api.port;
  return `http://${cfg.api.host === '0.0.0.0' ? '127.0.0.1' : cfg.api.host}:${port}`;
}

/** The latest anomaly events with the rules that raised them (the banner's example; README: what each reason means). */
export const ANOMALY_QUERY = "SELECT ts, device, JSONExtract(fields, 'reasons', 'Array(String)') AS reasons, message FROM noctua.events WHERE kind = 'anomaly' ORDER BY ts DESC LIMIT 10";

function banner(rt: Runtime, roles: readonly RoleName[]): string {
  const lines = [
    `Noctua is running: roles ${roles.join(', ')}; bus ${rt.cfg.bus.kind === 'memory' ? 'in-process' : rt.cfg.bus.brokers.join(',')}; ClickHouse ${rt.ch ? (rt.ch.embedded ? `embedded (${rt.ch.where})` : rt.ch.where) : 'not in this process'}${rt.demo ? `; demo network of ${rt.demo.network.deviceNames.length} devices` : ''}`,
  ];
  const auth = `-H 'Authorization: Bearer ${rt.token}'`;
  if (rt.url && !roles.includes('serve')) {
    lines.push(
      `  Health    ${rt.url}/health   ${rt.url}/ready`,
      `  Metrics   curl ${auth} ${rt.url}/metrics`,
      `  Token     ${rt.token}   (set api.token or NOCTUA_TOKEN; otherwise kept in ${resolve(rt.cfg.dataDir, 'api-token')})`,
    );
  } else if (rt.url) {
    lines.push(
      `  Dashboard ${rt.url}/ui/?token=${rt.token}`,
      `  Health    ${rt.url}/health   ${rt.url}/ready`,
      `  Metrics   curl ${auth} ${rt.url}/metrics`,
      `  Series    curl ${auth} '${rt.url}/api/v1/series?metric=ifHCInOctets&device=core-rtr-1&from=-15m'`,
      `  SQL       curl ${auth} --data-urlencode 'q=SELECT metric, count() FROM noctua.samples GROUP BY metric' -G ${rt.url}/api/v1/sql`,
      `  Alerts    curl ${auth} '${rt.url}/api/v1/alerts?state=firing'   (ack: POST /api/v1/alerts/<fingerprint>/ack {"by":"you","comment":"..."})`,
      `  Anomalies curl ${auth} --data-urlencode "q=${ANOMALY_QUERY}" -G ${rt.url}/api/v1/sql`,
      ...(roles.includes('report') ? [`  Report    curl ${auth} -X POST ${rt.url}/api/v1/reports/network-weekly/run   (PDF and XLSX of the last 7 days; the answer links them)`] : []),
      `  Token     ${rt.token}   (set api.token or NOCTUA_TOKEN; otherwise kept in ${resolve(rt.cfg.dataDir, 'api-token')})`,
    );
  }
  lines.push('  Stop      Ctrl-C (buffered batches are flushed to ClickHouse before exit)');
  return lines.join('\n') + '\n';
}

/**
 * The demo backfills 800 polls (about an hour at its 5-s polls), not the day of history a series needs before its anomalies
 * raise events (processors.anomaly.eventsAfter): unless set, the demo raises them from the end of
 * the detector's warm-up, so an incident injected into it shows at once.
 */
function demoProcessors(raw: Record<string, unknown>): Record<string, unknown> {
  const anomaly = (raw.anomaly ?? {}) as Record<string, unknown>;
  if (anomaly.eventsAfter !== undefined) return raw;
  return { ...raw, anomaly: { ...anomaly, eventsAfter: '0s' } };
}

export async function runRoles(roles: readonly RoleName[], cfg: Config, log: Logger): Promise<void> {
  const rt = await startRuntime(roles, cfg, log);
  if (roles.length === 1 && roles[0] === 'migrate') {
    process.stdout.write('migrations applied\n');
    return;
  }
  process.stdout.write(banner(rt, roles));
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took over 30 s; exiting');
      process.exit(1);
    }, 30_000);
    force.unref();
    await rt.stop();
    log.info('stopped cleanly');
    if (rt.demo) process.stdout.write(`demo produced ${rt.demo.samples} samples in ${rt.demo.polls} batches\n`);
    process.stdout.write('Noctua stopped cleanly.\n');
    log.flush?.();
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
