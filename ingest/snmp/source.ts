import { messageBytes, type Bus, type BusProducer, type OutMessage } from '../../core/bus.js';
import { Outbox } from '../outbox.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../core/types.js';
import { encodeBatch, encodeEvent } from '../../core/codec.js';
import { M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { parseSnmpConfig, type SnmpConfig, type Target } from './config.js';
import { SnmpPoller } from './poller.js';
import { SharedTargets, ensureTargetsTopic, publishTargets } from './assignment.js';
import { startTrapListener, type TrapListener } from './traps.js';

/**
 * The SNMP source on the bus: polls go to the samples topic (one message per poll, key = device),
 * unreachable/reachable changes and traps to the events topic.
 *
 * mode 'local'  (noctua start): this process polls every configured target.
 * mode 'shared' (noctua poll):  targets are published to the targets topic and this process polls
 *                               the ones of the partitions the consumer group assigns it.
 */

export interface SnmpSourceOptions {
  readonly bus: Bus;
  /** The raw `cfg.snmp` section; validated here. */
  readonly snmp: unknown;
  readonly mode?: 'local' | 'shared';
  /** shared mode: also publish the configured targets (one process, or every process with the same config). */
  readonly publish?: boolean;
  /** shared mode: partitions of the targets topic when it is created. */
  readonly partitions?: number;
  readonly groupId?: string;
  readonly log?: Logger;
}

/** A message on its way to the bus; `samples` when it is a poll's batch (counted once the bus took it). */
interface Outgoing {
  readonly topic: string;
  readonly message: OutMessage;
  readonly samples?: number;
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
  // Polls wait here while the bus does not take them (a broker restart, an outage), in order, bounded.
  const outbox = new Outbox<Outgoing>({
    source: 'snmp',
    ...(log ? { log } : {}),
    maxBytes: config.bufferBytes,
    lane: (o) => o.topic,
    bytes: (o) => messageBytes(o.message),
    describe: (os) => ({ topic: os[0]?.topic, device: os[0]?.message.key, messages: os.length }),
    send: async (os) => {
      await producer.send(os[0]!.topic, os.map((o) => o.message));
      for (const o of os) {
        if (o.samples === undefined) continue;
        M.batchesIngested.inc({ source: 'snmp' });
        M.samplesIngested.inc({ source: 'snmp' }, o.samples);
      }
    },
  });
  const sendBatch = (batch: SampleBatch) => {
    let value: Buffer;
    try {
      value = encodeBatch(batch);
    } catch (err) {
      M.errors.inc({ component: 'snmp', kind: 'encode' });
      log?.error({ device: batch.device, err: (err as Error).message }, 'snmp batch could not be encoded');
      return;
    }
    outbox.push({ topic: TOPICS.samples, message: { key: batch.device, value, timestamp: batch.ts }, samples: batch.samples.length });
  };
  const sendEvent = (e: NetEvent) => {
    outbox.push({ topic: TOPICS.events, message: { key: e.device, value: encodeEvent(e), timestamp: e.ts } });
  };

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
      await outbox.close(15_000);
      await producer.close();
    },
  };
}
