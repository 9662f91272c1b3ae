import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { BusProducer } from '../../core/bus.js';
import { TOPICS, type Labels, type NetEvent, type Sample, type SampleBatch, type Severity } from '../../core/types.js';
import { M, counter } from '../../core/metrics.js';
import { busPublisher } from '../publish.js';
import { parseGns3Config, Gns3ServerWire, type Gns3Config, type Gns3Server } from './config.js';
import { assignTargets, type PollSourceOptions } from '../shared-targets.js';
import { Gns3Client } from './client.js';

/**
 * The GNS3 source: each lab server polled on its interval over the v3 REST API (its compute's load, the
 * projects, and in each opened project its nodes and links, as samples), and each opened project's
 * notification stream taken in as events (a node started, stopped, created or deleted; a link made,
 * cut or suspended), as the GNS3 GUI itself follows them.
 */

const polls = counter('noctua_gns3_polls_total', 'GNS3 polls by server and outcome', ['server', 'outcome']);
const notifications = counter('noctua_gns3_notifications_total', 'GNS3 notifications taken in, by action', ['action']);
const streamErrors = counter('noctua_gns3_stream_errors_total', 'GNS3 notification streams that failed or closed (reopened at the next poll)', ['server']);
const rejected = counter('noctua_gns3_rejected_total', 'GNS3 notifications that were not JSON of the expected shape', ['server']);

interface Project {
  project_id: string;
  name: string;
  status: string;
}
interface Node {
  node_id: string;
  name: string;
  node_type: string;
  status: string;
}
interface Statistics {
  compute_id: string;
  compute_name?: string;
  statistics?: { cpu_usage_percent?: number; memory_usage_percent?: number; disk_usage_percent?: number };
}

/** Actions that are events; the rest (ping, compute.updated every few seconds, project.updated) are not. */
const EVENT_ACTIONS = new Set(['node.created', 'node.deleted', 'node.updated', 'link.created', 'link.deleted', 'link.updated', 'project.closed', 'project.deleted', 'log.error', 'log.warning']);

/** What the source knows of a project's nodes: names (a deleted node's event has only its id) and last statuses. */
export interface NotificationContext {
  readonly server: string;
  readonly project: string;
  readonly nodeNames: Map<string, string>;
  readonly nodeStatus: Map<string, string>;
}

/** The event a notification is, if any (and what it teaches about the nodes). */
export function notificationEvent(action: string, e: Record<string, unknown>, ctx: NotificationContext): { device: string; severity: Severity; message: string; fields: Record<string, unknown> } | null {
  const project = ctx.project;
  if (action.startsWith('node.')) {
    const name = typeof e.name === 'string' ? e.name : ctx.nodeNames.get(String(e.node_id)) ?? String(e.node_id ?? 'node');
    if (typeof e.node_id === 'string' && typeof e.name === 'string') ctx.nodeNames.set(e.node_id, e.name);
    const status = typeof e.status === 'string' ? e.status : undefined;
    const id = String(e.node_id);
    const before = ctx.nodeStatus.get(id);
    if (status) ctx.nodeStatus.set(id, status);
    if (action === 'node.deleted') ctx.nodeStatus.delete(id);
    // node.updated comes for every rename or move on the canvas, with the whole node: only a change
    // of status is worth an event.
    if (action === 'node.updated' && (!status || before === undefined || before === status)) return null;
    const what = action === 'node.updated' ? status! : action.slice(5);
    const severity: Severity = action === 'node.updated' && status !== 'started' ? 'warning' : 'info';
    return { device: name, severity, message: `${project}: node ${name} ${what}`, fields: { project, node_id: e.node_id, node_type: e.node_type, ...(status ? { status } : {}) } };
  }
  if (action.startsWith('link.')) {
    const ends = Array.isArray(e.nodes) ? (e.nodes as Array<{ node_id?: string }>).map((n) => ctx.nodeNames.get(String(n.node_id)) ?? String(n.node_id)) : [];
    const what = action === 'link.updated' ? (e.suspend === true ? 'suspended' : e.suspend === false ? 'resumed' : null) : action.slice(5);
    if (!what) return null;
    return { device: ctx.server, severity: action === 'link.deleted' || what === 'suspended' ? 'warning' : 'info', message: `${project}: link ${ends.join(' - ')} ${what}`, fields: { project, link_id: e.link_id, nodes: ends } };
  }
  if (action.startsWith('log.')) {
    return { device: ctx.server, severity: action === 'log.error' ? 'minor' : 'warning', message: `${project}: ${String(e.message ?? '')}`.slice(0, 2000), fields: { project } };
  }
  return { device: ctx.server, severity: 'info', message: `${project}: project ${action.slice(8)}`, fields: { project } };
}

