import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Client } from 'ssh2';
import type { BusProducer } from '../../core/bus.js';
import { TOPICS, type NetEvent, type SampleBatch, type Severity } from '../../core/types.js';
import { M, counter } from '../../core/metrics.js';
import { busPublisher } from '../publish.js';
import { Scheduler } from '../scheduler.js';
import { parseSshConfig, SshTargetWire, type SshConfig, type SshTarget } from './config.js';
import { assignTargets, type PollSourceOptions } from '../shared-targets.js';
import { LINUX_COMMAND, parseLinux, type CpuTimes } from './linux.js';

/**
 * The SSH source: each target polled on its interval (through the shared scheduler) with one exec of
 * LINUX_COMMAND, its output turned into the samples SNMP would give (linux.ts), one batch per poll on
 * the samples topic; `ssh_up` says whether the poll worked, and a change of reachability is an event.
 */

const polls = counter('noctua_ssh_polls_total', 'SSH polls by target and outcome', ['target', 'outcome']);
const problemsTotal = counter('noctua_ssh_output_problems_total', 'Parts of a poll output that did not read as expected, per target', ['target']);

/** Output beyond this is no /proc listing: the poll fails rather than holding it. */
const MAX_OUTPUT = 4 * 1024 * 1024;

export type SshOutcome = 'ok' | 'unreachable' | 'auth' | 'hostkey' | 'timeout' | 'failed';

export interface SshPollResult {
  readonly outcome: SshOutcome;
  readonly output?: string;
  readonly error?: string;
}

