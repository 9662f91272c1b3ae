import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../../..');

test("docker-compose.yml (Kafka, ClickHouse server, each role) passes Debian's docker-compose config", () => {
  const run = (env: Record<string, string>) => spawnSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const ok = run({ NOCTUA_TOKEN: 'compose-test-token-0123456789' });
  assert.equal(ok.error, undefined, 'docker-compose is installed (scripts/provision.mjs)');
  assert.equal(ok.status, 0, ok.stderr);
  for (const svc of ['kafka', 'clickhouse', 'poll', 'process', 'sink', 'serve']) assert.match(ok.stdout, new RegExp(`\\n  ${svc}:\\n`), svc);
  assert.match(ok.stdout, /KAFKA_BROKERS: kafka:9092/);
  // The API token has no default: compose refuses to start without one.
  const noToken = run({ NOCTUA_TOKEN: '' });
  assert.notEqual(noToken.status, 0);
  assert.match(noToken.stderr, /NOCTUA_TOKEN/);
});
