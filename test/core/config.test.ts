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

test('a misspelt setting is an error naming the nearest known one, in the file and in every section the roles validate; stray NOCTUA_* variables are not', async () => {
  const { checkConfig } = await import('../../cli/runtime.js');
  const dir = mkdtempSync(join(tmpdir(), 'noctua-cfg-'));
  const f = join(dir, 'n.yaml');
  writeFileSync(f, 'api:\n  prot: 9000\n');
  assert.throws(() => loadConfig({ file: f, env: {} }), (err: unknown) => err instanceof ConfigError && err.problems.length === 1 && /config\.api\.prot: unknown setting \(did you mean "port"\?\)/.test(err.message));
  // an environment variable that names no setting (a benchmark's, another tool's) is not the file's fault
  assert.equal(loadConfig({ file: undefined, env: { NOCTUA_ANOMALY_PARAMS: '{"mode":"likelihood"}', NOCTUA_API__PORT: '9001' } }).api.port, 9001);
  // the sections each role validates at its start, checked at once (`noctua config`), every problem listed
  writeFileSync(f, [
    'processors:', '  anomaly:', '    changeLast: 30m', '  windows:', '    - { name: 1m, size: 1m, latenes: 10s }',
    'snmp:', '  targets:', '    - { address: 10.0.0.1, comunity: public, host: x }',
    'notify:', '  receivers:', '    - { name: t, url: "http://127.0.0.1:1/", tokn: abc }',
    'security:', '  syslog: { enabled: true, udpPrt: 514 }', '  eve: { files: [{ path: /var/log/suricata/eve.json, devcie: ids-1 }] }',
  ].join('\n') + '\n');
  const cfg = loadConfig({ file: f, env: {} });
  assert.throws(() => checkConfig(cfg), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems, [
      'processors.anomaly.changeLast: unknown setting (did you mean "changeLasts"?)',
      'processors.windows.0.latenes: unknown setting (did you mean "lateness"?)',
      'config.notify.receivers.0.tokn: unknown setting (did you mean "token"?)',
      'config.snmp.targets.0.comunity: unknown setting (did you mean "community"?)',
      'config.snmp.targets.0.host: unknown setting (known: address, name, port, version, community, user, intervalMs, timeoutMs, retries, maxRepetitions, labels)',
      'config.security.syslog.udpPrt: unknown setting (did you mean "udpPort"?)',
      'config.security.eve.files.0.devcie: unknown setting (did you mean "device"?)',
    ]);
    return true;
  });
  // and the rule file the processors would load: a slip in a rule is named with the rule file and the rule
  const rules = join(dir, 'rules.yaml');
  writeFileSync(rules, 'groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: snmp_up < 1\n        severity: critical\n        for: 1m\n        anotations: { summary: x }\n');
  assert.throws(() => checkConfig(loadConfig({ file: undefined, env: {}, overrides: { processors: { rulesFile: rules } } })), /rules\.yaml.*anotations: unknown setting \(did you mean "annotations"\?\)/);
  // `noctua config` lists the top level's problems and the sections' in one run
  const { configProblems } = await import('../../cli/runtime.js');
  writeFileSync(f, 'api:\n  prot: 9000\nprocessors:\n  anomaly:\n    changeLast: 30m\n');
  assert.deepEqual(configProblems({ file: f, env: {} }), [
    'config.api.prot: unknown setting (did you mean "port"?)',
    'processors.anomaly.changeLast: unknown setting (did you mean "changeLasts"?)',
  ]);
  assert.deepEqual(configProblems({ file: undefined, env: {} }), []);
  // a processor timing the role would only parse at its start
  assert.throws(() => checkConfig(loadConfig({ file: undefined, env: { NOCTUA_PROCESSORS__COMMIT_INTERVAL: '5x' } })), /processors\.commitInterval/);
  checkConfig(loadConfig({ file: undefined, env: { NOCTUA_PROCESSORS__COMMIT_INTERVAL: '5s' } }));
  checkConfig(loadConfig({ file: undefined, env: {} }));
});
