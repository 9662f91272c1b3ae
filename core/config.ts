import { readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';

/**
 * One validated configuration schema for every role. Sources, in increasing precedence:
 * built-in defaults, a YAML/JSON file (`--config`, NOCTUA_CONFIG or ./noctua.yaml), environment.
 * Environment: NOCTUA_<SECTION>__<FIELD> (double underscore nests, values parsed as JSON when they
 * parse), plus the conventional CLICKHOUSE_URL/USER/PASSWORD, KAFKA_BROKERS and NOCTUA_TOKEN.
 */

/** A nested section that may be omitted entirely: defaults fill it. */
function section<T extends TSchema>(schema: T): T {
  return { ...schema, default: {} };
}

const Duration = Type.Integer({ minimum: 1, description: 'milliseconds' });

export const BusConfig = Type.Object({
  kind: Type.Union([Type.Literal('memory'), Type.Literal('kafka')], { default: 'memory', description: 'memory: in-process log (one process); kafka: a real broker' }),
  brokers: Type.Array(Type.String({ pattern: '^[^\\s:]+:\\d+$', description: 'host:port' }), { default: ['127.0.0.1:9092'], description: 'host:port of Kafka bootstrap brokers' }),
  clientId: Type.String({ default: 'noctua' }),
  partitions: Type.Integer({ minimum: 1, maximum: 1024, default: 6, description: 'partitions of topics created by noctua' }),
  replicationFactor: Type.Integer({ minimum: 1, default: 1 }),
});

export const ClickHouseConfig = Type.Object({
  url: Type.Optional(Type.String({ pattern: '^https?://', description: 'ClickHouse server HTTP URL; absent = embedded engine' })),
  user: Type.String({ default: 'default' }),
  password: Type.String({ default: '' }),
  database: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', default: 'noctua' }),
  /** Schema profile: `full` for the embedded engine and ClickHouse >= 23.8, `legacy` for old servers (no codecs, TTL, DateTime64). */
  profile: Type.Union([Type.Literal('auto'), Type.Literal('full'), Type.Literal('legacy')], { default: 'auto' }),
  rawTtlDays: Type.Integer({ minimum: 1, default: 14 }),
});

export const SinkConfig = Type.Object({
  groupId: Type.String({ default: 'noctua-sink' }),
  maxRows: Type.Integer({ minimum: 1, default: 100_000, description: 'flush when this many rows are buffered' }),
  maxDelayMs: { ...Duration, default: 1000, description: 'flush at least this often (ms)' },
  retryMinMs: { ...Duration, default: 200 },
  retryMaxMs: { ...Duration, default: 10_000 },
});

export const SqlLimits = Type.Object({
  maxExecutionTimeS: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  maxResultRows: Type.Integer({ minimum: 1, default: 100_000 }),
  maxMemoryBytes: Type.Integer({ minimum: 1_000_000, default: 1_000_000_000 }),
});

export const ApiConfig = Type.Object({
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  /** Bearer token for every endpoint but /health and /ready; generated and persisted under dataDir when absent. */
  token: Type.Optional(Type.String({ minLength: 16 })),
  sql: section(SqlLimits),
  maxWsPayloadBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 }),
});

