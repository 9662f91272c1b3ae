/**
 * A processor instance in its own process, so tests can SIGKILL it: `node processor-child.js`
 * with NOCTUA_TEST_BROKERS, NOCTUA_TEST_PREFIX (output/changelog topic prefix) and NOCTUA_TEST_GROUP.
 * Prints "ready" once the consumer runs.
 */
import { KafkaBus } from '../../core/bus-kafka.js';
import { createLogger } from '../../core/log.js';
import { startProcessor, processorConfig } from '../../processors/runner.js';
import { DEMO_RULES } from './harness.js';

const brokers = (process.env.NOCTUA_TEST_BROKERS ?? '').split(',');
const prefix = process.env.NOCTUA_TEST_PREFIX ?? '';
const group = process.env.NOCTUA_TEST_GROUP ?? 'noctua-process';
const partitions = Number(process.env.NOCTUA_TEST_PARTITIONS ?? 3);

// warnings (failed transactions, skipped messages, the Kafka client's own) reach the test's output when it fails
const log = createLogger(process.env.NOCTUA_LOG_LEVEL ?? 'warn', 'processor');
const bus = new KafkaBus({ brokers, clientId: `child-${process.pid}`, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 200, logger: log });
const p = await startProcessor({
  log,
  bus,
  partitions,
  rules: DEMO_RULES,
  config: processorConfig({
    groupId: group,
    changelog: `${prefix}state`,
    rollupsTopic: `${prefix}rollups`,
    alertsTopic: `${prefix}alerts`,
    eventsTopic: `${prefix}events`,
    lateTopic: `${prefix}late`,
    notificationsTopic: `${prefix}notifications`,
    delay: { default: '10s' },
    restoreTimeout: '60s',
  }),
});
process.stdout.write('ready\n');
const stop = async () => {
  await p.stop();
  await bus.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
