import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths whose values must never reach a log line (tokens, passwords, SNMP secrets). */
export const REDACT = [
  'password', '*.password', '*.*.password', 'token', '*.token', '*.*.token', 'authorization', '*.authorization',
  'headers.authorization', 'community', '*.community', '*.*.community', 'authKey', '*.authKey', '*.*.authKey',
  'privKey', '*.privKey', '*.*.privKey', 'passphrase', '*.passphrase', '*.*.passphrase', 'privateKey', '*.privateKey', '*.*.privateKey',
  'clickhouse.url', '*.clickhouse.url',
];

export function createLogger(level = process.env.NOCTUA_LOG_LEVEL ?? 'info', name = 'noctua'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination({ sync: false, fd: 2 }));
}

/** Removes credentials from a URL before it is shown anywhere. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    u.searchParams.delete('password');
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
