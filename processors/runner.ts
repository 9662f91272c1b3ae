import { Type, type Static } from '@sinclair/typebox';
import type { Bus, BusProducer, ConsumedBatch, BatchContext, BusConsumer, OutMessage, TopicPartition } from '../core/bus.js';
import { decodeBatch, encodeEvent, CodecError } from '../core/codec.js';
import { validate } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { M, counter, gauge, histogram } from '../core/metrics.js';
import { TOPICS, type NetEvent, type Sample, type SampleBatch } from '../core/types.js';
import { AnomalyConfig, AnomalyOperator, anomalyConfig, type OperatorCheckpoint } from './anomaly/operator.js';
import { RateState } from './rate.js';
import { WindowOperator, parseDuration, type SeriesRef, type WindowOptions, type WindowResult, type WindowSpec, type LateSample, type WindowStateJSON, type Aggregates } from './window.js';
import { ThresholdOperator } from './threshold.js';
import { AlertManager, webhookPayload, type AlertChange, type AlertStateJSON, type Notification, type Silence } from './alerts.js';
import { DEFAULT_ALERTING } from './alerts.js';
import { watchRules, type RuleSet, type RuleWatcher } from './rules.js';
import { encodeRollups } from './rollup-codec.js';
import type { SketchJSON } from './sketch.js';
import { encodeSnapshot, restoreSnapshots, snapshotKey, CHANGELOG_PARTITIONS } from './checkpoint.js';
import { applyCommand, countMalformed, decodeCommand, encodeCommand, isCommandMessage, CommandSender, type Command, type CommandBody } from './commands.js';

/**
 * The processor runner (`noctua process`): consumes sample batches, runs the pipeline
 *   decode -> rate (counters to rates; gauges pass through) -> windows (rollups) ->
 *   threshold rules -> alert lifecycle
 * per INPUT PARTITION, and commits outputs, the consumer offset and a state snapshot in ONE bus
 * transaction per consumed batch (exactly once).
 *
 * Fencing: the transactional id is per input partition (`<group>.<topic>.<partition>`, Kafka
 * Streams' "EOS v1"), so the instance that takes a partition over fences the previous owner (its
 * open transaction is aborted, a late commit fails) BEFORE reading the committed offset and the
 * matching snapshot. Messages below that offset in the first batch are skipped: with kafkajs'
 * eager rebalance the new owner may have fetched from an older position.
 *
 * Operator commands (processors/commands.ts: ack, silence, ...) arrive on the same input topic and
 * are applied in order with the samples, in the same transaction and snapshot.
 *
 * Determinism: every operator uses event time only, so outputs depend on the order of messages in
 * each partition, never on batch boundaries, restarts or the wall clock; this is what makes the
 * "kill an instance, compare with an uninterrupted run" test pass row by row.
 */

const DurationT = Type.Union([Type.String(), Type.Number({ minimum: 0 })]);

