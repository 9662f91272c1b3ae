import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../peers/util.js';
import { openClickHouse, profileForVersion } from '../../storage/clickhouse.js';
import { migrate, appliedMigrations, MIGRATIONS, MigrationError, type Migration } from '../../storage/migrations.js';
import type { Config } from '../../core/config.js';

const cfg: Config['clickhouse'] = { user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 14 };

test('profileForVersion: 23.8 and later are full, older are legacy', () => {
  assert.equal(profileForVersion('18.16.1'), 'legacy');
  assert.equal(profileForVersion('23.7.9.1'), 'legacy');
  assert.equal(profileForVersion('23.8.1.1'), 'full');
  assert.equal(profileForVersion('24.1'), 'full');
  assert.equal(profileForVersion('26.7.2.1'), 'full');
});

test('embedded engine: migrations apply once, in order, with the full schema', async () => {
  const dir = tempDir('migrations');
  const ch = await openClickHouse(cfg, dir.path);
  try {
    assert.equal(ch.embedded, true);
    assert.equal(ch.profile, 'full');
    assert.match(ch.version, /^\d+\.\d+/);
    const first = await migrate(ch, { rawTtlDays: 3 });
    assert.deepEqual(first, MIGRATIONS.map((m) => m.name));
    assert.deepEqual(await migrate(ch, { rawTtlDays: 3 }), [], 'second run applies nothing');

    const cols = await (
      await ch.client.query({
        query: `SELECT table, name, type, compression_codec FROM system.columns WHERE database = 'noctua' ORDER BY table, position`,
        format: 'JSONEachRow',
      })
    ).json<{ table: string; name: string; type: string; compression_codec: string }>();
    const col = (t: string, n: string) => cols.find((c) => c.table === t && c.name === n);
    assert.equal(col('samples', 'ts')?.type, "DateTime64(3, 'UTC')");
    assert.match(col('samples', 'ts')?.compression_codec ?? '', /DoubleDelta.*ZSTD/);
    assert.match(col('samples', 'value')?.compression_codec ?? '', /Gorilla.*ZSTD/);
    assert.equal(col('samples', 'metric')?.type, 'LowCardinality(String)');
    assert.equal(col('series', 'labels')?.type, 'Map(String, String)');
    assert.ok(col('events', 'fields'));
    assert.ok(col('sink_ledger', 'last'));

    const ddl = await (await ch.client.query({ query: 'SHOW CREATE TABLE noctua.samples', format: 'TabSeparatedRaw' })).text();
    assert.match(ddl, /TTL toDateTime\(ts\) \+ toIntervalDay\(3\)/);
    assert.match(ddl, /non_replicated_deduplication_window = 10000/);
    assert.match(ddl, /ORDER BY \(metric, series, ts\)/);

    // A changed rawTtlDays reaches the existing table.
    assert.deepEqual(await migrate(ch, { rawTtlDays: 5 }), []);
    const ddl5 = await (await ch.client.query({ query: 'SHOW CREATE TABLE noctua.samples', format: 'TabSeparatedRaw' })).text();
    assert.match(ddl5, /TTL toDateTime\(ts\) \+ toIntervalDay\(5\)/);

    // Appending a migration applies just that one.
    const extra: Migration = {
      name: '0099_test_extra',
      full: ['CREATE TABLE IF NOT EXISTS {db}.extra (x UInt8) ENGINE = MergeTree ORDER BY x'],
      legacy: ['CREATE TABLE IF NOT EXISTS {db}.extra (x UInt8) ENGINE = MergeTree ORDER BY x'],
    };
    assert.deepEqual(await migrate(ch, { rawTtlDays: 3, migrations: [...MIGRATIONS, extra] }), ['0099_test_extra']);
    assert.ok((await appliedMigrations(ch)).includes('0099_test_extra'));

    // A failing migration names itself and the engine's reason, and is not recorded.
    const broken: Migration = { name: '0100_broken', full: ['CREATE TABLE {db}.broken (x NoSuchType) ENGINE = Memory'], legacy: [] };
    await assert.rejects(migrate(ch, { rawTtlDays: 3, migrations: [...MIGRATIONS, extra, broken] }), (err: Error) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /0100_broken/);
      assert.match(err.message, /NoSuchType/);
      return true;
    });
    assert.ok(!(await appliedMigrations(ch)).includes('0100_broken'));
    await assert.rejects(migrate(ch, { rawTtlDays: 3, migrations: [extra, extra] }), /listed twice/);
  } finally {
    await ch.close();
    dir.remove();
  }
});

test('embedded engine: a second process opening the same data dir gets a clear error', async () => {
  const dir = tempDir('lock');
  const ch = await openClickHouse(cfg, dir.path);
  try {
    const mod = new URL('../../storage/clickhouse.js', import.meta.url).href;
    const script = `
      const { openClickHouse } = await import(${JSON.stringify(mod)});
      try { await openClickHouse(${JSON.stringify(cfg)}, ${JSON.stringify(dir.path)}); console.log('OPENED'); }
      catch (e) { console.log('ERROR ' + e.name + ': ' + e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
    assert.doesNotMatch(r.stdout, /OPENED/);
    assert.match(r.stdout, /ERROR ClickHouseOpenError: embedded ClickHouse data directory .* is already open in another process/);
    assert.match(r.stdout, /clickhouse\.url/);
  } finally {
    await ch.close();
    dir.remove();
  }
});

test('embedded engine: per-statement settings and dedup tokens do not leak into later statements', async () => {
  const dir = tempDir('scoped');
  const ch = await openClickHouse(cfg, dir.path);
  try {
    const c = ch.client;
    await c.command({ query: 'CREATE DATABASE IF NOT EXISTS noctua' });
    await c.command({ query: 'CREATE TABLE noctua.d (x UInt32) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100' });
    await c.query({ query: 'SELECT 1', format: 'JSONEachRow', clickhouse_settings: { max_result_rows: '5' } });
    await c.insert({ table: 'noctua.d', values: [{ x: 1 }], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'A' } });
    const s = await (await c.query({ query: "SELECT getSetting('max_result_rows') AS m, getSetting('insert_deduplication_token') AS t", format: 'JSONEachRow' })).json<{ m: unknown; t: string }>();
    assert.deepEqual(s.map((r) => [Number(r.m), r.t]), [[0, '']]);
    await ch.insertRows('noctua.d', [{ x: 2 }], { insert_deduplication_token: 'B' });
    await ch.insertRows('noctua.d', [{ x: 3 }], { insert_deduplication_token: 'B' }); // same token: deduplicated
    await ch.insertRows('noctua.d', [{ x: 4 }]);
    await ch.insertTsv('noctua.d', ['x'], Buffer.from('5\n'), { insert_deduplication_token: 'C' });
    await ch.insertTsv('noctua.d', ['x'], Buffer.from('6\n'), { insert_deduplication_token: 'C' });
    const xs = await (await c.query({ query: 'SELECT x FROM noctua.d ORDER BY x', format: 'JSONEachRow' })).json<{ x: number }>();
    assert.deepEqual(xs.map((r) => r.x), [1, 2, 4, 5]);
    await assert.rejects(c.query({ query: 'SELECT 1', clickhouse_settings: { readonly: '1' } }), /readonly cannot be a per-statement setting/);
  } finally {
    await ch.close();
    dir.remove();
  }
});
