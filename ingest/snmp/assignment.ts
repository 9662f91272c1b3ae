import { Type } from '@sinclair/typebox';
import type { Bus } from '../../core/bus.js';
import { TOPICS } from '../../core/types.js';
import type { Logger } from '../../core/log.js';
import { SharedTargets as GroupTargets, ensureTargetTopic, publishTargetList } from '../shared-targets.js';
import type { Target } from './config.js';
import { V3User } from './config.js';
import type { SnmpPoller } from './poller.js';

/**
 * Scale-out of SNMP targets: `noctua.targets` read by every `noctua poll` process in one consumer
 * group (see ../shared-targets.ts).
 */

export const POLL_GROUP = 'noctua-poll';

/** The wire form of a target on the targets topic. It carries credentials: restrict the topic (ACLs). */
const TargetWire = Type.Object({
  id: Type.String({ minLength: 1 }),
  device: Type.String({ minLength: 1 }),
  address: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  version: Type.Union([Type.Literal('v1'), Type.Literal('v2c'), Type.Literal('v3')]),
  community: Type.Optional(Type.String()),
  user: Type.Optional(V3User),
  intervalMs: Type.Integer({ minimum: 1000 }),
  timeoutMs: Type.Integer({ minimum: 10 }),
  retries: Type.Integer({ minimum: 0 }),
  maxRepetitions: Type.Integer({ minimum: 1 }),
  labels: Type.Record(Type.String(), Type.String()),
});

export async function ensureTargetsTopic(bus: Bus, partitions: number): Promise<void> {
  await ensureTargetTopic(bus, TOPICS.targets, partitions);
}

/** Publishes targets (upserts) and removals (tombstones) to the targets topic. */
export async function publishTargets(bus: Bus, targets: readonly Target[], removedIds: readonly string[] = []): Promise<void> {
  await publishTargetList(bus, TOPICS.targets, targets, removedIds);
}

/** The SNMP targets of the partitions this poll process is assigned, set on its poller. */
export class SharedTargets extends GroupTargets<typeof TargetWire> {
  constructor(bus: Bus, poller: SnmpPoller, opts: { groupId?: string; log?: Logger } = {}) {
    super(bus, {
      topic: TOPICS.targets,
      groupId: opts.groupId ?? POLL_GROUP,
      wire: TargetWire,
      set: (t) => poller.setTarget(t as Target),
      remove: (id) => poller.removeTarget(id),
      what: 'snmp',
      ...(opts.log ? { log: opts.log } : {}),
    });
  }
}