export const ProcessorConfigSchema = Type.Object({
  groupId: Type.String({ default: 'noctua-process' }),
  input: Type.String({ default: TOPICS.samples }),
  changelog: Type.String({ default: 'noctua.processor-state' }),
  rollupsTopic: Type.String({ default: TOPICS.rollups }),
  alertsTopic: Type.String({ default: TOPICS.alerts }),
  eventsTopic: Type.String({ default: TOPICS.events }),
  lateTopic: Type.String({ default: 'noctua.samples.late' }),
  notificationsTopic: Type.String({ default: 'noctua.notifications' }),
  windows: Type.Array(
    Type.Object({ name: Type.String({ minLength: 1 }), size: DurationT, hop: Type.Optional(DurationT), lateness: Type.Optional(DurationT) }, { additionalProperties: false }),
    {
      default: [
        { name: '10s', size: '10s', lateness: '0s' },
        { name: '1m', size: '1m', lateness: '2m' },
        { name: '5m', size: '5m', lateness: '5m' },
        { name: '1h', size: '1h', lateness: '10m' },
      ],
    },
  ),
  /** Allowed out-of-orderness: the watermark trails the newest event time by this, per source. */
  delay: Type.Object({ default: DurationT, sources: Type.Record(Type.String(), DurationT, { default: {} }) }, { default: { default: '15s', sources: {} } }),
  idleTimeout: Type.Optional(DurationT),
  rulesFile: Type.Optional(Type.String()),
  /**
   * Streaming anomaly detection on derived series (processors/anomaly). Scores go into the windows
   * as `anomaly_score{of="<metric>",...}` (so rollups keep them per series and window), the expected
   * band as `anomaly_lower` / `anomaly_upper` with the same labels (for charts), and, at or
   * above `eventLevel`, become `anomaly` events. The learned layer is off here by default: its
   * background training depends on wall-clock timing, which exactly-once replays must not; and it
   * counts only in the 'likelihood' mode.
   */
  anomaly: Type.Object(
    {
      // the operator's own settings and defaults (processors/anomaly/operator.ts), stated once
      ...AnomalyConfig.properties,
      metrics: Type.Array(Type.String(), { default: ['if_in_bps', 'if_out_bps', 'if_in_errors_ps', 'hrProcessorLoad'] }),
      learned: Type.Boolean({ default: false }),
    },
    { default: {} },
  ),
  restoreTimeout: Type.Optional(DurationT),
  /**
   * How long a partition's input may wait to be processed together (Kafka Streams' commit.interval.ms):
   * every batch is one transaction carrying the partition's whole state snapshot, so a message per
   * transaction at a slow poll rate snapshots the state once per message. Outputs come at most this
   * much later; a batch of 1 MiB goes at once. '0s' processes each message as it comes.
   */
  commitInterval: Type.Optional(DurationT),
});
export type ProcessorConfig = Static<typeof ProcessorConfigSchema>;

export const DEFAULT_COMMIT_INTERVAL = '2s';

/** The processors' own timings, parsed (a bad one is an error naming its key). */
export function processorTimings(cfg: ProcessorConfig): { restoreTimeoutMs: number; commitIntervalMs: number } {
  return {
    restoreTimeoutMs: cfg.restoreTimeout === undefined ? 60_000 : parseDuration(cfg.restoreTimeout, 'processors.restoreTimeout'),
    commitIntervalMs: parseDuration(cfg.commitInterval ?? DEFAULT_COMMIT_INTERVAL, 'processors.commitInterval'),
  };
}

export function processorConfig(raw: unknown): ProcessorConfig {
  return validate(ProcessorConfigSchema, raw, 'processors');
}

export function windowOptions(cfg: ProcessorConfig): WindowOptions {
  const windows: WindowSpec[] = cfg.windows.map((w) => {
    const sizeMs = parseDuration(w.size, `processors.windows.${w.name}.size`);
    return {
      name: w.name,
      sizeMs,
      hopMs: w.hop === undefined ? sizeMs : parseDuration(w.hop, `processors.windows.${w.name}.hop`),
      allowedLatenessMs: w.lateness === undefined ? 0 : parseDuration(w.lateness, `processors.windows.${w.name}.lateness`),
    };
  });
  const delayMs: Record<string, number> = {};
  for (const [s, d] of Object.entries(cfg.delay.sources)) delayMs[s] = parseDuration(d, `processors.delay.sources.${s}`);
  return {
    windows,
    delayMs,
    defaultDelayMs: parseDuration(cfg.delay.default, 'processors.delay.default'),
    idleTimeoutMs: cfg.idleTimeout === undefined ? 5 * 60_000 : parseDuration(cfg.idleTimeout, 'processors.idleTimeout'),
  };
}

