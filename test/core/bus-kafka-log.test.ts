import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { logCreator } from '../../core/bus-kafka.js';
import type { Logger } from '../../core/log.js';

const { logLevel } = kafkajs;

test('a kafkajs warning repeated through a broker outage is written once per interval, with how many were folded', () => {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
  const log = { warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Logger;
  let clock = 0;
  const entry = logCreator(log, 30_000, () => clock)();
  const seedDown = (t: number) => {
    clock = t;
    entry({ namespace: 'BrokerPool', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: '', logger: 'kafkajs', message: 'Failed to connect to seed broker, trying another broker from the list', retryCount: 1 } });
  };
  // A 65-s outage with a retry every second.
  for (let t = 0; t < 65_000; t += 1000) seedDown(t);
  const warns = lines.filter((l) => l.level === 'warn');
  assert.deepEqual(warns.map((w) => w.obj.repeated), [undefined, 29, 29], 'the first, then one per 30 s counting the folded ones');
  assert.equal(lines.filter((l) => l.level === 'debug').length, 62, 'the folded ones stay at debug level');
  // A different warning is not folded into the first.
  clock = 65_500;
  entry({ namespace: 'Consumer', level: logLevel.WARN, label: 'WARN', log: { timestamp: '', logger: 'kafkajs', message: 'The group is rebalancing, re-joining' } });
  assert.equal(lines.at(-1)!.level, 'warn');
});
