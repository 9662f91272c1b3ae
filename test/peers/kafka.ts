import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { freePort, startProcess, tempDir, waitFor, type Proc } from './util.js';

/**
 * A real Apache Kafka broker for tests: KRaft single node on 127.0.0.1, started by
 * deploy/kafka/start.sh from the jars deploy/kafka/fetch.sh cached (npm test provisions them).
 * Free ports, its own data dir; killed when the test process exits.
 */
export interface KafkaPeer {
  readonly brokers: string[];
  readonly dataDir: string;
  /** Stops (SIGTERM, clean shutdown) and starts again on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL: a crash, for durability tests; `restart()` brings it back. */
  kill(): Promise<void>;
}

export interface KafkaPeerOptions {
  /** Reuse a data dir (kept); default a fresh temp dir removed by stop(). */
  readonly dataDir?: string;
  /** How long to wait for the broker to answer (a cold JVM on 2 busy cores takes a while). */
  readonly startTimeoutMs?: number;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const deployDir = join(root, 'deploy/kafka');

/** Where fetch.sh puts the jars; mirrors deploy/kafka/env.sh. */
export function kafkaLibsDir(env: NodeJS.ProcessEnv = process.env): string {
  const version = env.NOCTUA_KAFKA_VERSION ?? '4.4.0';
  const home = env.NOCTUA_KAFKA_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'noctua', `kafka-${version}`);
  return join(home, 'libs');
}

function assertJars(): void {
  const libs = kafkaLibsDir();
  const ok = existsSync(libs) && readdirSync(libs).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
  if (!ok) {
    throw new Error(`Kafka broker jars missing: no kafka_2.13-*.jar in ${libs}. Run \`bash deploy/kafka/fetch.sh\` (or \`npm run peers\`); it needs mvn and Java 17.`);
  }
}

/** True once a kafkajs admin client gets cluster metadata from the broker. */
async function answers(brokers: string[]): Promise<boolean> {
  const kafka = new kafkajs.Kafka({ brokers, clientId: 'noctua-test-probe', logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const c = await admin.describeCluster();
    return c.brokers.length > 0 && c.controller !== null;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function startKafka(opts: KafkaPeerOptions = {}): Promise<KafkaPeer> {
  assertJars();
  const owned = opts.dataDir ? null : tempDir('kafka');
  const dataDir = opts.dataDir ?? owned!.path;
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const brokers = [`127.0.0.1:${port}`];
  const timeout = opts.startTimeoutMs ?? 90_000;
  let proc: Proc | null = null;

  const launch = async () => {
    const p = startProcess('bash', [join(deployDir, 'start.sh'), dataDir, String(port), String(controllerPort)], { env: { ...process.env } });
    proc = p;
    let exitedEarly: number | null | undefined;
    void p.exited.then((code) => {
      exitedEarly = code;
    });
    try {
      await waitFor(`Kafka broker on ${brokers[0]}`, async () => {
        if (exitedEarly !== undefined) throw new Error(`broker exited with ${exitedEarly}:\n${p.output().slice(-4000)}`);
        return answers(brokers);
      }, timeout, 250);
    } catch (err) {
      await p.kill();
      throw new Error(`${(err as Error).message}\n--- broker output ---\n${p.output().slice(-4000)}`);
    }
  };

  await launch();
  return {
    brokers,
    dataDir,
    async restart() {
      await proc?.stop(30_000);
      await launch();
    },
    async stop() {
      await proc?.stop(30_000);
      owned?.remove();
    },
    async kill() {
      await proc?.kill('SIGKILL');
    },
  };
}
