import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Bus, BusConsumer, BusProducer, InMessage, OutMessage } from '../core/bus.js';
import { counter } from '../core/metrics.js';
import type { AlertChange, AlertManager, Silence } from './alerts.js';
import { anchoredRegex } from './threshold.js';

/**
 * Operator commands (acknowledge, silence, expire a silence) travel IN the processor's input topic,
 * Kafka Streams style: each partition applies them in order with its samples, inside the same
 * transaction as the outputs they cause, and checkpointed with the state. A replay of the partition
 * therefore reproduces them exactly, and every processor instance hears of them (whoever holds the
 * partition). Times (`at`, `createdAt`) are set by whoever issues the command (the API, wall clock),
 * never by the processor: replays must be identical.
 *
 * On the wire: header `noctua-command: 1` and a JSON value `{"noctua":"command","v":1,"type":...}`.
 * Sample batches are binary and start with the magic byte 0x4E ('N'), so a JSON value ('{') is a
 * command even without the header.
 *
 * Routing: an ack goes to the partition holding the alert, i.e. keyed by the alert's `device` label
 * like the samples that raised it (or to every partition when the alert has no device). A silence
 * applies everywhere: one copy per partition, with an explicit partition.
 */

export const COMMAND_HEADER = 'noctua-command';
const MARKER = 'command';
const MAX_STR = 200;
const MAX_COMMENT = 2000;

const Time = Type.Integer({ minimum: 0, maximum: 8.64e15 });
const Str = Type.String({ minLength: 1, maxLength: MAX_STR });
const Comment = Type.String({ maxLength: MAX_COMMENT });
const Fingerprint = Type.String({ pattern: '^[0-9a-f]{16}$' });
export const MatcherSchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: MAX_STR, pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), op: Type.Union([Type.Literal('='), Type.Literal('!='), Type.Literal('=~'), Type.Literal('!~')]), value: Type.String({ maxLength: MAX_COMMENT }) },
  { additionalProperties: false },
);
const Head = { noctua: Type.Literal(MARKER), v: Type.Literal(1) };

const AckT = Type.Object({ ...Head, type: Type.Literal('ack'), fingerprint: Fingerprint, device: Type.Optional(Type.String({ maxLength: MAX_STR })), by: Str, comment: Comment, at: Time }, { additionalProperties: false });
const UnackT = Type.Object({ ...Head, type: Type.Literal('unack'), fingerprint: Fingerprint, device: Type.Optional(Type.String({ maxLength: MAX_STR })), by: Str, at: Time }, { additionalProperties: false });
const SilenceT = Type.Object(
  {
    ...Head,
    type: Type.Literal('silence'),
    id: Str,
    matchers: Type.Array(MatcherSchema, { minItems: 1, maxItems: 50 }),
    startsAt: Time,
    endsAt: Time,
    createdBy: Str,
    createdAt: Time,
    comment: Comment,
  },
  { additionalProperties: false },
);
const ExpireT = Type.Object({ ...Head, type: Type.Literal('expire-silence'), id: Str, by: Str, at: Time }, { additionalProperties: false });
export const CommandSchema = Type.Union([AckT, UnackT, SilenceT, ExpireT]);

export type Command = Static<typeof CommandSchema>;
export type AckCommand = Static<typeof AckT>;
export type SilenceCommand = Static<typeof SilenceT>;
type Body<T> = T extends unknown ? Omit<T, 'noctua' | 'v'> : never;
/** A command as its issuer writes it (the envelope fields are added by encodeCommand). */
export type CommandBody = Body<Command>;

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

const commandsTotal = counter('noctua_processor_commands_total', 'Operator commands seen by processors, by type and outcome', ['type', 'outcome']);
const commandsSent = counter('noctua_commands_sent_total', 'Operator commands produced to a processor input topic', ['type']);

/** True when an input message is a command rather than a sample batch. */
export function isCommandMessage(m: Pick<InMessage, 'headers' | 'value'>): boolean {
  return m.headers[COMMAND_HEADER] !== undefined || (m.value !== null && m.value.length > 0 && m.value[0] === 0x7b);
}

