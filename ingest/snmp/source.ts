import type { BusProducer } from '../../core/bus.js';
import { busPublisher } from '../publish.js';
import type { NetEvent, SampleBatch } from '../../core/types.js';
import { parseSnmpConfig, type SnmpConfig, type Target } from './config.js';
import { SnmpPoller } from './poller.js';
import { SharedTargets, ensureTargetsTopic, publishTargets } from './assignment.js';
import type { PollSourceOptions } from '../shared-targets.js';
import { startTrapListener, type TrapListener } from './traps.js';

/**
 * The SNMP source on the bus: polls go to the samples topic (one message per poll, key = device),
 * unreachable/reachable changes and traps to the events topic.
 *
 * mode 'local'  (noctua start): this process polls every configured target.
 * mode 'shared' (noctua poll):  targets are published to the targets topic and this process polls
 *                               the ones of the partitions the consumer group assigns it.
 */

export interface SnmpSourceOptions extends PollSourceOptions {
  /** The raw `cfg.snmp` section; validated here. */
  readonly snmp: unknown;
  /** shared mode: also publish the configured targets (one process, or every process with the same config). */
  readonly publish?: boolean;
}

export interface SnmpSource {
  readonly poller: SnmpPoller;
  readonly config: SnmpConfig;
  readonly targets: readonly Target[];
  readonly traps?: TrapListener;
  stop(): Promise<void>;
}

export async function startSnmpSource(opts: SnmpSourceOptions): Promise<SnmpSource> {
  const { config, targets } = parseSnmpConfig(opts.snmp);
  const log = opts.log;
  const producer: BusProducer = await opts.bus.producer();
  // Polls wait in an outbox while the bus does not take them (a broker restart, an outage), in order, bounded.
  const publish = busPublisher('snmp', producer, { ...(log ? { log } : {}), maxBytes: config.bufferBytes, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  const sendBatch = (batch: SampleBatch) => publish.sendBatch(batch);
  const sendEvent = (e: NetEvent) => publish.sendEvent(e);

  const poller = new SnmpPoller({ concurrency: config.concurrency, breaker: config.breaker, sink: { emit: sendBatch, emitEvent: sendEvent }, ...(log ? { log } : {}) });
  let shared: SharedTargets | undefined;
  if (opts.mode === 'shared') {
    await ensureTargetsTopic(opts.bus, opts.partitions ?? 12);
    if (opts.publish !== false && targets.length > 0) await publishTargets(opts.bus, targets);
    shared = new SharedTargets(opts.bus, poller, { ...(opts.groupId ? { groupId: opts.groupId } : {}), ...(log ? { log } : {}) });
    await shared.start();
  } else {
    poller.setTargets(targets);
  }
  poller.start();

  let traps: TrapListener | undefined;
  if (config.traps.enabled) {
    const byAddress = new Map(targets.map((t) => [t.address, t.device]));
    traps = await startTrapListener({ traps: config.traps, emitEvent: sendEvent, deviceFor: (a) => poller.deviceAt(a) ?? byAddress.get(a), ...(log ? { log } : {}) });
  }
  log?.info({ targets: targets.length, mode: opts.mode ?? 'local', traps: traps ? traps.port : false }, 'snmp source started');

  return {
    poller,
    config,
    targets,
    ...(traps ? { traps } : {}),
    async stop() {
      await shared?.stop();
      await traps?.close();
      await poller.stop();
      await publish.close(15_000);
      await producer.close();
    },
  };
}
