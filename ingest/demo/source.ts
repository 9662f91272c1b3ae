import { randomUUID } from 'node:crypto';
import { messageBytes, type Bus, type BusProducer, type OutMessage } from '../../core/bus.js';
import { encodeBatch, encodeEvent } from '../../core/codec.js';
import { M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../core/types.js';
import { DemoNetwork, type DemoDeviceState, type DemoOptions, type Incident } from './network.js';
import { Outbox } from '../outbox.js';

/** Polls of history published at start unless backfillMs says otherwise: the anomaly warm-up (750 points) and a margin. */
export const BACKFILL_POLLS = 800;

export interface DemoSourceOptions extends DemoOptions {
  intervalMs: number;
  /** History to publish at start (ms before now); unset, BACKFILL_POLLS polls' worth. */
  backfillMs?: number;
  /**
   * Compacted topic of the devices' state (DEMO_STATE_TOPIC): each poll's samples and its device's state
   * after it are written in one transaction, so a restarted demo (killed or not) continues every device
   * from its last published poll: nothing published twice, nothing skipped. Unset: plain sends, and
   * every start is a fresh network.
   */
  stateTopic?: string;
  /** How long a start may take to read the devices' state back (ms). */
  resumeTimeoutMs?: number;
  /** Longest wait between retries while the bus does not take polls (ms; default 10 s). */
  retryMaxMs?: number;
  /** How long a stop waits for the bus to take the polls held (ms; default 15 s). */
  stopWaitMs?: number;
}

/** A poll waiting for the bus, encoded, with its device's state after it (when there is a state topic). */
interface DemoPoll {
  readonly device: string;
  readonly ts: number;
  readonly samples: number;
  readonly batch: OutMessage;
  readonly events: OutMessage[];
  readonly state?: Buffer;
}

/** Where the demo keeps its devices' state beside their samples (see DemoSourceOptions.stateTopic). */
export const DEMO_STATE_TOPIC = 'noctua.demo-state';
/** The key of the marker a starting demo writes, and reads back to know it has read all the state before it. */
const RESUME_KEY = '~resume';

/**
 * Publishes the demo network on the bus as a poller would: every device once per interval, each at a
 * stable phase within the interval (so polls don't all fire at once), one batch per poll keyed by device.
 */
export class DemoSource {
  readonly network: DemoNetwork;
  private producer: BusProducer | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** Polls the bus has not taken yet, in order, retried through outages (one transaction at a time). */
  private readonly outbox: Outbox<DemoPoll>;
  private stopped = false;
  /** Batches and samples the bus acknowledged (a clean shutdown must find all of them in ClickHouse). */
  polls = 0;
  samples = 0;

  constructor(private readonly bus: Bus, private readonly opts: DemoSourceOptions, private readonly log: Logger) {
    this.network = new DemoNetwork(opts);
    this.outbox = new Outbox<DemoPoll>({
      source: 'demo',
      log,
      send: (polls) => this.publish(polls),
      bytes: (p) => messageBytes(p.batch) + p.events.reduce((n, e) => n + messageBytes(e), 0) + (p.state?.length ?? 0),
      describe: (polls) => ({ device: polls[0]?.device, polls: polls.length }),
      ...(opts.stateTopic ? { recover: (polls: DemoPoll[]) => this.recover(opts.stateTopic!, polls) } : {}),
      ...(opts.retryMaxMs !== undefined ? { retryMaxMs: opts.retryMaxMs } : {}),
    });
  }

  private async openProducer(): Promise<BusProducer> {
    // one demo per bus: a transactional id of its own fences a previous demo process still writing
    return this.bus.producer(this.opts.stateTopic ? { transactionalId: `noctua-demo.${this.opts.seed}` } : { idempotent: true });
  }

  async start(): Promise<void> {
    const topic = this.opts.stateTopic;
    this.producer = await this.openProducer();
    const n = this.network.deviceNames.length;
    const every = this.opts.intervalMs;
    const backfillMs = this.opts.backfillMs ?? BACKFILL_POLLS * every;
    const gridOf = (ms: number) => ms - (ms % every);
    const resumedFrom = topic ? await this.resume(topic) : null;
    // Device d is polled at t + phase(d) for every interval t, the history as the live polls, so its first
    // live poll comes one interval after its last replayed one. The replay takes seconds; live polls that
    // began after the present it started from would follow a gap of that long, in which a busy Counter32
    // uplink wraps twice unseen and its rate reads as a collapse (an anomaly event at every start).
    let next = gridOf(Date.now());
    const first = Math.max(gridOf(next - backfillMs), resumedFrom === null ? -Infinity : gridOf(resumedFrom));
    if (first < next) {
      const started = Date.now();
      let from = first;
      for (let to = next; from < to; to = gridOf(Date.now())) {
        await this.backfill(from, to);
        from = to;
      }
      next = from;
      this.log.info({ fromMs: first, polls: this.polls, samples: this.samples, ms: Date.now() - started, resumed: resumedFrom !== null }, resumedFrom === null ? 'demo history backfilled' : 'demo devices caught up since their last poll');
    }
    for (let d = 0; d < n; d++) this.pollOnGrid(d, next + Math.floor((d * every) / n));
    this.log.info({ devices: n, intervalMs: every }, 'demo network started');
  }

  /**
   * Continues the devices from the state topic: the newest state of each, as its last poll's transaction
   * left it. Returns the oldest of their last polls, or null for a fresh network. A state that is not
   * of this network is set aside (counted, logged): that device starts afresh.
   */
  private async resume(topic: string): Promise<number | null> {
    await this.bus.ensureTopics([{ topic, partitions: 1, compacted: true }]);
    const states = await this.committedStates(topic);
    for (const [device, value] of states) {
      try {
        this.network.restoreDevice(JSON.parse(value.toString('utf8')));
      } catch (err) {
        M.errors.inc({ component: 'demo', kind: 'state' });
        this.log.warn({ topic, device, err: (err as Error).message }, 'demo device state not usable: the device starts afresh');
      }
    }
    const last = this.network.deviceNames.map((_, d) => this.network.lastPoll(d)).filter((t): t is number => t !== null);
    return last.length > 0 ? Math.min(...last) : null;
  }

  /**
   * The devices' state as committed transactions left it: a marker written now and read back bounds
   * it (everything before the marker is decided: this producer's start fenced any transaction a previous
   * one left open).
   */
  private async committedStates(topic: string): Promise<Map<string, Buffer>> {
    const marker = randomUUID();
    await this.transact([{ topic, messages: [{ key: RESUME_KEY, value: Buffer.from(marker) }] }]);
    const states = new Map<string, Buffer>();
    const reader = this.bus.consumer({ groupId: `noctua-demo-resume-${marker}`, fromBeginning: true, readCommitted: true, ephemeral: true });
    let done!: () => void;
    const seen = new Promise<void>((r) => (done = r));
    await reader.subscribe([topic]);
    await reader.run({
      eachBatch: async (b) => {
        for (const m of b.messages) {
          if (m.key === RESUME_KEY) {
            if (m.value?.toString() === marker) done();
          } else if (m.key !== null) {
            if (m.value === null) states.delete(m.key);
            else states.set(m.key, m.value);
          }
        }
      },
    });
    const timeoutMs = this.opts.resumeTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([seen, new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`demo: the devices' state in ${topic} was not read back within ${timeoutMs} ms`)), timeoutMs)))]);
    } finally {
      clearTimeout(timer);
      await reader.stop();
    }
    return states;
  }

  /**
   * After a failed transaction: a new producer (its start fences the old one's transaction, whatever
   * state the failure left it in), then the polls whose transaction committed after all (a commit whose
   * answer was lost) are dropped, by their devices' committed state: nothing twice, nothing lost.
   */
  private async recover(topic: string, polls: DemoPoll[]): Promise<DemoPoll[]> {
    await this.producer?.close().catch(() => {});
    this.producer = await this.openProducer();
    const committed = new Map<string, number>();
    for (const [device, value] of await this.committedStates(topic)) {
      try {
        const last = (JSON.parse(value.toString('utf8')) as DemoDeviceState).device[0];
        if (typeof last === 'number') committed.set(device, last);
      } catch {
        // an unreadable state decides nothing: its device's polls are sent
      }
    }
    const kept = polls.filter((p) => p.ts > (committed.get(p.device) ?? -Infinity));
    if (kept.length < polls.length) this.log.warn({ topic, delivered: polls.length - kept.length, held: kept.length }, 'demo: a transaction the bus failed to confirm had committed; its polls are not sent again');
    return kept;
  }

  /**
   * Polls device d at grid time `at`, then at each interval after. A timer that fires late (the
   * processors digesting the history hold the event loop for seconds at start) polls at its grid time
   * and catches up on the ones that passed meanwhile: a simulated device was polled all along, and a poll
   * at the present would follow a gap in which a busy Counter32 uplink wraps twice unseen.
   */
  private pollOnGrid(d: number, at: number): void {
    if (this.stopped) return;
    const last = this.network.lastPoll(d);
    while (last !== null && at <= last) at += this.opts.intervalMs;
    const wait = at - Date.now();
    if (wait <= 0) {
      this.pollOnce(d, at);
      this.pollOnGrid(d, at + this.opts.intervalMs);
      return;
    }
    this.timers[d] = setTimeout(() => {
      this.pollOnce(d, at);
      this.pollOnGrid(d, at + this.opts.intervalMs);
    }, wait);
  }

  /** Publishes the grid's polls of the intervals in [from, to) at once, oldest first, as if the network had been polled all along. */
  private async backfill(from: number, to: number): Promise<void> {
    let n = 0;
    for (const poll of replayDemo(this.network, from, to, this.opts.intervalMs)) {
      this.hold(poll);
      // in steps, so the history does not all wait in memory at once
      if (++n % 2048 === 0) await this.outbox.idle();
    }
    await this.outbox.idle();
  }

  inject(incident: Omit<Incident, 'start' | 'end'> & { durationMs: number }): Incident {
    const start = Date.now();
    const inc: Incident = { device: incident.device, ifIndex: incident.ifIndex, kind: incident.kind, start, end: start + incident.durationMs };
    this.network.inject(inc);
    this.log.info({ incident: inc }, 'demo incident injected');
    return inc;
  }

  private pollOnce(d: number, ts: number): void {
    // polled whether or not the bus takes polls now: the outbox holds them until it does
    if (this.stopped) return;
    this.hold(this.network.poll(d, ts));
  }

  /** Queues a poll, encoded, with its device's state as it is now (taken at once, before a later poll moves it on). */
  private hold({ batch, events }: { batch: SampleBatch; events: NetEvent[] }): void {
    const state = this.opts.stateTopic ? Buffer.from(JSON.stringify(this.network.deviceState(batch.device))) : undefined;
    this.outbox.push({
      device: batch.device,
      ts: batch.ts,
      samples: batch.samples.length,
      batch: { key: batch.device, value: encodeBatch(batch), timestamp: batch.ts },
      events: events.map((e) => ({ key: e.device, value: encodeEvent(e), timestamp: e.ts })),
      ...(state ? { state } : {}),
    });
  }

  /**
   * Publishes polls; with a state topic, in one transaction with the state of their devices after the
   * last of them. Without one, samples then events, plain.
   */
  private async publish(polls: readonly DemoPoll[]): Promise<void> {
    if (!this.producer) throw new Error('demo: no producer (stopped)');
    const writes: { topic: string; messages: OutMessage[] }[] = [
      { topic: TOPICS.samples, messages: polls.map((p) => p.batch) },
      { topic: TOPICS.events, messages: polls.flatMap((p) => p.events) },
    ];
    const topic = this.opts.stateTopic;
    if (topic) {
      const last = new Map<string, Buffer>();
      for (const p of polls) if (p.state) last.set(p.device, p.state);
      writes.push({ topic, messages: [...last].map(([key, value]) => ({ key, value })) });
      await this.transact(writes);
    } else {
      for (const w of writes) if (w.messages.length > 0) await this.producer.send(w.topic, w.messages);
    }
    const samples = polls.reduce((n, p) => n + p.samples, 0);
    this.polls += polls.length;
    this.samples += samples;
    M.batchesIngested.inc({ source: 'demo' }, polls.length);
    M.samplesIngested.inc({ source: 'demo' }, samples);
  }

  /** One transaction (the outbox and start run them one at a time on this producer). */
  private async transact(writes: { topic: string; messages: OutMessage[] }[]): Promise<void> {
    const tx = await this.producer!.transaction();
    try {
      for (const w of writes) if (w.messages.length > 0) await tx.send(w.topic, w.messages);
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => {});
      throw err;
    }
  }

  /** Stops polling and waits for batches in flight, so a clean shutdown loses nothing accepted. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await this.outbox.close(this.opts.stopWaitMs ?? 15_000);
    await this.producer?.close();
  }
}

/**
 * Deterministic replay of the demo network's poll grid between two times (device d at t + phase(d) for
 * each interval t in [from, to)), skipping the times at or before a device's last poll: it continues a
 * network, never polls it back in time.
 */
export function* replayDemo(network: DemoNetwork, from: number, to: number, intervalMs: number): Generator<{ batch: SampleBatch; events: NetEvent[] }> {
  const n = network.deviceNames.length;
  for (let t = from; t < to; t += intervalMs) {
    for (let d = 0; d < n; d++) {
      const ts = t + Math.floor((d * intervalMs) / n);
      const last = network.lastPoll(d);
      if (last === null || ts > last) yield network.poll(d, ts);
    }
  }
}
