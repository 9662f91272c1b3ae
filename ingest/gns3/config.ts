import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, validate } from '../../core/config.js';

/** The `gns3:` configuration section: GNS3 lab servers (v3 API) to poll and to listen to. */
export const Gns3ConfigSchema = Type.Object({
  servers: Type.Array(
    Type.Object(
      {
        url: Type.String({ pattern: '^https?://', description: 'the GNS3 server, e.g. http://gns3.lab:3080' }),
        /** The name on samples and events (default: the URL's host). */
        name: Type.Optional(Type.String({ minLength: 1 })),
        user: Type.String({ minLength: 1, default: 'admin' }),
        password: Type.String({ default: '' }),
        intervalMs: Type.Integer({ minimum: 1000, default: 30_000 }),
        timeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
        /** Listen to each opened project's notification stream (node and link changes as events). */
        notifications: Type.Boolean({ default: true }),
      },
      { additionalProperties: false },
    ),
    { default: [] },
  ),
});
export type Gns3Config = Static<typeof Gns3ConfigSchema>;
/** A resolved server; also its wire form on noctua.targets.gns3 (scale-out, ../shared-targets.ts). The id is its name. */
export const Gns3ServerWire = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1 }),
  url: Type.String({ pattern: '^https?://' }),
  user: Type.String({ minLength: 1 }),
  password: Type.String(),
  intervalMs: Type.Integer({ minimum: 1000 }),
  timeoutMs: Type.Integer({ minimum: 100 }),
  notifications: Type.Boolean(),
});
export type Gns3Server = Static<typeof Gns3ServerWire>;

export function parseGns3Config(raw: unknown): { config: Gns3Config; servers: Gns3Server[] } {
  const config = validate(Gns3ConfigSchema, raw ?? {}, 'config.gns3');
  const seen = new Set<string>();
  const problems: string[] = [];
  const servers = config.servers.map((s, i) => {
    const name = s.name ?? new URL(s.url).host;
    if (seen.has(name)) problems.push(`config.gns3.servers.${i}: two servers named ${name} (set name)`);
    seen.add(name);
    return { ...s, url: s.url.replace(/\/+$/, ''), name, id: name };
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, servers };
}
