#!/usr/bin/env node
// Runs every suite with node's test runner: fast unit tests first, then peer tests (real Kafka,
// ClickHouse, snmpd, ...) one file at a time because they start and stop processes and ports.
// Peers are provisioned first (apt-get, Maven), so `npm test` works on a fresh machine.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionApt, provisionGns3, provisionKafka } from './provision.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const all = walk(join(root, 'dist/test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const peer = all.filter((f) => f.endsWith('.peer.test.js'));
const unit = all.filter((f) => !f.endsWith('.peer.test.js'));

if (!unitOnly && peer.length > 0) {
  provisionApt();
  provisionKafka();
  provisionGns3();
}

function run(files, concurrency) {
  if (files.length === 0) return 0;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, NOCTUA_LOG_LEVEL: process.env.NOCTUA_LOG_LEVEL ?? 'warn' },
  });
  return r.status ?? 1;
}

const started = Date.now();
let status = run(unit, 2);
if (!unitOnly) status = run(peer, 1) || status;
process.stderr.write(`[test] ${unit.length} unit files, ${unitOnly ? 0 : peer.length} peer files in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
process.exit(status);
