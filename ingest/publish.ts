import { join } from 'node:path';
import { messageBytes, type BusProducer, type OutMessage } from '../core/bus.js';
import { encodeBatch, encodeEvent } from '../core/codec.js';
import { M } from '../core/metrics.js';
import type { Logger } from '../core/log.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../core/types.js';
import { Outbox, type SpoolOptions } from './outbox.js';
import { frameMessage, unframeMessage } from './spool.js';

/** A message on its way to the bus; `samples` when it is a poll's batch (counted once the bus took it). */
interface Outgoing {
  readonly topic: string;
  readonly message: OutMessage;
  readonly samples?: number;
}

/** How a polling source puts its batches and events on the bus, through an outbox (see outbox.ts). */
export interface Publisher {
  sendBatch(batch: SampleBatch): void;
  sendEvent(e: NetEvent): void;
  /** Waits up to `timeoutMs` for the bus to take what is held; returns how many were dropped. */
  close(timeoutMs: number): Promise<number>;
}

/**
 * Batches to the samples topic and events to the events topic (key = device), each topic a lane of one
 * outbox: polls wait in order through a bus outage, bounded by `maxBytes`, and are counted as ingested
 * (noctua_samples_ingested_total{source}) once the bus took them.
 */
/** `dataDir`: the outbox spools to dataDir/spool/<source> while the bus does not take what it holds (spool.ts). */
export function busPublisher(source: string, producer: BusProducer, opts: { log?: Logger; maxBytes?: number; dataDir?: string } = {}): Publisher {
  const log = opts.log;
  const outbox = new Outbox<Outgoing>({
    source,
    ...(log ? { log } : {}),
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
    ...(opts.dataDir ? { spool: messageSpool(join(opts.dataDir, 'spool', source)) } : {}),
    lane: (o) => o.topic,
    bytes: (o) => messageBytes(o.message),
    describe: (os) => ({ topic: os[0]?.topic, device: os[0]?.message.key, messages: os.length }),
    send: async (os) => {
      await producer.send(os[0]!.topic, os.map((o) => o.message));
      for (const o of os) {
        if (o.samples === undefined) continue;
        M.batchesIngested.inc({ source });
        M.samplesIngested.inc({ source }, o.samples);
      }
    },
  });
  return {
    sendBatch(batch) {
      let value: Buffer;
      try {
        value = encodeBatch(batch);
      } catch (err) {
        M.errors.inc({ component: source, kind: 'encode' });
        log?.error({ device: batch.device, err: (err as Error).message }, `${source} batch could not be encoded`);
        return;
      }
      outbox.push({ topic: TOPICS.samples, message: { key: batch.device, value, timestamp: batch.ts }, samples: batch.samples.length });
    },
    sendEvent(e) {
      outbox.push({ topic: TOPICS.events, message: { key: e.device, value: encodeEvent(e), timestamp: e.ts } });
    },
    close: (timeoutMs) => outbox.close(timeoutMs),
  };
}

/** Spooled as the message it is (topic, key, timestamp, bytes) and the samples it counts. */
function messageSpool(dir: string): SpoolOptions<Outgoing> {
  return {
    dir,
    encode: (o) => frameMessage(o.topic, o.message, o.samples !== undefined ? { samples: o.samples } : {}),
    decode: (frame) => {
      const { topic, message, extra } = unframeMessage(frame);
      return { topic, message, ...(extra.samples !== undefined ? { samples: extra.samples } : {}) };
    },
  };
}