/** Raw counters that processors/rate turns into rates; everything else (gauges) passes through as is. */
const RATE_INPUTS = new Set([
  'ifHCInOctets', 'ifHCOutOctets', 'ifInOctets', 'ifOutOctets', 'ifHCInUcastPkts', 'ifHCOutUcastPkts', 'ifInUcastPkts', 'ifOutUcastPkts',
  'ifInErrors', 'ifOutErrors', 'ifInDiscards', 'ifOutDiscards', 'sysUpTime',
]);

/** What one input message produced. */
export interface StepOutput {
  readonly results: WindowResult[];
  readonly late: LateSample[];
  readonly changes: AlertChange[];
  readonly notifications: Notification[];
  readonly events: NetEvent[];
}

export interface PipelineState {
  v: 1;
  rate: unknown;
  window: WindowStateJSON;
  threshold: ReturnType<ThresholdOperator['toJSON']>;
  alerts: AlertStateJSON;
  anomaly?: OperatorCheckpoint;
}

/** The anomaly stage of a pipeline: which derived metrics it scores, and the operator. */
export interface AnomalyStage {
  readonly metrics: ReadonlySet<string>;
  readonly op: AnomalyOperator;
}

export function anomalyStage(cfg: ProcessorConfig): AnomalyStage | null {
  const a = cfg.anomaly;
  if (!a.enabled || a.metrics.length === 0) return null;
  const { metrics, ...operator } = a;
  const op = new AnomalyOperator(anomalyConfig(operator));
  return { metrics: new Set(metrics), op };
}

/** The operators of one input partition, chained. Pure: feed messages, read outputs, snapshot. */
export class Pipeline {
  constructor(
    readonly rate: RateState,
    readonly windows: WindowOperator,
    readonly threshold: ThresholdOperator,
    readonly alerts: AlertManager,
    readonly anomaly: AnomalyStage | null = null,
  ) {}

  static create(wopts: WindowOptions, rules: RuleSet, anomaly: AnomalyStage | null = null): Pipeline {
    return new Pipeline(new RateState(), new WindowOperator(wopts), new ThresholdOperator(rules.rules), new AlertManager(rules.alerting), anomaly);
  }

  static restore(wopts: WindowOptions, rules: RuleSet, s: PipelineState, anomaly: AnomalyStage | null = null, attachments: readonly Uint8Array[] = []): Pipeline {
    if (s.v !== 1) throw new Error('pipeline state: not a v1 checkpoint');
    if (anomaly && s.anomaly) anomaly.op.restore(s.anomaly);
    return new Pipeline(
      RateState.fromJSON(s.rate),
      WindowOperator.fromJSON(wopts, s.window, attachments),
      ThresholdOperator.fromJSON(rules.rules, s.threshold),
      AlertManager.fromJSON(rules.alerting, s.alerts),
      anomaly,
    );
  }

  setRules(rules: RuleSet): void {
    this.threshold.setRules(rules.rules);
    this.alerts.setConfig(rules.alerting);
  }

  /** One sample batch (one poll of one device) through every operator, in order. */
  step(batch: SampleBatch, out: StepOutput): void {
    const r = this.rate.process(batch);
    const samples: Sample[] = r.samples;
    for (const s of batch.samples) if (!RATE_INPUTS.has(s.metric)) samples.push(s);
    const anomalyEvents = this.anomaly ? this.scoreAnomalies(samples) : [];
    // One identity lookup per sample, shared by the windows (slot) and the rules (key).
    const refs = new Array<SeriesRef>(samples.length);
    const sk = this.windows.keys;
    for (let i = 0; i < samples.length; i++) refs[i] = sk.ref(samples[i]!.metric, samples[i]!.labels);
    this.windows.process(batch.device, batch.source, samples, refs);
    if (this.threshold.ruleCount > 0) {
      for (let i = 0; i < samples.length; i++) this.threshold.evaluate(refs[i]!, samples[i]!);
      this.alerts.apply(this.threshold.drain());
    }
    if (this.windows.watermark > -Infinity) this.alerts.tick(this.windows.watermark);
    for (const x of this.windows.drainResults()) out.results.push(x);
    for (const x of this.windows.drainLate()) out.late.push(x);
    for (const x of this.alerts.drainChanges()) out.changes.push(x);
    for (const x of this.alerts.drainNotifications()) out.notifications.push(x);
    for (const x of r.events) out.events.push(x);
    for (const x of anomalyEvents) out.events.push(x);
  }

