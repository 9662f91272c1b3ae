import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../peers/util.js';
import { openClickHouse, type ClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { runReadOnlySql, SqlQueryError, SqlRejectedError, type SqlLimits } from '../../storage/query.js';
import { checkReadOnlySql } from '../../storage/sql-guard.js';
import { registry } from '../../core/metrics.js';

const limits: SqlLimits = { maxExecutionTimeS: 1, maxResultRows: 100, maxMemoryBytes: 50_000_000 };
let ch: ClickHouse;
const dir = tempDir('sql');
const secretFile = join(dir.path, 'secret.txt');

before(async () => {
  ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 }, dir.path);
  await migrate(ch, { rawTtlDays: 14 });
  await ch.client.command({ query: `INSERT INTO noctua.events (id, ts, source, kind, severity, device, message, fields) VALUES ('e1', now64(3), 'syslog', 'link', 'major', 'r1', 'Gi0/1 down', '{}')` });
  writeFileSync(secretFile, 'top-secret\n');
});

after(async () => {
  await ch.close();
  dir.remove();
});

const run = (sql: string, l: SqlLimits = limits) => runReadOnlySql(ch, sql, { format: 'json', limits: l });

test('SELECT returns columns and rows as JSON, and CSV with a header', async () => {
  const r = await run('SELECT device, message FROM noctua.events WHERE severity = \'major\';');
  assert.equal(r.format, 'json');
  if (r.format !== 'json') return;
  assert.deepEqual(r.meta.map((m) => m.name), ['device', 'message']);
  assert.deepEqual(r.data, [{ device: 'r1', message: 'Gi0/1 down' }]);
  const csv = await runReadOnlySql(ch, 'WITH 2 AS x SELECT number * x AS n FROM numbers(3) -- doubles', { format: 'csv', limits });
  assert.equal(csv.format, 'csv');
  if (csv.format === 'csv') assert.equal(csv.text, '"n"\n0\n2\n4\n');
  for (const ok of ['SHOW TABLES FROM noctua', 'DESCRIBE TABLE noctua.samples', 'DESC noctua.events', 'EXPLAIN SELECT 1', 'SELECT name FROM system.settings WHERE name = \'readonly\'', "SELECT format('{}-{}', 'a', 'b') AS f"]) {
    const res = await run(ok);
    assert.ok(res.format === 'json' && res.rows > 0, ok);
  }
});

test('writes, DDL, SET and multi-statements are refused before reaching the engine', async () => {
  const refused: Array<[string, RegExp]> = [
    ['INSERT INTO noctua.events (id) VALUES (\'x\')', /only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN/],
    ['DROP TABLE noctua.samples', /only SELECT/],
    ['ALTER TABLE noctua.samples DELETE WHERE 1', /only SELECT/],
    ['SET readonly = 0', /only SELECT/],
    ['TRUNCATE TABLE noctua.events', /only SELECT/],
    ['SYSTEM DROP DNS CACHE', /only SELECT/],
    ['SELECT 1; DROP TABLE noctua.samples', /only one statement/],
    ['SELECT 1 SETTINGS readonly = 0', /SETTINGS clauses are not allowed/],
    [`SELECT * FROM (SELECT * FROM file('${secretFile}', 'LineAsString') SETTINGS readonly=0)`, /SETTINGS clauses are not allowed/],
    ['SELECT 1 FORMAT TSV', /FORMAT clauses are not allowed/],
    [`SELECT 1 INTO OUTFILE '${join(dir.path, 'out.txt')}'`, /INTO OUTFILE is not allowed/],
    [`DESCRIBE file('${secretFile}', 'CSVWithNames')`, /DESCRIBE accepts a table name only/],
    ['SELECT \'unterminated', /unterminated string/],
    ['/* open comment SELECT 1', /unterminated comment/],
    ['   ', /empty query/],
    ['SELECT ' + '1+'.repeat(60_000) + '1', /characters long; the limit is 100000/],
  ];
  for (const [sql, why] of refused) {
    await assert.rejects(run(sql), (err: Error) => {
      assert.ok(err instanceof SqlRejectedError, `${sql.slice(0, 60)}: ${err.name} ${err.message}`);
      assert.match(err.message, why, sql.slice(0, 60));
      return true;
    });
  }
  assert.equal(existsSync(join(dir.path, 'out.txt')), false);
  // Keywords inside strings, quoted names and comments are not clauses.
  assert.equal(checkReadOnlySql("SELECT 'a; DROP TABLE x' AS `settings`, 1 /* FORMAT ; */ -- ;").kind, 'SELECT');
  const counted = await registry.getSingleMetricAsString('noctua_errors_total');
  assert.match(counted, /component="sql",kind="rejected"} \d+/);
});

test('the engine itself runs the query read-only (file and url table functions refused)', async () => {
  for (const sql of [`SELECT * FROM file('${secretFile}', 'LineAsString')`, "SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')", `SELECT 1 UNION ALL SELECT * FROM file('${secretFile}', 'LineAsString')`]) {
    await assert.rejects(run(sql), (err: Error) => {
      assert.ok(err instanceof SqlQueryError, `${sql}: ${err.message}`);
      assert.match(err.message, /readonly/);
      return true;
    });
  }
  // ...and only that query: the shared embedded session stays writable for the sink.
  await ch.client.command({ query: `INSERT INTO noctua.events (id, ts, source, kind, severity, device, message, fields) VALUES ('e2', now64(3), 's', 'k', 'info', 'r2', 'm', '{}')` });
  const r = await ch.client.query({ query: "SELECT getSetting('readonly') AS r, getSetting('max_result_rows') AS m", format: 'JSONEachRow' });
  assert.deepEqual((await r.json<{ r: unknown; m: unknown }>()).map((x) => [Number(x.r), Number(x.m)]), [[0, 0]]);
});

test('result rows, execution time and memory are bounded', async () => {
  await assert.rejects(run('SELECT number FROM numbers(1000)'), (err: Error) => err instanceof SqlQueryError && /Limit for result exceeded/.test(err.message));
  await assert.rejects(run('SELECT number FROM numbers(90) UNION ALL SELECT number FROM numbers(90)'), /Limit for result exceeded/);
  // Unbounded, this count runs for many minutes; the limit stops it with the engine's own error.
  await assert.rejects(run('SELECT count() FROM numbers(1000000000000)'), (err: Error) => err instanceof SqlQueryError && /Timeout exceeded/.test(err.message));
  await assert.rejects(run('SELECT groupArray(number) FROM numbers(100000000)'), (err: Error) => err instanceof SqlQueryError && /memory limit exceeded/i.test(err.message));
  const ok = await run('SELECT number FROM numbers(100)');
  assert.ok(ok.format === 'json' && ok.rows === 100);
});

test('bad SQL returns the engine error text, without a stack', async () => {
  await assert.rejects(run('SELECT no_such_column FROM noctua.samples'), (err: Error) => {
    assert.ok(err instanceof SqlQueryError);
    assert.match(err.message, /no_such_column/);
    assert.doesNotMatch(err.message, /\n\s+at /);
    assert.doesNotMatch(err.message, /Stack trace/);
    return true;
  });
});