/** SHA256:<base64 without padding> of a host key, as `ssh-keygen -lf` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** One connection, one exec, closed: the command's stdout, or why there is none. */
export function sshExec(t: SshTarget, command: string): Promise<SshPollResult> {
  let privateKey: Buffer | undefined;
  try {
    if (t.privateKeyFile) privateKey = readFileSync(t.privateKeyFile);
  } catch (err) {
    return Promise.resolve({ outcome: 'auth', error: `cannot read the key file ${t.privateKeyFile} on this host: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  }
  return new Promise((resolve) => {
    const c = new Client();
    let done = false;
    let hostKeyRefused = false;
    const finish = (r: SshPollResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.end();
      resolve(r);
    };
    const timer = setTimeout(() => {
      finish({ outcome: 'timeout', error: `no answer within ${t.timeoutMs} ms` });
      c.destroy();
    }, t.timeoutMs);
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return finish({ outcome: 'failed', error: `exec refused: ${err.message}` });
        const chunks: Buffer[] = [];
        let bytes = 0;
        stream.on('data', (d: Buffer) => {
          bytes += d.length;
          if (bytes > MAX_OUTPUT) return finish({ outcome: 'failed', error: `output beyond ${MAX_OUTPUT} bytes` });
          chunks.push(d);
        });
        stream.stderr.on('data', () => {});
        stream.on('close', () => finish({ outcome: 'ok', output: Buffer.concat(chunks).toString('utf8') }));
      });
    });
    c.on('error', (err: Error & { level?: string; code?: string }) => {
      if (hostKeyRefused) return finish({ outcome: 'hostkey', error: `host key is not the one configured (${t.hostKey})` });
      if (err.level === 'client-authentication') return finish({ outcome: 'auth', error: `authentication failed for ${t.user}` });
      if (/timed out/i.test(err.message)) return finish({ outcome: 'timeout', error: err.message });
      finish({ outcome: 'unreachable', error: err.code ? `${err.code}: ${err.message}` : err.message });
    });
    c.on('close', () => finish({ outcome: 'unreachable', error: 'connection closed before the command ran' }));
    c.connect({
      host: t.address,
      port: t.port,
      username: t.user,
      ...(privateKey ? { privateKey } : {}),
      ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      readyTimeout: t.timeoutMs,
      ...(t.hostKey
        ? {
            hostVerifier: (key: Buffer) => {
              const ok = fingerprint(key) === t.hostKey;
              hostKeyRefused = !ok;
              return ok;
            },
          }
        : {}),
    });
  });
}

/** The consumer group of `noctua poll` processes dividing SSH targets. */
export const SSH_POLL_GROUP = 'noctua-poll-ssh';

export interface SshSourceOptions extends PollSourceOptions {
  readonly ssh: unknown;
  /** How a poll is made (tests may count them); default sshExec. */
  readonly exec?: (t: SshTarget, command: string) => Promise<SshPollResult>;
}

export interface SshSource {
  readonly config: SshConfig;
  /** The configured targets. */
  readonly targets: readonly SshTarget[];
  /** Ids of the targets this process polls (all of them in local mode). */
  polled(): string[];
  stop(): Promise<void>;
}

export async function startSshSource(opts: SshSourceOptions): Promise<SshSource> {
  const { config, targets } = parseSshConfig(opts.ssh);
  const log = opts.log;
  const exec = opts.exec ?? sshExec;
  const producer: BusProducer = await opts.bus.producer();
  const publish = busPublisher('ssh', producer, { ...(log ? { log } : {}), maxBytes: config.bufferBytes, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  const cpu = new Map<string, CpuTimes>();
  const reachable = new Map<string, boolean>();
  const event = (t: SshTarget, kind: string, severity: Severity, message: string, ts: number, fields: Record<string, unknown>) => {
    const e: NetEvent = { id: createHash('sha1').update(`ssh\0${t.id}\0${kind}\0${ts}`).digest('hex').slice(0, 20), ts, source: 'ssh', kind, severity, device: t.device, message, fields: { target: t.id, ...fields } };
    publish.sendEvent(e);
  };

  const poll = async (t: SshTarget) => {
    const ts = Date.now();
    const r = await exec(t, LINUX_COMMAND);
    const base = { ...t.labels, device: t.device };
    let batch: SampleBatch;
    if (r.outcome === 'ok') {
      const p = parseLinux(r.output ?? '', t.device, t.labels, ts, cpu.get(t.id) ?? null);
      if (p.cpu) cpu.set(t.id, p.cpu);
      if (p.problems.length > 0) {
        problemsTotal.inc({ target: t.id }, p.problems.length);
        log?.warn({ target: t.id, device: t.device, problems: p.problems }, 'ssh poll output partly unreadable; the rest is kept');
      }
      batch = { device: t.device, source: 'ssh', ts, samples: [...p.samples, { metric: 'ssh_up', labels: base, ts, value: 1 }] };
    } else {
      M.errors.inc({ component: 'ssh', kind: r.outcome });
      log?.warn({ target: t.id, device: t.device, outcome: r.outcome, err: r.error }, 'ssh poll failed');
      batch = { device: t.device, source: 'ssh', ts, samples: [{ metric: 'ssh_up', labels: base, ts, value: 0 }] };
    }
    polls.inc({ target: t.id, outcome: r.outcome });
    const up = r.outcome === 'ok';
    const was = reachable.get(t.id);
    if (was !== up && !(was === undefined && up)) {
      if (up) event(t, 'reachable', 'info', `${t.device} (${t.address}:${t.port}) answers SSH again`, ts, {});
      else event(t, 'unreachable', r.outcome === 'auth' || r.outcome === 'hostkey' ? 'major' : 'critical', `${t.device} (${t.address}:${t.port}) cannot be polled over SSH: ${r.error}`, ts, { outcome: r.outcome });
    }
    reachable.set(t.id, up);
    publish.sendBatch(batch);
  };

  const scheduler = new Scheduler({
    concurrency: config.concurrency,
    onError: (id, err) => log?.error({ target: id, err: (err as Error).message }, 'ssh poll threw'),
  });
  const setTarget = (t: SshTarget) => scheduler.add({ id: `ssh:${t.id}`, intervalMs: t.intervalMs, run: () => poll(t) });
  const removeTarget = (id: string) => {
    scheduler.remove(`ssh:${id}`);
    cpu.delete(id);
    reachable.delete(id);
  };
  const shared = await assignTargets(opts, targets, { topic: TOPICS.sshTargets, groupId: SSH_POLL_GROUP, wire: SshTargetWire, set: setTarget, remove: removeTarget, what: 'ssh' });
  scheduler.start();
  log?.info({ targets: targets.length, mode: opts.mode ?? 'local' }, 'ssh source started');
  return {
    config,
    targets,
    polled: () => scheduler.ids().map((id) => id.slice('ssh:'.length)),
    async stop() {
      await shared?.stop();
      await scheduler.stop();
      await publish.close(15_000);
      await producer.close();
    },
  };
}
