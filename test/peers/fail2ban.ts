import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { peerMissing, startProcess, tempDir, waitFor, type Proc } from './util.js';

const SERVER = '/usr/bin/fail2ban-server';

/** Why the fail2ban tests cannot run here (undefined when they can); throws in CI. */
export function fail2banMissing(): string | undefined {
  return peerMissing(existsSync(SERVER), 'fail2ban-server', 'apt-get install fail2ban');
}

export interface Fail2ban {
  /** The log fail2ban watches: append sshd-style failures here. */
  readonly authLog: string;
  /** fail2ban's own log (its logtarget): what Noctua follows. */
  readonly log: string;
  /** An sshd line of a failed login from `ip`, as fail2ban's jail expects. */
  failure(ip: string): string;
  stop(): Promise<void>;
}

/**
 * A real fail2ban server in the foreground with its own configuration: one jail over `authLog` that
 * bans after 2 failures for `banSeconds`, with an action that touches no firewall (this is a test
 * machine), an in-memory database and its socket in a temp folder.
 */
export async function startFail2ban(banSeconds = 3): Promise<Fail2ban> {
  const dir = tempDir('fail2ban');
  const conf = join(dir.path, 'conf');
  for (const d of ['filter.d', 'action.d']) mkdirSync(join(conf, d), { recursive: true });
  const authLog = join(dir.path, 'auth.log');
  const log = join(dir.path, 'fail2ban.log');
  writeFileSync(authLog, '');
  writeFileSync(join(conf, 'fail2ban.conf'), `[Definition]\nloglevel = INFO\nlogtarget = ${log}\nsocket = ${join(dir.path, 'f2b.sock')}\npidfile = ${join(dir.path, 'f2b.pid')}\ndbfile = :memory:\nsyslogsocket = auto\nallowipv6 = auto\ndbpurgeage = 1d\n`);
  writeFileSync(join(conf, 'filter.d', 'noctua-test.conf'), '[Definition]\nfailregex = ^.* Failed password for \\S+ from <HOST>\n');
  writeFileSync(join(conf, 'action.d', 'noop.conf'), '[Definition]\nactionstart =\nactionstop =\nactioncheck =\nactionban = true\nactionunban = true\n');
  writeFileSync(join(conf, 'jail.conf'), `[DEFAULT]\nbackend = polling\n[sshd-test]\nenabled = true\nfilter = noctua-test\nlogpath = ${authLog}\nmaxretry = 2\nfindtime = 600\nbantime = ${banSeconds}\naction = noop\n`);
  const p: Proc = startProcess(SERVER, ['-f', '-x', '-c', conf]);
  try {
    await waitFor('fail2ban to start its jail', () => existsSync(log) && /Jail 'sshd-test' started/.test(readText(log)), 20_000, 100);
  } catch (err) {
    await p.stop();
    dir.remove();
    throw new Error(`${(err as Error).message}\n${p.output()}`);
  }
  return {
    authLog,
    log,
    failure: (ip) => `${syslogTime(new Date())} bastion sshd[99]: Failed password for root from ${ip} port 50000 ssh2\n`,
    async stop() {
      await p.stop(5_000);
      dir.remove();
    },
  };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** "Dec  7 14:05:01", local time, as sshd's syslog lines carry it. */
function syslogTime(d: Date): string {
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]!;
  return `${mon} ${String(d.getDate()).padStart(2, ' ')} ${d.toTimeString().slice(0, 8)}`;
}