  /** One operator command (ack, silence, ...), applied to this partition's alert lifecycle. */
  command(c: Command, out: StepOutput): ReturnType<typeof applyCommand> {
    const res = applyCommand(this.alerts, c);
    for (const x of this.alerts.drainChanges()) out.changes.push(x);
    for (const x of this.alerts.drainNotifications()) out.notifications.push(x);
    return res;
  }

  /** Scores the configured derived series; their scores join the samples (windows, rules, rollups). */
  private scoreAnomalies(samples: Sample[]): NetEvent[] {
    const a = this.anomaly!;
    const picked: Sample[] = [];
    for (const s of samples) if (a.metrics.has(s.metric)) picked.push(s);
    if (picked.length === 0) return [];
    const res = a.op.process(picked);
    for (const sc of res.scores) {
      const labels = { ...sc.labels, of: sc.metric };
      samples.push({ metric: 'anomaly_score', labels, ts: sc.ts, value: sc.score });
      // the band charts draw around the series (expected ± band robust sigmas), once the baseline has one
      if (sc.upper > sc.lower) {
        samples.push({ metric: 'anomaly_lower', labels, ts: sc.ts, value: sc.lower });
        samples.push({ metric: 'anomaly_upper', labels, ts: sc.ts, value: sc.upper });
      }
    }
    // for alert rules: 1 from an anomaly event until alertHold passes without another (changes only)
    for (const c of res.active) samples.push({ metric: 'anomaly_active', labels: { ...c.labels, of: c.metric, ...(c.reason ? { reason: c.reason } : {}) }, ts: c.ts, value: c.value });
    return res.events;
  }

  /** The state to checkpoint: JSON, with the window panes' rows as binary attachments. */
  checkpoint(): { state: PipelineState; attachments: Uint8Array[] } {
    const attachments: Uint8Array[] = [];
    const window = this.windows.checkpoint((b) => attachments.push(b) - 1);
    const state: PipelineState = { v: 1, rate: this.rate.toJSON(), window, threshold: this.threshold.toJSON(), alerts: this.alerts.toJSON() };
    if (this.anomaly) state.anomaly = this.anomaly.op.checkpoint();
    return { state, attachments };
  }
}

export function emptyOutput(): StepOutput {
  return { results: [], late: [], changes: [], notifications: [], events: [] };
}

/** A rollup record as carried on the rollups topic (binary: processors/rollup-codec.ts). */
export interface RollupRecord extends Aggregates {
  readonly window: string;
  readonly kind: 'final' | 'correction';
  readonly revision: number;
  readonly key: string;
  readonly metric: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly start: number;
  readonly end: number;
  readonly sketch: SketchJSON;
}

export function rollupRecord(r: WindowResult): RollupRecord {
  const a = r.agg;
  // field by field, not a spread: one fixed object shape, built for every window and series
  return {
    window: r.window, kind: r.kind, revision: r.revision, key: r.key, metric: r.metric, labels: r.labels, start: r.start, end: r.end,
    count: a.count, sum: a.sum, min: a.min, max: a.max, avg: a.avg, first: a.first, firstTs: a.firstTs, last: a.last, lastTs: a.lastTs, rate: a.rate, p50: a.p50, p95: a.p95, p99: a.p99,
    sketch: r.sketch,
  };
}

