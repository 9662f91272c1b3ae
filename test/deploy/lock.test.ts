import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm ci` (the first command of the README and of CI) refuses a lock with dangling optional edges;
// `npm install` writes them for platforms the registry here does not serve. scripts/lock-prune.mjs fixes it.
test('package-lock.json has no optional dependency the lock does not hold (npm ci accepts it)', () => {
  const lock = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package-lock.json'), 'utf8')) as { packages: Record<string, { optionalDependencies?: Record<string, string> }> };
  const dangling: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      const base = path === '' ? '' : path + '/';
      if (!lock.packages[`${base}node_modules/${name}`] && !lock.packages[`node_modules/${name}`]) dangling.push(`${path} -> ${name}`);
    }
  }
  assert.deepEqual(dangling, [], 'run `node scripts/lock-prune.mjs` after npm install');
});
