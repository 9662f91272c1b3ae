import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Bus, BusProducer } from '../../core/bus.js';
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
   * Where the devices' state is kept (written every interval and at stop): a restarted demo continues
   * its devices and publishes only the polls since their last one (at most backfillMs' worth).
   */
  stateFile?: string;
}

/**
 * Publishes the demo network on the bus as a poller would: every device once per interval, each at a
 * stable phase within the interval (so polls don't all fire at once), one batch per poll keyed by device.
 */
export class DemoSource {
  readonly network: DemoNetwork;
  private producer: BusProducer | null = null;
  private timers: NodeJS.Timeout[] = [];
  private saver: NodeJS.Timeout | undefined;
  private inflight = new Set<Promise<void>>();
  private stopped = false;
  /** Batches and samples the bus acknowledged (a clean shutdown must find all of them in ClickHouse). */
  polls = 0;
  samples = 0;

  constructor(private readonly bus: Bus, private readonly opts: DemoSourceOptions, private readonly log: Logger) {
    this.network = new DemoNetwork(opts);
  }

  async start(): Promise<void> {
    this.producer = await this.bus.producer({ idempotent: true });
    const n = this.network.deviceNames.length;
    const every = this.opts.intervalMs;
    const backfillMs = this.opts.backfillMs ?? BACKFILL_POLLS * every;
    const gridOf = (ms: number) => ms - (ms % every);
    const resumedFrom = this.resume();
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
    this.save();
    for (let d = 0; d < n; d++) this.pollOnGrid(d, next + Math.floor((d * every) / n));
    if (this.opts.stateFile) this.saver = setInterval(() => this.save(), every);
    this.log.info({ devices: n, intervalMs: every }, 'demo network started');
  }

  /** Restores the devices from the state file, if any: the time of their oldest last poll, or null for a fresh start. */
  private resume(): number | null {
    const file = this.opts.stateFile;
    if (!file) return null;
    mkdirSync(dirname(file), { recursive: true });
    if (!existsSync(file)) return null;
    try {
      this.network.restore(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      M.errors.inc({ component: 'demo', kind: 'state' });
      this.log.warn({ file, err: (err as Error).message }, 'demo network state not usable: starting the devices afresh');
      return null;
    }
    const last = this.network.deviceNames.map((_, d) => this.network.lastPoll(d)).filter((t): t is number => t !== null);
    return last.length > 0 ? Math.min(...last) : null;
  }

  /** Writes the devices' state (atomically): a failure is logged and counted, and polling goes on. */
  private save(): void {
    const file = this.opts.stateFile;
    if (!file) return;
    try {
      writeFileSync(file + '.tmp', JSON.stringify(this.network.snapshot()));
      renameSync(file + '.tmp', file);
    } catch (err) {
      M.errors.inc({ component: 'demo', kind: 'state' });
      this.log.warn({ file, err: (err as Error).message }, 'demo network state not saved');
    }
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
    let pending: Promise<void>[] = [];
    for (const { batch, events } of replayDemo(this.network, from, to, this.opts.intervalMs)) {
      pending.push(this.publish(batch, events));
      if (pending.length >= 256) {
        await Promise.all(pending);
        pending = [];
      }
    }
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
    const { batch, events } = this.network.poll(d, ts);
    const p = this.publish(batch, events).catch((err: Error) => {
      M.errors.inc({ component: 'demo', kind: 'produce' });
      this.log.error({ device: batch.device, err: err.message }, 'demo batch could not be produced');
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async publish(batch: SampleBatch, events: NetEvent[]): Promise<void> {
    await this.producer!.send(TOPICS.samples, [{ key: batch.device, value: encodeBatch(batch), timestamp: batch.ts }]);
    if (events.length > 0) await this.producer!.send(TOPICS.events, events.map((e) => ({ key: e.device, value: encodeEvent(e), timestamp: e.ts })));
    this.polls++;
    this.samples += batch.samples.length;
    M.batchesIngested.inc({ source: 'demo' });
    M.samplesIngested.inc({ source: 'demo' }, batch.samples.length);
  }

  /** Stops polling and waits for batches in flight, so a clean shutdown loses nothing accepted. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    clearInterval(this.saver);
    await Promise.allSettled([...this.inflight]);
    this.save();
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