/** Encodes a step's outputs as messages per topic. Keys keep a device's records in one partition. */
export function outputMessages(cfg: ProcessorConfig, o: StepOutput, externalUrl: string): Map<string, OutMessage[]> {
  const m = new Map<string, OutMessage[]>();
  const put = (topic: string, msg: OutMessage) => {
    let a = m.get(topic);
    if (!a) m.set(topic, (a = []));
    a.push(msg);
  };
  // Record timestamps are event times, never the wall clock: identical reruns give identical records
  // (on Kafka, an event time too old for its retention or ahead of the clock goes out at the send time: bus-kafka.ts).
  for (const msg of rollupMessages(o.results)) put(cfg.rollupsTopic, msg);
  for (const c of o.changes) put(cfg.alertsTopic, { key: c.fingerprint, value: Buffer.from(JSON.stringify(c)), headers: { event: c.event }, timestamp: c.ts });
  for (const n of o.notifications) put(cfg.notificationsTopic, { key: n.groupKey, value: Buffer.from(JSON.stringify(webhookPayload(n, externalUrl))), timestamp: n.ts });
  for (const l of o.late) put(cfg.lateTopic, { key: l.sample.labels.device ?? l.key, value: Buffer.from(JSON.stringify(l)), timestamp: l.sample.ts });
  for (const e of o.events) put(cfg.eventsTopic, { key: e.device, value: encodeEvent(e), timestamp: e.ts });
  return m;
}

/**
 * A rollup message closes at this many estimated bytes, far below Kafka's 1 MB: a record is ~180 B
 * plus its sketch buckets (up to 2,048, a few bytes each), so a record count alone would not bound it.
 */
const ROLLUP_MESSAGE_BYTES = 256 * 1024;

function rollupBytes(r: WindowResult): number {
  // fixed fields ~110 B; labels and metric ~ the key's text (x2 for multi-byte characters)
  return 110 + 2 * r.key.length + 6 * ((r.sketch.pi?.length ?? 0) + (r.sketch.ni?.length ?? 0));
}

/**
 * A step's rollups as messages: the records of one key (the device, else the series) together, in
 * order, so a transaction sends a few messages per device rather than one per window and series.
 */
function rollupMessages(results: readonly WindowResult[]): OutMessage[] {
  const byKey = new Map<string, WindowResult[]>();
  for (const r of results) {
    const k = r.labels.device ?? r.key;
    let a = byKey.get(k);
    if (!a) byKey.set(k, (a = []));
    a.push(r);
  }
  const out: OutMessage[] = [];
  for (const [key, rs] of byKey) {
    let part: RollupRecord[] = [];
    let bytes = 0;
    let ts = -Infinity;
    const flush = () => {
      out.push({ key, value: encodeRollups(part), timestamp: ts });
      part = [];
      bytes = 0;
      ts = -Infinity;
    };
    for (const r of rs) {
      const n = rollupBytes(r);
      if (part.length > 0 && bytes + n > ROLLUP_MESSAGE_BYTES) flush();
      part.push(rollupRecord(r));
      bytes += n;
      if (r.end > ts) ts = r.end;
    }
    if (part.length > 0) flush();
  }
  return out;
}

/**
 * Splits a send so one produce request stays well under Kafka's default 1 MB record-batch limit
 * (a send becomes one record batch per partition, and the broker rejects larger batches whole).
 */
