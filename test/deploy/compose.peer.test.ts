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
  for (const svc of ['kafka', 'clickhouse', 'poll', 'process', 'sink', 'serve', 'report']) assert.match(ok.stdout, new RegExp(`\\n  ${svc}:\\n`), svc);
  assert.match(ok.stdout, /KAFKA_BROKERS: kafka:9092/);
  // Every role answers probes and scrapes from outside its container.
  for (const svc of ['poll', 'process', 'sink', 'serve', 'report']) {
    const block = ok.stdout.split(/\n  (?=[a-z]+:\n)/).find((b) => b.startsWith(`${svc}:\n`)) ?? '';
    assert.match(block, /NOCTUA_API__HOST: 0\.0\.0\.0/, `${svc} listens beyond its container`);
    assert.match(block, /healthcheck:[\s\S]*8080\/health/, `${svc} has a healthcheck`);
  }
  // The API token has no default: compose refuses to start without one.
  const noToken = run({ NOCTUA_TOKEN: '' });
  assert.notEqual(noToken.status, 0);
  assert.match(noToken.stderr, /NOCTUA_TOKEN/);
});