export const DemoConfig = Type.Object({
  enabled: Type.Union([Type.Literal('auto'), Type.Boolean()], { default: 'auto', description: 'auto: on when no targets are configured' }),
  devices: Type.Integer({ minimum: 1, default: 12 }),
  interfaces: Type.Integer({ minimum: 1, default: 8 }),
  intervalMs: { ...Duration, default: 5000 },
  seed: Type.Integer({ default: 42 }),
  /** Mean time between injected incidents (ms). */
  incidentEveryMs: Type.Integer({ minimum: 0, default: 10 * 60_000, description: 'ms; 0 = only injected incidents' }),
  /**
   * History replayed at start (ms), so charts and detectors have a past; 0 = live only. Unset: 800
   * polls (67 min at 5-s polls), so the anomaly detector's warm-up (750 points) is over when the
   * screen opens, at any poll interval, and a fast interval does not replay hours of polls.
   */
  backfillMs: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const LogConfig = Type.Object({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

/** Sections owned by ingest/processors are loose here and validated by their own modules' schemas. */
export const ConfigSchema = Type.Object({
  dataDir: Type.String({ default: './data' }),
  bus: section(BusConfig),
  clickhouse: section(ClickHouseConfig),
  sink: section(SinkConfig),
  api: section(ApiConfig),
  demo: section(DemoConfig),
  log: section(LogConfig),
  snmp: Type.Object({ targets: Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] }) }, { additionalProperties: true, default: {} }),
  /** Hosts polled over SSH (ingest/ssh/config.ts validates it). */
  ssh: Type.Object({ targets: Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] }) }, { additionalProperties: true, default: {} }),
  /** GNS3 lab servers (ingest/gns3/config.ts validates it). */
  gns3: Type.Object({ servers: Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] }) }, { additionalProperties: true, default: {} }),
  /** Syslog receiver, Suricata EVE and fail2ban files (ingest/security/config.ts validates it). */
  security: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  processors: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  /** Scheduled reports (reports/config.ts validates it). */
  reports: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  /** Alert webhooks to ticketing (reports/webhook.ts validates it). */
  notify: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  /** What was read (file, environment, overrides merged) when it is the checks that failed, not the reading. */
  merged?: Record<string, unknown>;
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates any value against a schema (after defaults), with errors naming the field and expected
 * form. A key the schema does not name is an error too, with the nearest known key (a misspelt
 * setting silently left at its default is the worst kind of 3 a.m. surprise; Prometheus, Alertmanager
 * and Telegraf refuse them alike). `strictIn` is the part of the value whose keys must all be known:
 * the whole value, unless the caller merged in sources that may carry strays (the environment).
 */
export function validate<T extends TSchema>(schema: T, value: unknown, where: string, strictIn: unknown = value): Static<T> {
  const withDefaults = Value.Default(schema, Value.Clone(value ?? {}));
  const converted = Value.Convert(schema, withDefaults);
  const unknown = unknownKeys(schema, strictIn, where);
  const named = new Set(unknown.map((u) => u.slice(0, u.indexOf(': '))));
  const problems = [...Value.Errors(schema, converted)].flatMap((e) => {
    const path = e.path ? where + e.path.replace(/\//g, '.') : where;
    // a schema closed to other keys reports them too: once is enough, with the nearest known key
    if (named.has(path) && /unexpected property/i.test(e.message)) return [];
    const expected = describeExpected(e.schema);
    return [`${path}: ${e.message}${expected ? ` (expected ${expected})` : ''}, got ${JSON.stringify(e.value)}`];
  });
  problems.push(...unknown);
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  return converted as Static<T>;
}

/** Keys in `value` that `schema` does not name, where it names its keys (objects without additional properties), each with the nearest known one. */
export function unknownKeys(schema: TSchema, value: unknown, where: string): string[] {
  const out: string[] = [];
  const walk = (s: TSchema, v: unknown, path: string): void => {
    if (typeof v !== 'object' || v === null) return;
    if (Array.isArray(v)) {
      if (s.type === 'array' && s.items) v.forEach((x, i) => walk(s.items as TSchema, x, `${path}.${i}`));
      return;
    }
    const props = s.properties as Record<string, TSchema> | undefined;
    if (s.type !== 'object' || !props || (s.additionalProperties !== undefined && s.additionalProperties !== false)) return;
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) walk(props[k], x, `${path}.${k}`);
      else out.push(`${path}.${k}: unknown setting${nearest(k, Object.keys(props))}`);
    }
  };
  walk(schema, value, where);
  return out;
}

