import type { Bus } from './bus.js';
import type { Config } from './config.js';
import { MemoryBus, type MemoryBusOptions } from './bus-memory.js';
import { KafkaBus, type KafkaBusOptions } from './bus-kafka.js';

export interface CreateBusOptions {
  /** Extra options for the in-process bus (retention, retry backoff). */
  readonly memory?: MemoryBusOptions;
  /** Extra options for the Kafka bus (retry, heartbeats, logger); brokers and clientId come from the config. */
  readonly kafka?: Omit<KafkaBusOptions, 'brokers' | 'clientId' | 'replicationFactor'>;
}

/** The bus the configuration asks for: the in-process log (embedded default) or a Kafka cluster. */
export function createBus(cfg: Config['bus'], opts: CreateBusOptions = {}): Bus {
  switch (cfg.kind) {
    case 'memory':
      return new MemoryBus(opts.memory);
    case 'kafka':
      return new KafkaBus({ ...opts.kafka, brokers: cfg.brokers, clientId: cfg.clientId, replicationFactor: cfg.replicationFactor });
    default:
      throw new Error(`unknown bus kind ${JSON.stringify((cfg as { kind: unknown }).kind)} (expected "memory" or "kafka")`);
  }
}
