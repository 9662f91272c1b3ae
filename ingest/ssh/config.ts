import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, validate } from '../../core/config.js';
import { OUTBOX_MAX_BYTES } from '../outbox.js';

/**
 * The `ssh:` configuration section: hosts polled over SSH (Linux servers, appliances and jump hosts
 * without an SNMP agent). Every target field but `address` may come from `defaults`.
 */

const TargetFields = {
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  user: Type.Optional(Type.String({ minLength: 1 })),
  /** A private key file (OpenSSH or PEM); preferred over a password. */
  privateKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  passphrase: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  /** The host key's SHA-256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...); a host with another key is refused. */
  hostKey: Type.Optional(Type.String({ pattern: '^SHA256:[A-Za-z0-9+/]{43}=?$' })),
  intervalMs: Type.Optional(Type.Integer({ minimum: 1000 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
};

export const SshConfigSchema = Type.Object({
  defaults: Type.Object(
    {
      port: Type.Integer({ minimum: 1, maximum: 65535, default: 22 }),
      user: Type.Optional(Type.String({ minLength: 1 })),
      privateKeyFile: Type.Optional(Type.String({ minLength: 1 })),
      passphrase: Type.Optional(Type.String()),
      password: Type.Optional(Type.String()),
      intervalMs: Type.Integer({ minimum: 1000, default: 60_000 }),
      timeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
      labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    },
    { default: {}, additionalProperties: false },
  ),
  targets: Type.Array(Type.Object({ address: Type.String({ minLength: 1 }), name: Type.Optional(Type.String({ minLength: 1 })), ...TargetFields }, { additionalProperties: false }), { default: [] }),
  concurrency: Type.Integer({ minimum: 1, default: 50 }),
  bufferBytes: Type.Integer({ minimum: 1024 * 1024, default: OUTBOX_MAX_BYTES }),
});
export type SshConfig = Static<typeof SshConfigSchema>;

/**
 * A resolved target; also its wire form on the SSH targets topic (scale-out, ../shared-targets.ts).
 * The private key stays a path: its bytes never go on the bus, and every poll host reads its own copy
 * (at each poll, so a rotated key is taken up).
 */
export const SshTargetWire = Type.Object({
  id: Type.String({ minLength: 1 }),
  device: Type.String({ minLength: 1 }),
  address: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  user: Type.String({ minLength: 1 }),
  privateKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  passphrase: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  hostKey: Type.Optional(Type.String()),
  intervalMs: Type.Integer({ minimum: 1000 }),
  timeoutMs: Type.Integer({ minimum: 100 }),
  labels: Type.Record(Type.String(), Type.String()),
});
export type SshTarget = Static<typeof SshTargetWire>;

/** Validates `cfg.ssh` and resolves every target (a key file this host cannot read is a config error). */
export function parseSshConfig(raw: unknown): { config: SshConfig; targets: SshTarget[] } {
  const config = validate(SshConfigSchema, raw ?? {}, 'config.ssh');
  const d = config.defaults;
  const problems: string[] = [];
  const targets: SshTarget[] = [];
  const seen = new Set<string>();
  config.targets.forEach((t, i) => {
    const where = `config.ssh.targets.${i}`;
    const user = t.user ?? d.user;
    const keyFile = t.privateKeyFile ?? d.privateKeyFile;
    const password = t.password ?? d.password;
    if (!user) problems.push(`${where}: ${t.address} needs a user (in the target or in defaults)`);
    if (!keyFile && password === undefined) problems.push(`${where}: ${t.address} needs privateKeyFile or password (in the target or in defaults)`);
    if (keyFile) {
      try {
        readFileSync(keyFile);
      } catch (err) {
        problems.push(`${where}.privateKeyFile: cannot read ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    const port = t.port ?? d.port;
    const id = `${t.address}:${port}`;
    if (seen.has(id)) problems.push(`${where}: duplicate target ${id}`);
    seen.add(id);
    const passphrase = t.passphrase ?? d.passphrase;
    targets.push({
      id,
      device: t.name ?? t.address,
      address: t.address,
      port,
      user: user ?? '',
      ...(keyFile ? { privateKeyFile: keyFile } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(t.hostKey ? { hostKey: t.hostKey } : {}),
      intervalMs: t.intervalMs ?? d.intervalMs,
      timeoutMs: t.timeoutMs ?? d.timeoutMs,
      labels: { ...d.labels, ...t.labels },
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, targets };
}
