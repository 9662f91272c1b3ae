import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError, demoEnabled } from '../../core/config.js';

test('defaults give the embedded setup: memory bus, embedded ClickHouse, demo on', () => {
  const c = loadConfig({ env: {}, file: undefined });
  assert.equal(c.bus.kind, 'memory');
  assert.equal(c.clickhouse.url, undefined);
  assert.equal(c.api.port, 8080);
  assert.equal(demoEnabled(c), true);
});

test('a file plus environment overrides, environment wins; KAFKA_BROKERS switches to Kafka', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noctua-cfg-'));
  const f = join(dir, 'n.yaml');
  writeFileSync(f, 'api:\n  port: 9000\nsink:\n  maxRows: 5000\nsnmp:\n  targets:\n    - address: 10.0.0.1\n');
  const c = loadConfig({ file: f, env: { NOCTUA_API__PORT: '9100', KAFKA_BROKERS: '127.0.0.1:9093,127.0.0.1:9094', CLICKHOUSE_URL: 'http://u:p@127.0.0.1:8123' } });
  assert.equal(c.api.port, 9100);
  assert.equal(c.sink.maxRows, 5000);
  assert.equal(c.bus.kind, 'kafka');
  assert.deepEqual(c.bus.brokers, ['127.0.0.1:9093', '127.0.0.1:9094']);
  assert.equal(c.clickhouse.url, 'http://u:p@127.0.0.1:8123');
  assert.equal(demoEnabled(c), false);
});

test('errors name the bad field and the expected form', () => {
  assert.throws(
    () => loadConfig({ env: { NOCTUA_API__PORT: '"eighty"' } }),
    (err: unknown) => err instanceof ConfigError && /config\.api\.port/.test(err.message) && /integer/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { bus: { brokers: ['no-port'] } } }),
    (err: unknown) => err instanceof ConfigError && /config\.bus\.brokers\.0/.test(err.message) && /host:port/.test(err.message),
  );
  const dir = mkdtempSync(join(tmpdir(), 'noctua-cfg-'));
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'api: [unclosed');
  assert.throws(() => loadConfig({ file: f, env: {} }), /not valid YAML/);
});