/** ' (did you mean "x"?)' for a known key within two edits (one for keys of four letters or fewer) or differing only in case, else the known keys. */
function nearest(key: string, known: string[]): string {
  const within = key.length <= 4 ? 1 : 2;
  const close = known.filter((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= within);
  return close.length > 0 ? ` (did you mean ${close.map((k) => JSON.stringify(k)).join(' or ')}?)` : ` (known: ${known.join(', ')})`;
}

/** Edits (insert, delete, substitute, swap two neighbours) from a to b: a swap is the commonest slip of the fingers. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function dedupe(a: string[]): string[] {
  return [...new Set(a)].slice(0, 20);
}

function describeExpected(s: TSchema): string {
  const parts: string[] = [];
  if (s.anyOf) return (s.anyOf as TSchema[]).map((x) => (x.const !== undefined ? JSON.stringify(x.const) : x.type)).join(' | ');
  if (s.type) parts.push(String(s.type));
  if (s.pattern) parts.push(`matching /${s.pattern}/`);
  if (s.minimum !== undefined) parts.push(`>= ${s.minimum}`);
  if (s.maximum !== undefined) parts.push(`<= ${s.maximum}`);
  if (s.minLength !== undefined) parts.push(`at least ${s.minLength} chars`);
  if (s.description) parts.push(`: ${s.description}`);
  return parts.join(' ');
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.NOCTUA_CONFIG ?? (existsSync('noctua.yaml') ? 'noctua.yaml' : existsSync('noctua.json') ? 'noctua.json' : undefined);
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([`${file}: cannot read (${(err as Error).message})`]);
    }
    try {
      fromFile = (parseYaml(text) ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`${file}: not valid YAML/JSON: ${(err as Error).message}`]);
    }
    if (typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError([`${file}: top level must be a mapping`]);
  }
  const merged = deepMerge(deepMerge(fromFile, envOverrides(env)), opts.overrides ?? {});
  // The file's keys must all be known; NOCTUA_* variables that name no setting are not this file's fault.
  try {
    return validate(ConfigSchema, merged, 'config', fromFile);
  } catch (err) {
    if (err instanceof ConfigError) err.merged = merged;
    throw err;
  }
}

export function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('NOCTUA_') || raw === undefined || name === 'NOCTUA_CONFIG' || name === 'NOCTUA_TOKEN' || name === 'NOCTUA_LOG_LEVEL') continue;
    const path = name.slice(7).split('__').map(camel);
    setPath(out, path, parseEnvValue(raw));
  }
  if (env.CLICKHOUSE_URL) setPath(out, ['clickhouse', 'url'], env.CLICKHOUSE_URL);
  if (env.CLICKHOUSE_USER) setPath(out, ['clickhouse', 'user'], env.CLICKHOUSE_USER);
  if (env.CLICKHOUSE_PASSWORD !== undefined) setPath(out, ['clickhouse', 'password'], env.CLICKHOUSE_PASSWORD);
  if (env.KAFKA_BROKERS) {
    setPath(out, ['bus', 'brokers'], env.KAFKA_BROKERS.split(',').map((s) => s.trim()));
    setPath(out, ['bus', 'kind'], 'kafka');
  }
  if (env.NOCTUA_TOKEN) setPath(out, ['api', 'token'], env.NOCTUA_TOKEN);
  // The conventional spelling, also read by loggers created before the config is loaded.
  if (env.NOCTUA_LOG_LEVEL) setPath(out, ['log', 'level'], env.NOCTUA_LOG_LEVEL);
  return out;
}

function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function setPath(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = v;
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (isPlain(cur) && isPlain(v)) out[k] = deepMerge(cur, v);
    else out[k] = v;
  }
  return out;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/** True when the demo network should run: explicitly on, or auto with no targets configured. */
export function demoEnabled(cfg: Config): boolean {
  if (cfg.demo.enabled === 'auto') return (cfg.snmp.targets ?? []).length === 0 && (cfg.ssh.targets ?? []).length === 0;
  return cfg.demo.enabled;
}
