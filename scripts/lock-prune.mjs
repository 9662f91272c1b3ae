#!/usr/bin/env node
// `npm ci` refuses a lock whose packages name optional dependencies the lock does not hold. chdb lists
// its engine for every platform as optional; the registries reachable here serve only linux-x64, so
// `npm install` writes such a lock. Run this after any `npm install` to drop those dangling edges.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
let dropped = 0;
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  const opt = entry.optionalDependencies;
  if (!opt) continue;
  for (const name of Object.keys(opt)) {
    const base = path === '' ? '' : path + '/';
    if (!lock.packages[`${base}node_modules/${name}`] && !lock.packages[`node_modules/${name}`]) {
      delete opt[name];
      dropped++;
      process.stderr.write(`lock-prune: ${path || '(root)'} -> ${name} (not in the lock)\n`);
    }
  }
}
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
process.stderr.write(`lock-prune: ${dropped} dangling optional edge(s) dropped\n`);
