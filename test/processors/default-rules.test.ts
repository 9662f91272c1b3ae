import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadRulesFile } from '../../processors/rules.js';

test('the shipped default rule file is valid and covers reachability, interfaces, CPU and security events', () => {
  const rules = loadRulesFile(join(import.meta.dirname, '../../../deploy/rules/default.yaml'));
  const names = rules.rules.map((r) => (r as { name?: string; alert?: string }).name ?? (r as { alert?: string }).alert);
  for (const n of ['DeviceUnreachable', 'InterfaceDown', 'InterfaceSaturatedIn', 'InterfaceErrors', 'HighCpu', 'IntrusionDetected', 'BruteForceCampaign', 'SyslogEmergency']) assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
});
