import type { Bus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import { TOPICS } from '../core/types.js';
import { createLogger, type Logger } from '../core/log.js';
import { openClickHouse, type ClickHouse } from './clickhouse.js';
import { migrate } from './migrations.js';
import { Sink } from './sink.js';

/**
 * What `noctua sink` (and the sink part of `noctua start`) composes: ClickHouse opened and
 * migrated, the topics present, the sink consuming. Works with any Bus, in this process or not.
 */
export interface StorageRole {
  readonly ch: ClickHouse;
  readonly sink: Sink;
  /** Graceful: flush and commit, stop consuming, close ClickHouse. */
  stop(): Promise<void>;
}

export async function startSinkRole(cfg: Config, bus: Bus, log: Logger = createLogger(cfg.log.level, 'sink')): Promise<StorageRole> {
  const ch = await openClickHouse(cfg.clickhouse, cfg.dataDir);
  try {
    const applied = await migrate(ch, { rawTtlDays: cfg.clickhouse.rawTtlDays });
    log.info({ clickhouse: ch.where, version: ch.version, profile: ch.profile, embedded: ch.embedded, applied }, 'ClickHouse ready');
    await bus.ensureTopics([
      { topic: TOPICS.samples, partitions: cfg.bus.partitions },
      { topic: TOPICS.events, partitions: cfg.bus.partitions },
    ]);
    const sink = new Sink({ bus, ch, cfg: cfg.sink, log });
    await sink.start();
    return {
      ch,
      sink,
      async stop() {
        await sink.stop();
        await ch.close();
      },
    };
  } catch (err) {
    await ch.close().catch(() => undefined);
    throw err;
  }
}