/** Checks a command fully (schema, time range, regexes); throws CommandError naming what is wrong. */
export function checkCommand(raw: unknown): Command {
  if (!Value.Check(CommandSchema, raw)) {
    const type = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).type : undefined;
    const branch = type === 'ack' ? AckT : type === 'unack' ? UnackT : type === 'silence' ? SilenceT : type === 'expire-silence' ? ExpireT : null;
    if (!branch) throw new CommandError(`not a command: type must be ack, unack, silence or expire-silence, got ${JSON.stringify(type)}`);
    const first = [...Value.Errors(branch, raw)][0];
    throw new CommandError(`${type} command: ${first ? `${first.path || '/'} ${first.message}, got ${JSON.stringify(first.value)}` : 'invalid'}`);
  }
  const c = raw as Command;
  if (c.type === 'silence') {
    if (!(c.endsAt > c.startsAt)) throw new CommandError(`silence ${c.id}: endsAt (${c.endsAt}) must be after startsAt (${c.startsAt})`);
    for (const m of c.matchers) {
      if (m.op !== '=~' && m.op !== '!~') continue;
      try {
        anchoredRegex(m.value);
      } catch (err) {
        throw new CommandError(`silence ${c.id}: matcher ${m.name}${m.op}${JSON.stringify(m.value)} is not a valid regular expression: ${(err as Error).message}`);
      }
    }
  }
  return c;
}

export function encodeCommand(body: CommandBody): Buffer {
  const c = checkCommand({ noctua: MARKER, v: 1, ...body });
  return Buffer.from(JSON.stringify(c), 'utf8');
}

