import type { Bus, BusProducer } from '../../core/bus.js';
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
  let pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const sendBatch = (batch: SampleBatch) => {
    let value: Buffer;
    try {
      value = encodeBatch(batch);
    } catch (err) {
      M.errors.inc({ component: 'snmp', kind: 'encode' });
      log?.error({ device: batch.device, err: (err as Error).message }, 'snmp batch could not be encoded');
      return;
    }
    track(
      producer.send(TOPICS.samples, [{ key: batch.device, value, timestamp: batch.ts }]).then(
        () => {
          M.batchesIngested.inc({ source: 'snmp' });
          M.samplesIngested.inc({ source: 'snmp' }, batch.samples.length);
        },
        (err: Error) => {
          M.errors.inc({ component: 'snmp', kind: 'produce' });
          log?.error({ device: batch.device, topic: TOPICS.samples, err: err.message }, 'snmp batch not produced');
        },
      ),
    );
  };
  const sendEvent = (e: NetEvent) => {
    track(
      producer.send(TOPICS.events, [{ key: e.device, value: encodeEvent(e), timestamp: e.ts }]).catch((err: Error) => {
        M.errors.inc({ component: 'snmp', kind: 'produce' });
        log?.error({ device: e.device, topic: TOPICS.events, kind: e.kind, err: err.message }, 'snmp event not produced');
      }),
    );
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
      await Promise.allSettled([...pending]);
      pending = new Set();
      await producer.close();
    },
  };
}
