import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, peerMissing, startProcess, tcpAccepts, tempDir, waitFor, type Proc } from './util.js';

const SSHD = '/usr/sbin/sshd';

/** Why the SSH tests cannot run here (undefined when they can); throws in CI. */
export function sshdMissing(): string | undefined {
  return peerMissing(existsSync(SSHD) && existsSync('/usr/bin/ssh-keygen'), 'sshd', 'apt-get install openssh-server');
}

export interface Sshd {
  readonly port: number;
  readonly user: string;
  /** A client key sshd accepts, and one it does not. */
  readonly keyFile: string;
  readonly strangerKeyFile: string;
  /** The host key's fingerprint (SHA256:...), as ssh-keygen -lf prints it. */
  readonly hostKey: string;
  stop(): Promise<void>;
}

/**
 * Debian's OpenSSH server on 127.0.0.1 with its own host key, config and authorized_keys in a temp
 * folder (no PAM, no system config): the SSH source logs in as the user running the tests, with a key.
 */
export async function startSshd(): Promise<Sshd> {
  const dir = tempDir('sshd');
  const key = (name: string) => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir.path, name)]);
    return join(dir.path, name);
  };
  const host = key('host_key');
  const client = key('client_key');
  const stranger = key('stranger_key');
  writeFileSync(join(dir.path, 'authorized_keys'), readFileSync(`${client}.pub`));
  const port = await freePort();
  const user = userInfo().username;
  writeFileSync(join(dir.path, 'sshd_config'), [
    // Three loopback addresses: three targets (a target is address:port) on one server.
    `Port ${port}`, 'ListenAddress 127.0.0.1', 'ListenAddress 127.0.0.2', 'ListenAddress 127.0.0.3', `HostKey ${host}`, `AuthorizedKeysFile ${join(dir.path, 'authorized_keys')}`,
    'UsePAM no', 'StrictModes no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password', `PidFile ${join(dir.path, 'sshd.pid')}`, `AllowUsers ${user}`, 'LogLevel INFO',
  ].join('\n') + '\n');
  // sshd wants its privilege-separation directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = execFileSync('ssh-keygen', ['-lf', `${host}.pub`], { encoding: 'utf8' }).split(/\s+/)[1]!;
  const p: Proc = startProcess(SSHD, ['-D', '-e', '-f', join(dir.path, 'sshd_config')]);
  try {
    await waitFor('sshd to listen', () => tcpAccepts(port), 15_000, 100);
  } catch (err) {
    await p.stop();
    dir.remove();
    throw new Error(`${(err as Error).message}\n${p.output()}`);
  }
  return {
    port,
    user,
    keyFile: client,
    strangerKeyFile: stranger,
    hostKey,
    async stop() {
      await p.stop(5_000);
      dir.remove();
    },
  };
}