export function decodeCommand(value: Buffer | null): Command {
  if (value === null || value.length === 0) throw new CommandError('empty command message');
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new CommandError(`command is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || (raw as Record<string, unknown>).noctua !== MARKER) throw new CommandError('JSON value without the command marker ("noctua":"command")');
  return checkCommand(raw);
}

/**
 * The messages that carry `c` on an input topic of `partitions` partitions: an ack keyed by its
 * device (the partition holding the alert), else one copy per partition.
 */
export function commandMessages(body: CommandBody, partitions: number): OutMessage[] {
  const value = encodeCommand(body);
  const headers = { [COMMAND_HEADER]: '1', type: body.type };
  const timestamp = body.type === 'silence' ? body.createdAt : body.at;
  if ((body.type === 'ack' || body.type === 'unack') && body.device) return [{ key: body.device, value, headers, timestamp }];
  const key = body.type === 'ack' || body.type === 'unack' ? body.fingerprint : body.id;
  return Array.from({ length: partitions }, (_, partition) => ({ key, value, headers, timestamp, partition }));
}

export type CommandOutcome = 'applied' | 'not_found' | 'rejected';

/**
 * Applies one command to a partition's alert lifecycle. The changes it causes ('ack' records) are
 * drained with the partition's other outputs, so they commit in the same transaction. An ack for
 * an alert this partition does not hold is normal for broadcast acks: counted, not an error.
 */
export function applyCommand(alerts: AlertManager, c: Command): { outcome: CommandOutcome; reason?: string; change?: AlertChange } {
  let res: { outcome: CommandOutcome; reason?: string; change?: AlertChange };
  try {
    switch (c.type) {
      case 'ack':
        res = alerts.holds(c.fingerprint) ? { outcome: 'applied', change: alerts.acknowledge(c.fingerprint, c.by, c.at, c.comment) } : { outcome: 'not_found' };
        break;
      case 'unack': {
        const change = alerts.holds(c.fingerprint) ? alerts.unacknowledge(c.fingerprint, c.by, c.at) : null;
        res = change ? { outcome: 'applied', change } : { outcome: 'not_found' };
        break;
      }
      case 'silence':
        alerts.addSilence({ id: c.id, matchers: c.matchers, startsAt: c.startsAt, endsAt: c.endsAt, createdBy: c.createdBy, createdAt: c.createdAt, comment: c.comment });
        res = { outcome: 'applied' };
        break;
      case 'expire-silence':
        res = alerts.expireSilence(c.id, c.at) ? { outcome: 'applied' } : { outcome: 'not_found' };
        break;
    }
  } catch (err) {
    res = { outcome: 'rejected', reason: (err as Error).message };
  }
  commandsTotal.inc({ type: c.type, outcome: res.outcome });
  return res;
}

/** Counts a command message that could not be read (the runner skips it and goes on). */
export function countMalformed(): void {
  commandsTotal.inc({ type: 'unknown', outcome: 'malformed' });
}

/** Produces commands to a processor input topic (the API's and the in-process runner's path). */
export class CommandSender {
  private producer: Promise<BusProducer> | null = null;

  constructor(private readonly bus: Bus, readonly topic: string) {}

  /** Connects the producer now, so the first command is not delayed by it. */
  async open(): Promise<void> {
    await this.connect();
  }

  private connect(): Promise<BusProducer> {
    this.producer ??= this.bus.producer({ idempotent: true }).catch((err) => {
      this.producer = null;
      throw err;
    });
    return this.producer;
  }

  /** Sends the command; resolves once the bus accepted it, with the partitions it went to (-1: by key). */
  async send(body: CommandBody): Promise<{ partitions: number[] }> {
    checkCommand({ noctua: MARKER, v: 1, ...body });
    const needsAll = body.type === 'silence' || body.type === 'expire-silence' || !body.device;
    const n = needsAll ? (await this.bus.endOffsets(this.topic)).length : 1;
    const msgs = commandMessages(body, n);
    await (await this.connect()).send(this.topic, msgs);
    commandsSent.inc({ type: body.type });
    return { partitions: msgs.map((m) => m.partition ?? -1) };
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = null;
    if (p) await (await p.catch(() => null))?.close();
  }
}

export function newSilenceId(): string {
  return randomUUID();
}

/** Compacted topic where the API records the silences it issued (by id), for processes without a processor. */
export const SILENCES_TOPIC = 'noctua.silences';

/**
 * The silences the API issued, as a readable list for any `serve` process: each POST/DELETE also
 * writes the silence (keyed by id, compacted) to SILENCES_TOPIC, and every book tails that topic from
 * the beginning. The processors' state stays the truth for what suppresses; this is the NOC's list.
 */
export class SilenceBook {
  private readonly byId = new Map<string, Silence>();
  private consumer: BusConsumer | null = null;
  private producer: BusProducer | null = null;

  constructor(private readonly bus: Bus, readonly topic = SILENCES_TOPIC) {}

  async start(): Promise<void> {
    await this.bus.ensureTopics([{ topic: this.topic, partitions: 1, compacted: true }]);
    this.producer = await this.bus.producer({ idempotent: true });
    // A throwaway group that never commits: every start reads the whole (compacted) topic.
    const c = this.bus.consumer({ groupId: `noctua-silences-${randomUUID()}`, fromBeginning: true, readCommitted: true, ephemeral: true });
    this.consumer = c;
    await c.subscribe([this.topic]);
    await c.run({
      eachBatch: async (b) => {
        for (const m of b.messages) {
          if (m.key === null) continue;
          if (m.value === null) {
            this.byId.delete(m.key);
            continue;
          }
          try {
            const s = decodeCommand(m.value);
            if (s.type === 'silence') this.byId.set(m.key, silenceOf(s));
          } catch {
            countMalformed();
          }
        }
      },
    });
  }

  list(): Silence[] {
    return [...this.byId.values()].sort((a, b) => a.startsAt - b.startsAt || (a.id < b.id ? -1 : 1));
  }

  get(id: string): Silence | undefined {
    return this.byId.get(id);
  }

  /** Records a silence as issued (or as expired); visible here at once, in other books once they read it. */
  async record(s: SilenceCommand): Promise<void> {
    if (!this.producer) throw new Error(`silence book on ${this.topic} is not started`);
    await this.producer.send(this.topic, [{ key: s.id, value: encodeCommand(s), timestamp: s.createdAt }]);
    this.byId.set(s.id, silenceOf(s));
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    await this.producer?.close();
    this.consumer = null;
    this.producer = null;
  }
}

function silenceOf(c: SilenceCommand): Silence {
  return { id: c.id, matchers: c.matchers, startsAt: c.startsAt, endsAt: c.endsAt, createdBy: c.createdBy, createdAt: c.createdAt, comment: c.comment };
}
