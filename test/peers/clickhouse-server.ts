import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startProcess, tempDir, waitFor, peerMissing, type Proc } from './util.js';

/**
 * Debian's clickhouse-server (18.16) as a plain process on 127.0.0.1 with its own config, users
 * file and data directory. It runs as root without complaint (checked), so no user switch.
 * stop()/start() keep the data directory and the ports, to simulate an outage.
 */

export const CLICKHOUSE_SERVER_BINARIES = ['/usr/bin/clickhouse-server', '/usr/sbin/clickhouse-server'];

export function clickhouseServerBinary(): string | undefined {
  return CLICKHOUSE_SERVER_BINARIES.find((p) => existsSync(p));
}

/** Why the peer cannot run here, or undefined. In CI a missing peer is an error, not a skip. */
export function clickhouseServerMissing(): string | undefined {
  return peerMissing(clickhouseServerBinary() !== undefined, 'clickhouse-server', 'apt-get install -y clickhouse-server');
}

export interface ClickHouseServer {
  /** http://127.0.0.1:<port> (no credentials in it). */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly httpPort: number;
  readonly dir: string;
  /** Stops the process (SIGTERM), keeping data and ports. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  output(): string;
}

function configXml(dir: string, http: number, tcp: number, interserver: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>${dir}/log/server.log</log><errorlog>${dir}/log/error.log</errorlog><size>10M</size><count>2</count></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <interserver_http_port>${interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/data/tmp/</tmp_path>
  <user_files_path>${dir}/data/user_files/</user_files_path>
  <format_schema_path>${dir}/data/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>104857600</mark_cache_size>
  <uncompressed_cache_size>104857600</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <timezone>UTC</timezone>
</yandex>
`;
}

function usersXml(user: string, password: string): string {
  return `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <${user}>
      <password>${password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${user}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;
}

export async function startClickHouseServer(opts: { password?: string } = {}): Promise<ClickHouseServer> {
  const bin = clickhouseServerBinary();
  if (!bin) throw new Error('clickhouse-server is not installed (apt-get install -y clickhouse-server)');
  const tmp = tempDir('clickhouse-server');
  const dir = tmp.path;
  mkdirSync(join(dir, 'log'), { recursive: true });
  mkdirSync(join(dir, 'data', 'tmp'), { recursive: true });
  const [http, tcp, interserver] = [await freePort(), await freePort(), await freePort()];
  const user = 'default';
  const password = opts.password ?? 'noctua-test-secret';
  writeFileSync(join(dir, 'config.xml'), configXml(dir, http, tcp, interserver));
  writeFileSync(join(dir, 'users.xml'), usersXml(user, password));
  const url = `http://127.0.0.1:${http}`;
  let proc: Proc | null = null;

  const ping = async () => {
    const r = await fetch(`${url}/ping`);
    return r.ok && (await r.text()).startsWith('Ok');
  };

  const start = async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) return;
    proc = startProcess(bin, [`--config-file=${join(dir, 'config.xml')}`]);
    const p = proc;
    await waitFor(
      `clickhouse-server on ${url}`,
      async () => {
        if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode}: ${p.output().slice(-2000)}`);
        return ping();
      },
      60_000,
      100,
    );
  };

  const stop = async () => {
    if (!proc) return;
    await proc.stop(15_000);
    proc = null;
  };

  await start();
  return {
    url,
    user,
    password,
    httpPort: http,
    dir,
    start,
    stop,
    async close() {
      await stop();
      tmp.remove();
    },
    output: () => proc?.output() ?? '',
  };
}