/** The consumer group of `noctua poll` processes dividing GNS3 servers. */
export const GNS3_POLL_GROUP = 'noctua-poll-gns3';

export interface Gns3SourceOptions extends PollSourceOptions {
  readonly gns3: unknown;
}

export interface Gns3Source {
  readonly config: Gns3Config;
  /** Names of the servers this process polls (all of them in local mode). */
  polled(): string[];
  stop(): Promise<void>;
}

const PROCESS = randomBytes(4).toString('hex');
let sequence = 0;

export async function startGns3Source(opts: Gns3SourceOptions): Promise<Gns3Source> {
  const { config, servers } = parseGns3Config(opts.gns3);
  const log = opts.log;
  const producer: BusProducer = await opts.bus.producer();
  const publish = busPublisher('gns3', producer, { ...(log ? { log } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  const sendBatch = (b: SampleBatch) => publish.sendBatch(b);
  const sendEvent = (e: NetEvent) => publish.sendEvent(e);
  const event = (server: Gns3Server, device: string, kind: string, severity: Severity, message: string, fields: Record<string, unknown>) => {
    const ts = Date.now();
    // Not replayable from GNS3: unique, and stable once made.
    const id = `g${PROCESS}${ts.toString(36)}${(++sequence).toString(36)}`;
    sendEvent({ id, ts, source: 'gns3', kind, severity, device, message, fields: { server: server.name, ...fields } });
  };

  const newState = (server: Gns3Server) => ({
    server,
    client: new Gns3Client(server),
    up: null as boolean | null,
    streams: new Map<string, WebSocket>(),
    projectNames: new Map<string, string>(),
    nodeNames: new Map<string, string>(),
    /** Last known status per node: node.updated carries the whole node, a status change is what counts. */
    nodeStatus: new Map<string, string>(),
    timer: undefined as NodeJS.Timeout | undefined,
  });
  type State = ReturnType<typeof newState>;
  const states = new Map<string, State>();

  const openStream = async (st: State, project: Project) => {
    if (st.streams.has(project.project_id)) return;
    const url = await st.client.streamUrl(`/v3/projects/${project.project_id}/notifications/ws`);
    if (states.get(st.server.id) !== st) return; // no longer this process's server (a rebalance) or stopped
    const ws = new WebSocket(url, { handshakeTimeout: st.server.timeoutMs, maxPayload: 4 * 1024 * 1024 });
    st.streams.set(project.project_id, ws);
    ws.on('message', (data) => {
      let m: { action?: unknown; event?: Record<string, unknown> };
      try {
        m = JSON.parse(String(data)) as typeof m;
      } catch {
        rejected.inc({ server: st.server.name });
        return;
      }
      if (typeof m.action !== 'string' || typeof m.event !== 'object' || m.event === null) {
        rejected.inc({ server: st.server.name });
        return;
      }
      notifications.inc({ action: m.action });
      if (EVENT_ACTIONS.has(m.action)) onNotification(st, project, m.action, m.event);
    });
    const gone = (why: string) => {
      if (st.streams.get(project.project_id) !== ws) return;
      st.streams.delete(project.project_id);
      streamErrors.inc({ server: st.server.name });
      log?.warn({ server: st.server.name, project: project.name, why }, 'gns3 notification stream ended; reopened at the next poll');
    };
    ws.on('error', (err) => gone(err.message));
    ws.on('close', (code) => gone(`closed (${code})`));
  };

  const onNotification = (st: State, project: Project, action: string, e: Record<string, unknown>) => {
    const projectName = st.projectNames.get(String(e.project_id ?? project.project_id)) ?? project.name;
    const ev = notificationEvent(action, e, { server: st.server.name, project: projectName, nodeNames: st.nodeNames, nodeStatus: st.nodeStatus });
    if (ev) event(st.server, ev.device, action, ev.severity, ev.message, ev.fields);
  };

  const pollServer = async (st: State) => {
    const ts = Date.now();
    const server: Labels = { device: st.server.name, gns3_server: st.server.name };
    const samples: Sample[] = [];
    const put = (metric: string, value: unknown, labels: Labels = server) => {
      if (typeof value === 'number' && Number.isFinite(value)) samples.push({ metric, labels, ts, value });
    };
    try {
      const [stats, projects] = await Promise.all([st.client.get<Statistics[]>('/v3/statistics'), st.client.get<Project[]>('/v3/projects')]);
      for (const c of Array.isArray(stats) ? stats : []) {
        const l = { ...server, compute: c.compute_id };
        put('gns3_compute_cpu_pct', c.statistics?.cpu_usage_percent, l);
        put('gns3_compute_mem_pct', c.statistics?.memory_usage_percent, l);
        put('gns3_compute_disk_pct', c.statistics?.disk_usage_percent, l);
      }
      const nodeBatches: SampleBatch[] = [];
      const opened = new Set<string>();
      for (const p of Array.isArray(projects) ? projects : []) {
        st.projectNames.set(p.project_id, p.name);
        const l = { ...server, project: p.name };
        put('gns3_project_open', p.status === 'opened' ? 1 : 0, l);
        if (p.status !== 'opened') continue;
        opened.add(p.project_id);
        const [nodes, links] = await Promise.all([st.client.get<Node[]>(`/v3/projects/${p.project_id}/nodes`), st.client.get<unknown[]>(`/v3/projects/${p.project_id}/links`)]);
        put('gns3_project_nodes', nodes.length, l);
        put('gns3_project_nodes_started', nodes.filter((n) => n.status === 'started').length, l);
        put('gns3_project_links', links.length, l);
        for (const n of nodes) {
          st.nodeNames.set(n.node_id, n.name);
          st.nodeStatus.set(n.node_id, n.status);
          const nl: Labels = { device: n.name, gns3_server: st.server.name, project: p.name, node_type: n.node_type };
          nodeBatches.push({ device: n.name, source: 'gns3', ts, samples: [{ metric: 'gns3_node_up', labels: nl, ts, value: n.status === 'started' ? 1 : 0 }] });
        }
        if (st.server.notifications) await openStream(st, p).catch((err) => log?.warn({ server: st.server.name, project: p.name, err: (err as Error).message }, 'gns3 notification stream not opened'));
      }
      // Streams of projects closed since: closed here too.
      for (const [id, ws] of st.streams) {
        if (opened.has(id)) continue;
        st.streams.delete(id);
        ws.close();
      }
      put('gns3_up', 1);
      sendBatch({ device: st.server.name, source: 'gns3', ts, samples });
      for (const b of nodeBatches) sendBatch(b);
      polls.inc({ server: st.server.name, outcome: 'ok' });
      if (st.up === false) event(st.server, st.server.name, 'reachable', 'info', `GNS3 ${st.server.name} answers again`, {});
      st.up = true;
    } catch (err) {
      polls.inc({ server: st.server.name, outcome: 'failed' });
      M.errors.inc({ component: 'gns3', kind: 'poll' });
      log?.warn({ server: st.server.name, url: st.server.url, err: (err as Error).message }, 'gns3 poll failed');
      sendBatch({ device: st.server.name, source: 'gns3', ts, samples: [{ metric: 'gns3_up', labels: server, ts, value: 0 }] });
      if (st.up !== false) event(st.server, st.server.name, 'unreachable', 'major', (err as Error).message, {});
      st.up = false;
      // The token is kept: a restarted server's 401 makes the client log in again (client.ts), and a
      // login after every timeout would add a password hash per poll to a server already too slow.
    }
  };

  const busy = new Set<State>();
  const pollOne = async (st: State) => {
    if (busy.has(st)) return;
    busy.add(st);
    try {
      await pollServer(st);
    } finally {
      busy.delete(st);
    }
  };
  const removeServer = (id: string) => {
    const st = states.get(id);
    if (!st) return;
    states.delete(id);
    clearInterval(st.timer);
    for (const ws of st.streams.values()) ws.close();
    st.streams.clear();
  };
  const addServer = (server: Gns3Server) => {
    removeServer(server.id);
    const st = newState(server);
    states.set(server.id, st);
    st.timer = setInterval(() => void pollOne(st), server.intervalMs);
    void pollOne(st);
  };
  const shared = await assignTargets(opts, servers, { topic: TOPICS.gns3Targets, groupId: GNS3_POLL_GROUP, wire: Gns3ServerWire, set: addServer, remove: removeServer, what: 'gns3' });
  log?.info({ servers: servers.map((s) => s.name), mode: opts.mode ?? 'local' }, 'gns3 source started');

  return {
    config,
    polled: () => [...states.keys()],
    async stop() {
      await shared?.stop();
      for (const id of [...states.keys()]) removeServer(id);
      await publish.close(15_000);
      await producer.close();
    },
  };
}

