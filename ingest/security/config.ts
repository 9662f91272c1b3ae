import { Type, type Static } from '@sinclair/typebox';
import { validate } from '../../core/config.js';

/**
 * The `security:` configuration section: a syslog receiver (UDP and TCP), Suricata EVE JSON files and
 * fail2ban logs to follow. Everything is off until configured; each part is independent.
 */

const Port = (description: string) => Type.Integer({ minimum: 0, maximum: 65535, description });

const FileSpec = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    /** The device the events are about (the sensor, the host fail2ban guards); defaults to this host's name. */
    device: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type FileSpec = Static<typeof FileSpec>;

export const SecurityConfigSchema = Type.Object({
  syslog: Type.Object(
    {
      enabled: Type.Boolean({ default: false }),
      address: Type.String({ default: '0.0.0.0' }),
      /** 0 = any free port (tests); unset = not listening on that transport. */
      udpPort: Type.Optional(Port('UDP port (RFC 5426); 514 is the standard one')),
      tcpPort: Type.Optional(Port('TCP port (RFC 6587: octet-counted or newline-framed)')),
      /** Longer messages are cut here and marked truncated (RFC 5424 asks receivers to take at least 2048). */
      maxMessageBytes: Type.Integer({ minimum: 480, maximum: 1024 * 1024, default: 64 * 1024 }),
      /** TCP connections at once; more are refused and counted. */
      maxConnections: Type.Integer({ minimum: 1, default: 1000 }),
    },
    { default: {}, additionalProperties: false },
  ),
  eve: Type.Object(
    {
      files: Type.Array(FileSpec, { default: [] }),
      /** EVE event types that become events (flow, dns, http, stats records are telemetry, not events). */
      types: Type.Array(Type.String({ minLength: 1 }), { default: ['alert', 'anomaly', 'drop'] }),
    },
    { default: {}, additionalProperties: false },
  ),
  fail2ban: Type.Object(
    {
      files: Type.Array(FileSpec, { default: [] }),
      /** Also each failure a jail found (many during a brute force), not only bans and unbans. */
      found: Type.Boolean({ default: true }),
    },
    { default: {}, additionalProperties: false },
  ),
  /** Where a file never followed before is first read from: its end (tail -f), or its beginning. */
  startAt: Type.Union([Type.Literal('end'), Type.Literal('beginning')], { default: 'end' }),
  /** How often followed files are checked for new lines and rotation (ms). */
  pollMs: Type.Integer({ minimum: 10, default: 250 }),
  /** How often security_events_5m (events per device, source, kind and severity in the last 5 min) is sent (ms). */
  countStepMs: Type.Integer({ minimum: 1000, default: 10_000 }),
  /** Longest line read from a followed file; longer ones are skipped and counted. */
  maxLineBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
});
export type SecurityConfig = Static<typeof SecurityConfigSchema>;

/** Validates `cfg.security` (throws ConfigError naming the field). */
export function parseSecurityConfig(raw: unknown): SecurityConfig {
  return validate(SecurityConfigSchema, raw ?? {}, 'config.security');
}

/** True when any part of the section is configured to run. */
export function securityEnabled(c: SecurityConfig): boolean {
  return (c.syslog.enabled && (c.syslog.udpPort !== undefined || c.syslog.tcpPort !== undefined)) || c.eve.files.length > 0 || c.fail2ban.files.length > 0;
}
