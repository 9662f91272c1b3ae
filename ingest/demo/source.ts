import { randomUUID } from 'node:crypto';
import type { Bus, BusProducer, OutMessage } from '../../core/bus.js';
import { encodeBatch, encodeEvent } from '../../core/codec.js';
import { M } from '../../core/metrics.js';
import type { Logger } from '../../core/log.js';
import { TOPICS, type NetEvent, type SampleBatch } from '../../core/types.js';
import { DemoNetwork, type DemoOptions, type Incident } from './network.js';

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
  /** Transactions on one producer run one at a time: each publish chains on the previous one. */
  private chain: Promise<void> = Promise.resolve();
  private inflight = new Set<Promise<void>>();
  private stopped = false;
  /** Batches and samples the bus acknowledged (a clean shutdown must find all of them in ClickHouse). */
  polls = 0;
  samples = 0;

  constructor(private readonly bus: Bus, private readonly opts: DemoSourceOptions, private readonly log: Logger) {
    this.network = new DemoNetwork(opts);
  }

  async start(): Promise<void> {
    const topic = this.opts.stateTopic;
    // one demo per bus: a transactional id of its own fences a previous demo process still writing
    this.producer = await this.bus.producer(topic ? { transactionalId: `noctua-demo.${this.opts.seed}` } : { idempotent: true });
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
    // Everything before this marker is committed (a previous demo's open transaction was fenced above).
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
    let polls: { batch: SampleBatch; events: NetEvent[] }[] = [];
    let pending: Promise<void>[] = [];
    const flush = () => {
      // with a state topic, one transaction per chunk: its polls and the state of the devices after them
      if (this.opts.stateTopic) pending.push(this.publish(polls));
      else for (const p of polls) pending.push(this.publish([p]));
      polls = [];
    };
    for (const poll of replayDemo(this.network, from, to, this.opts.intervalMs)) {
      polls.push(poll);
      if (polls.length >= 256) flush();
      if (pending.length >= 256) {
        await Promise.all(pending);
        pending = [];
      }
    }
    flush();
    await Promise.all(pending);
  }

  inject(incident: Omit<Incident, 'start' | 'end'> & { durationMs: number }): Incident {
    const start = Date.now();
    const inc: Incident = { device: incident.device, ifIndex: incident.ifIndex, kind: incident.kind, start, end: start + incident.durationMs };
    this.network.inject(inc);
    this.log.info({ incident: inc }, 'demo incident injected');
    return inc;
  }

  private pollOnce(d: number, ts: number): void {
    if (this.stopped || !this.producer) return;
    const poll = this.network.poll(d, ts);
    const p = this.publish([poll]).catch((err: Error) => {
      M.errors.inc({ component: 'demo', kind: 'produce' });
      this.log.error({ device: poll.batch.device, err: err.message }, 'demo batch could not be produced');
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /**
   * Publishes polls; with a state topic, in one transaction with the state of their devices as it is
   * now (taken at once, before any later poll moves them on).
   */
  private async publish(polls: { batch: SampleBatch; events: NetEvent[] }[]): Promise<void> {
    const writes: { topic: string; messages: OutMessage[] }[] = [
      { topic: TOPICS.samples, messages: polls.map(({ batch }) => ({ key: batch.device, value: encodeBatch(batch), timestamp: batch.ts })) },
      { topic: TOPICS.events, messages: polls.flatMap(({ events }) => events.map((e) => ({ key: e.device, value: encodeEvent(e), timestamp: e.ts }))) },
    ];
    const topic = this.opts.stateTopic;
    if (topic) {
      const devices = new Set(polls.map((p) => p.batch.device));
      writes.push({ topic, messages: [...devices].map((name) => ({ key: name, value: Buffer.from(JSON.stringify(this.network.deviceState(name))) })) });
      await this.transact(writes);
    } else {
      for (const w of writes) if (w.messages.length > 0) await this.producer!.send(w.topic, w.messages);
    }
    const samples = polls.reduce((n, p) => n + p.batch.samples.length, 0);
    this.polls += polls.length;
    this.samples += samples;
    M.batchesIngested.inc({ source: 'demo' }, polls.length);
    M.samplesIngested.inc({ source: 'demo' }, samples);
  }

  /** One transaction, after the ones before it (a producer holds one open transaction at a time). */
  private transact(writes: { topic: string; messages: OutMessage[] }[]): Promise<void> {
    const run = async () => {
      const tx = await this.producer!.transaction();
      try {
        for (const w of writes) if (w.messages.length > 0) await tx.send(w.topic, w.messages);
        await tx.commit();
      } catch (err) {
        await tx.abort().catch(() => {});
        throw err;
      }
    };
    const p = this.chain.then(run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Stops polling and waits for batches in flight, so a clean shutdown loses nothing accepted. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.inflight]);
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
