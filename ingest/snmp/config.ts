import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, validate } from '../../core/config.js';
import { OUTBOX_MAX_BYTES } from '../outbox.js';

/**
 * The `snmp:` configuration section. Every target field but `address` may come from `defaults`, so a
 * fleet sharing credentials and interval is a list of addresses. Credentials are only ever taken from
 * here: discovery tries the configured ones and never guesses.
 */

const Ms = (def: number, description: string, min = 1) => Type.Integer({ minimum: min, default: def, description });

export const V3User = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    level: Type.Union([Type.Literal('noAuthNoPriv'), Type.Literal('authNoPriv'), Type.Literal('authPriv')]),
    authProtocol: Type.Optional(Type.Union([Type.Literal('sha'), Type.Literal('sha256')], { description: 'SHA-1 or SHA-256 (HMAC-SHA-256-192)' })),
    authKey: Type.Optional(Type.String({ minLength: 8, description: 'auth passphrase (>= 8 chars, RFC 3414)' })),
    privProtocol: Type.Optional(Type.Literal('aes', { description: 'AES-128 CFB' })),
    privKey: Type.Optional(Type.String({ minLength: 8 })),
  },
  { additionalProperties: false },
);
export type V3User = Static<typeof V3User>;

const Version = Type.Union([Type.Literal('v1'), Type.Literal('v2c'), Type.Literal('v3')]);

/** Fields a target may set itself or inherit from `defaults`. */
const TargetFields = {
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  version: Type.Optional(Version),
  community: Type.Optional(Type.String({ minLength: 1 })),
  user: Type.Optional(V3User),
  intervalMs: Type.Optional(Type.Integer({ minimum: 1000, description: 'poll interval (ms)' })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 10, description: 'per-request timeout (ms)' })),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
  maxRepetitions: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'GETBULK max-repetitions' })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
};

export const TargetSchema = Type.Object(
  {
    address: Type.String({ minLength: 1, description: 'IP address or host name' }),
    /** The device name on samples and events; defaults to the address. */
    name: Type.Optional(Type.String({ minLength: 1 })),
    ...TargetFields,
  },
  { additionalProperties: false },
);
export type TargetConfig = Static<typeof TargetSchema>;

export const Credential = Type.Object(
  { version: Version, community: Type.Optional(Type.String({ minLength: 1 })), user: Type.Optional(V3User) },
  { additionalProperties: false },
);