export function bySize(msgs: readonly OutMessage[], maxBytes = 512 * 1024): OutMessage[][] {
  const out: OutMessage[][] = [];
  let cur: OutMessage[] = [];
  let bytes = 0;
  for (const m of msgs) {
    const n = (m.value?.length ?? 0) + (m.key?.length ?? 0) + 64;
    if (cur.length > 0 && bytes + n > maxBytes) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

const processed = counter('noctua_processor_messages_total', 'Input messages processed', ['partition']);
const samplesIn = counter('noctua_processor_samples_total', 'Samples through the pipeline');
const outputs = counter('noctua_processor_outputs_total', 'Records produced', ['topic']);
const txSeconds = histogram('noctua_processor_transaction_seconds', 'Time to commit one transaction', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
const partitionsOwned = gauge('noctua_processor_partitions', 'Input partitions whose state this instance holds');
const restores = counter('noctua_processor_restores_total', 'Partition states restored from the changelog', ['outcome']);

interface PartitionState {
  readonly partition: number;
  producer: BusProducer;
  pipeline: Pipeline;
  /** The next offset to process (everything below is reflected in `pipeline`). */
  next: bigint;
}

export interface ProcessorOptions {
  readonly bus: Bus;
  readonly config: ProcessorConfig;
  readonly rules?: RuleSet;
  readonly log?: Logger;
  /** Partitions of the topics this runner creates when missing. */
  readonly partitions?: number;
}

export interface Processor {
  /** Swaps in new rules (hot reload) for every partition held. */
  setRules(rules: RuleSet): void;
  /** The rules in force. */
  rules(): RuleSet;
  assignment(): readonly TopicPartition[];
  /** Pending and firing alerts of the partitions this instance holds (for the API and screens). */
  activeAlerts(): AlertChange[];
  /** Run-time silences in force here (every partition receives every silence; the union is shown). */
  silences(): Silence[];
  /**
   * Acknowledges an alert held by this instance (who, when, comment): repeats stop until it resolves.
   * Sent as an ack command on the input topic (see send()), so it is applied in order, in a
   * transaction, and replayed alike; returns what the 'ack' record will say, or null when no
   * partition held here has the alert (then use send(), which reaches whoever holds it).
   */
  acknowledge(fingerprint: string, by: string, comment: string, at?: number): AlertChange | null;
  /** Adds a run-time silence on every partition (a silence command per partition). */
  addSilence(s: Silence): void;
  /** Sends an operator command on the input topic; resolves once the bus accepted it. */
  send(c: CommandBody): Promise<{ partitions: number[] }>;
  /** Resolves once the commands sent by acknowledge()/addSilence() were accepted by the bus. */
  flushCommands(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a processor instance: joins the group, restores state per assigned partition, processes. */
export async function startProcessor(opts: ProcessorOptions): Promise<Processor> {
  const { bus, config: cfg } = opts;
  const wopts = windowOptions(cfg);
  const state = new Map<number, PartitionState>();
  let rules: RuleSet = opts.rules ?? { rules: [], alerting: DEFAULT_ALERTING };
  // A rule file (when no rules are passed in) is loaded now and hot-reloaded; a bad file at start is an error.
  let watcher: RuleWatcher | null = null;
  if (!opts.rules && cfg.rulesFile) {
    watcher = watchRules(cfg.rulesFile, (r) => {
      rules = r;
      for (const s of state.values()) s.pipeline.setRules(r);
    }, opts.log ? { log: opts.log } : {});
    rules = watcher.current();
  }
  const partitions = opts.partitions ?? 6;
  const { restoreTimeoutMs, commitIntervalMs } = processorTimings(cfg);
  await bus.ensureTopics([
    { topic: cfg.input, partitions },
    { topic: cfg.rollupsTopic, partitions },
    { topic: cfg.alertsTopic, partitions },
    { topic: cfg.eventsTopic, partitions },
    { topic: cfg.lateTopic, partitions },
    { topic: cfg.notificationsTopic, partitions },
    { topic: cfg.changelog, partitions: CHANGELOG_PARTITIONS, compacted: true },
  ]);
  const consumer: BusConsumer = bus.consumer({
    groupId: cfg.groupId,
    fromBeginning: true,
    readCommitted: true,
    ...(commitIntervalMs > 0 ? { linger: { minBytes: 1 << 20, maxWaitMs: commitIntervalMs } } : {}),
  });

  const drop = async (p: number) => {
    const s = state.get(p);
    if (!s) return;
    state.delete(p);
    partitionsOwned.set(state.size);
    await s.producer.close().catch(() => {});
  };

  /** Fence the previous owner, then load the state matching the committed offset. */
  const acquire = async (p: number): Promise<PartitionState> => {
    const producer = await bus.producer({ transactionalId: `${cfg.groupId}.${cfg.input}.${p}` });
    try {
      const committed = (await bus.committed(cfg.groupId, cfg.input)).find((o) => o.partition === p)?.offset ?? '-1';
      let pipeline: Pipeline;
      let next = 0n;
      if (BigInt(committed) < 0n) {
        pipeline = Pipeline.create(wopts, rules, anomalyStage(cfg));
        restores.inc({ outcome: 'fresh' });
      } else {
        const prefix = snapshotKey(cfg.groupId, cfg.input, p);
        const snaps = await restoreSnapshots(bus, cfg.changelog, new Map([[prefix, committed]]), restoreTimeoutMs);
        const snap = snaps.get(prefix)!;
        pipeline = Pipeline.restore(wopts, rules, snap.state as PipelineState, anomalyStage(cfg), snap.attachments);
        next = BigInt(committed);
        restores.inc({ outcome: 'restored' });
        opts.log?.info({ topic: cfg.input, partition: p, offset: committed }, 'partition state restored');
      }
      const s: PartitionState = { partition: p, producer, pipeline, next };
      state.set(p, s);
      partitionsOwned.set(state.size);
      return s;
    } catch (err) {
      await producer.close().catch(() => {});
      throw err;
    }
  };

  const eachBatch = async (batch: ConsumedBatch, ctx: BatchContext): Promise<void> => {
    const p = batch.partition;
    const s = state.get(p) ?? (await acquire(p));
    const out = emptyOutput();
    let next = s.next;
    let n = 0;
    for (const m of batch.messages) {
      const off = BigInt(m.offset);
      if (off < s.next) continue; // already reflected in the restored state
      next = off + 1n;
      n++;
      if (isCommandMessage(m)) {
        let c: Command;
        try {
          c = decodeCommand(m.value);
        } catch (err) {
          countMalformed();
          M.rejected.inc({ topic: cfg.input, reason: 'command' });
          opts.log?.warn({ topic: cfg.input, partition: p, offset: m.offset, err: (err as Error).message }, 'malformed operator command skipped');
          continue;
        }
        const res = s.pipeline.command(c, out);
        if (res.outcome === 'rejected') opts.log?.warn({ topic: cfg.input, partition: p, offset: m.offset, command: c.type, err: res.reason }, 'operator command rejected');
        continue;
      }
      if (m.value === null) continue;
      let b: SampleBatch;
      try {
        b = decodeBatch(m.value);
      } catch (err) {
        M.rejected.inc({ topic: cfg.input, reason: err instanceof CodecError ? 'codec' : 'decode' });
        opts.log?.warn({ topic: cfg.input, partition: p, offset: m.offset, err: (err as Error).message }, 'undecodable sample batch skipped');
        continue;
      }
      samplesIn.inc(b.samples.length);
      try {
        s.pipeline.step(b, out);
      } catch (err) {
        // A bug an input triggers must not stall the partition forever: count, log with context, go on.
        // Replays hit the same error at the same message, so outputs stay deterministic.
        M.errors.inc({ component: 'processor', kind: 'step' });
        opts.log?.error({ topic: cfg.input, partition: p, offset: m.offset, device: b.device, err: (err as Error).message }, 'pipeline step failed; message skipped');
      }
    }
    if (n === 0) return;
    if (!ctx.isRunning()) {
      // Revoked while working: the new owner redoes this batch; our in-memory state is now ahead of any commit.
      await drop(p);
      throw new Error(`partition ${cfg.input}/${p} revoked mid-batch at offset ${batch.messages[0]!.offset}`);
    }
    const t0 = process.hrtime.bigint();
    let tx;
    try {
      tx = await s.producer.transaction();
      for (const [topic, msgs] of outputMessages(cfg, out, rules.alerting.externalUrl)) {
        for (const part of bySize(msgs)) await tx.send(topic, part);
        outputs.inc({ topic }, msgs.length);
      }
      const cp = s.pipeline.checkpoint();
      for (const part of bySize(encodeSnapshot(snapshotKey(cfg.groupId, cfg.input, p), next.toString(), cp.state, cp.attachments))) await tx.send(cfg.changelog, part);
      await tx.sendOffsets(cfg.groupId, [{ topic: cfg.input, partition: p, offset: next.toString() }]);
      await tx.commit();
    } catch (err) {
      await tx?.abort().catch(() => {});
      M.errors.inc({ component: 'processor', kind: 'transaction' });
      opts.log?.warn({ topic: cfg.input, partition: p, offset: batch.messages[0]!.offset, err: (err as Error).message }, 'transaction failed; state dropped, batch will be retried from the committed offset');
      // The pipeline already consumed these messages: restore from the changelog on retry.
      await drop(p);
      throw err;
    }
    txSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    s.next = next;
    processed.inc({ partition: String(p) }, n);
  };

  const sender = new CommandSender(bus, cfg.input);
  await sender.open();
  const inFlight = new Set<Promise<unknown>>();
  /** acknowledge()/addSilence() keep their synchronous signatures: the send runs on, failures are logged and counted. */
  const sendLater = (c: CommandBody) => {
    const pr = sender.send(c).catch((err: Error) => {
      M.errors.inc({ component: 'processor', kind: 'command_send' });
      opts.log?.error({ topic: cfg.input, command: c.type, err: err.message }, 'operator command not sent');
    });
    inFlight.add(pr);
    void pr.finally(() => inFlight.delete(pr));
  };

  await consumer.subscribe([cfg.input]);
  await consumer.run({
    eachBatch,
    async onRevoked(parts) {
      for (const tp of parts) if (tp.topic === cfg.input) await drop(tp.partition);
    },
  });

  return {
    setRules(r) {
      rules = r;
      for (const s of state.values()) s.pipeline.setRules(r);
    },
    rules: () => rules,
    assignment: () => consumer.assignment(),
    activeAlerts() {
      return [...state.values()].flatMap((s) => s.pipeline.alerts.active());
    },
    silences() {
      const byId = new Map<string, Silence>();
      for (const s of state.values()) for (const sil of s.pipeline.alerts.silences()) byId.set(sil.id, sil);
      return [...byId.values()].sort((a, b) => a.startsAt - b.startsAt || (a.id < b.id ? -1 : 1));
    },
    acknowledge(fingerprint, by, comment, at = Date.now()) {
      for (const s of state.values()) {
        const a = s.pipeline.alerts.active().find((x) => x.fingerprint === fingerprint);
        if (!a) continue;
        if (!by) throw new Error(`acknowledging alert ${fingerprint} needs who acknowledges (by)`);
        sendLater({ type: 'ack', fingerprint, device: a.labels.device, by, comment, at });
        return { ...a, ts: at, event: 'ack', ack: { by, at, comment } };
      }
      return null;
    },
    addSilence(sil) {
      const c: CommandBody = { type: 'silence', id: sil.id, matchers: sil.matchers.map((m) => ({ ...m })), startsAt: sil.startsAt, endsAt: sil.endsAt, createdBy: sil.createdBy, createdAt: sil.createdAt ?? Date.now(), comment: sil.comment };
      encodeCommand(c); // a bad silence throws here, to the caller, not later in a log line
      sendLater(c);
    },
    send: (c) => sender.send(c),
    async flushCommands() {
      await Promise.all([...inFlight]);
    },
    async stop() {
      watcher?.close();
      await Promise.all([...inFlight]);
      await sender.close();
      await consumer.stop();
      for (const p of [...state.keys()]) await drop(p);
    },
  };
}
