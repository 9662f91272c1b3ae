import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { startRuntime } from '../../cli/runtime.js';
import { freePort, tempDir } from '../peers/util.js';

test('an API port another process holds: a start that says which setting to change, and leaves its data directory free for the next start', { timeout: 120_000 }, async () => {
  const dir = tempDir('port-in-use');
  const port = await freePort();
  const other = createServer().listen(port, '127.0.0.1');
  await new Promise((r) => other.once('listening', r));
  try {
    const cfg = (p: number) => loadConfig({ env: {}, overrides: { dataDir: dir.path, api: { port: p, token: 'port-test-token-0123456789' }, demo: { devices: 2, interfaces: 1, backfillMs: 0 }, log: { level: 'warn' } } });
    await assert.rejects(startRuntime(['poll', 'process', 'sink', 'serve'], cfg(port), createLogger('silent')), /the API cannot listen on 127\.0\.0\.1:\d+: another process .* NOCTUA_API__PORT/);
    // the failed start closed what it had opened (the embedded engine owns its directory per process)
    const rt = await startRuntime(['poll', 'process', 'sink', 'serve'], cfg(await freePort()), createLogger('silent'));
    await rt.stop();
  } finally {
    other.close();
    dir.remove();
  }
});