export const SnmpConfigSchema = Type.Object({
  defaults: Type.Object(
    {
      port: Type.Integer({ minimum: 1, maximum: 65535, default: 161 }),
      version: { ...Version, default: 'v2c' },
      community: Type.Optional(Type.String({ minLength: 1 })),
      user: Type.Optional(V3User),
      intervalMs: Ms(60_000, 'poll interval (ms)', 1000),
      timeoutMs: Ms(2000, 'per-request timeout (ms)', 10),
      retries: Type.Integer({ minimum: 0, maximum: 10, default: 1 }),
      maxRepetitions: Type.Integer({ minimum: 1, maximum: 200, default: 25 }),
      labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    },
    { default: {}, additionalProperties: false },
  ),
  targets: Type.Array(TargetSchema, { default: [] }),
  /** Polls in flight at once in this process. */
  concurrency: Type.Integer({ minimum: 1, maximum: 100_000, default: 500 }),
  /** Polls held while the bus does not take them (bytes); beyond, the oldest are dropped and counted. */
  bufferBytes: Type.Integer({ minimum: 1024 * 1024, default: OUTBOX_MAX_BYTES, description: 'bytes of polls held while the bus is unreachable (noctua_outbox_held_bytes); beyond, the oldest are dropped (noctua_outbox_dropped_total)' }),
  breaker: Type.Object(
    {
      failures: Type.Integer({ minimum: 1, default: 3, description: 'consecutive unreachable polls that open the breaker' }),
      maxBackoffMs: Ms(600_000, 'longest wait between probes of a dead device (ms)'),
    },
    { default: {}, additionalProperties: false },
  ),
  discovery: Type.Object(
    {
      addresses: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      cidrs: Type.Array(Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$' }), { default: [] }),
      port: Type.Integer({ minimum: 1, maximum: 65535, default: 161 }),
      credentials: Type.Array(Credential, { default: [] }),
      timeoutMs: Ms(1000, 'per-probe timeout (ms)', 10),
      concurrency: Type.Integer({ minimum: 1, default: 64 }),
      /** Largest CIDR expansion accepted (a /16 typo must not launch 65k probes). */
      maxAddresses: Type.Integer({ minimum: 1, default: 4096 }),
    },
    { default: {}, additionalProperties: false },
  ),
  traps: Type.Object(
    {
      enabled: Type.Boolean({ default: false }),
      address: Type.String({ default: '0.0.0.0' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 162 }),
      /** v1/v2c communities accepted; traps with others are rejected and counted. */
      communities: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      users: Type.Array(V3User, { default: [] }),
    },
    { default: {}, additionalProperties: false },
  ),
});
export type SnmpConfig = Static<typeof SnmpConfigSchema>;

/** A target with every field resolved: what the poller works with. */
export interface Target {
  /** Stable identity: the key on the targets topic, the scheduler id, the status row. */
  readonly id: string;
  readonly device: string;
  readonly address: string;
  readonly port: number;
  readonly version: 'v1' | 'v2c' | 'v3';
  readonly community?: string;
  readonly user?: V3User;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly maxRepetitions: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** Validates `cfg.snmp` (throws ConfigError naming the field) and resolves every target. */
export function parseSnmpConfig(raw: unknown): { config: SnmpConfig; targets: Target[] } {
  const config = validate(SnmpConfigSchema, raw ?? {}, 'config.snmp');
  const problems: string[] = [];
  const targets: Target[] = [];
  const seen = new Set<string>();
  config.targets.forEach((t, i) => {
    try {
      const r = resolveTarget(t, config.defaults);
      if (seen.has(r.id)) throw new Error(`duplicate target ${r.id}`);
      seen.add(r.id);
      targets.push(r);
    } catch (err) {
      problems.push(`config.snmp.targets.${i}: ${(err as Error).message}`);
    }
  });
  for (const [i, u] of config.traps.users.entries()) {
    const p = userProblem(u);
    if (p) problems.push(`config.snmp.traps.users.${i}: ${p}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return { config, targets };
}

export function resolveTarget(t: TargetConfig, d: SnmpConfig['defaults']): Target {
  const version = t.version ?? d.version;
  const port = t.port ?? d.port;
  const community = t.community ?? d.community;
  const user = t.user ?? d.user;
  if ((version === 'v1' || version === 'v2c') && !community) throw new Error(`${t.address}: ${version} needs a community (in the target or in defaults)`);
  if (version === 'v3') {
    if (!user) throw new Error(`${t.address}: v3 needs a user (in the target or in defaults)`);
    const p = userProblem(user);
    if (p) throw new Error(`${t.address}: ${p}`);
  }
  const id = t.name ?? (port === 161 ? t.address : `${t.address}:${port}`);
  return {
    id,
    device: t.name ?? t.address,
    address: t.address,
    port,
    version,
    ...(version === 'v3' ? { user: user! } : { community: community! }),
    intervalMs: t.intervalMs ?? d.intervalMs,
    timeoutMs: t.timeoutMs ?? d.timeoutMs,
    retries: t.retries ?? d.retries,
    maxRepetitions: t.maxRepetitions ?? d.maxRepetitions,
    labels: { ...d.labels, ...(t.labels ?? {}) },
  };
}

function userProblem(u: V3User): string | undefined {
  if (u.level !== 'noAuthNoPriv' && (!u.authProtocol || !u.authKey)) return `v3 user ${u.name}: level ${u.level} needs authProtocol and authKey`;
  if (u.level === 'authPriv' && (!u.privProtocol || !u.privKey)) return `v3 user ${u.name}: level authPriv needs privProtocol and privKey`;
  return undefined;
}
