import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLinux } from '../../../ingest/ssh/linux.js';
import { parseSshConfig } from '../../../ingest/ssh/config.js';

const OUT = `@@uptime
12345.67 24000.00
@@loadavg
0.52 0.31 0.25 1/234 5678
@@meminfo
MemTotal:       16384000 kB
MemAvailable:    8192000 kB
SwapTotal:             0 kB
@@stat
cpu  100 0 50 800 50 0 0 0 0 0
@@netdev
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0
  eth0: 5000 50 1 2 0 0 0 0 7000 70 3 4 0 0 0 0
  tun0: garbage here
  ghost: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0
@@sys
/sys/class/net/lo/ifindex:1
/sys/class/net/lo/operstate:unknown
/sys/class/net/lo/flags:0x9
/sys/class/net/eth0/ifindex:2
/sys/class/net/eth0/operstate:down
/sys/class/net/eth0/flags:0x1002
/sys/class/net/eth0/speed:1000
@@end
`;

test('a Linux host as SNMP would give it: counters, status, speed, memory, load, uptime; CPU from two polls; garbage named, the rest kept', () => {
  const p = parseLinux(OUT, 'srv-1', { site: 'lab' }, 1000, null);
  const v = (metric: string, ifName?: string) => p.samples.find((s) => s.metric === metric && (!ifName || s.labels.ifName === ifName))?.value;
  assert.deepEqual([v('sysUpTime'), v('memTotalReal'), v('memAvailReal'), v('memTotalSwap')], [1234567, 16384000, 8192000, 0]);
  assert.deepEqual(p.samples.filter((s) => s.metric === 'laLoadInt').map((s) => s.value), [52, 31, 25]);
  assert.deepEqual([v('ifHCInOctets', 'eth0'), v('ifHCOutOctets', 'eth0'), v('ifInErrors', 'eth0'), v('ifInDiscards', 'eth0'), v('ifOutErrors', 'eth0'), v('ifOutDiscards', 'eth0')], [5000, 7000, 1, 2, 3, 4]);
  assert.deepEqual([v('ifOperStatus', 'lo'), v('ifOperStatus', 'eth0'), v('ifAdminStatus', 'eth0'), v('ifHighSpeed', 'eth0'), v('ifHighSpeed', 'lo')], [1, 2, 2, 1000, undefined]);
  assert.equal(p.samples.find((s) => s.metric === 'ifHCInOctets' && s.labels.ifName === 'eth0')!.labels.ifIndex, '2');
  assert.equal(p.samples[0]!.labels.site, 'lab');
  assert.equal(v('hrProcessorLoad'), undefined, 'one poll cannot say the CPU load');
  assert.deepEqual(p.problems, ['interface tun0: unreadable counters', 'interface ghost: no ifindex']);
  const next = parseLinux(OUT.replace('cpu  100 0 50 800 50', 'cpu  160 0 70 880 60'), 'srv-1', {}, 2000, p.cpu);
  assert.equal(next.samples.find((s) => s.metric === 'hrProcessorLoad')!.value, 47, '80 busy of 170 jiffies');
  // Cut short, or not Linux at all: what could be read, and what could not.
  const cut = parseLinux(OUT.slice(0, OUT.indexOf('@@stat')), 'srv-1', {}, 1000, null);
  assert.ok(cut.problems.includes('output cut short (no @@end)') && cut.problems.includes('no interfaces'));
  assert.equal(cut.samples.find((s) => s.metric === 'memTotalReal')!.value, 16384000);
  assert.deepEqual(parseLinux('% Invalid input detected at marker', 'r', {}, 0, null).samples, []);
});

test('ssh config: every target needs a user and a key or password; a key that cannot be read is named', () => {
  assert.throws(() => parseSshConfig({ targets: [{ address: '10.0.0.1' }, { address: '10.0.0.2', user: 'noc', privateKeyFile: '/nonexistent/key' }] }), (err: Error & { problems?: string[] }) => {
    assert.deepEqual(err.problems, [
      'config.ssh.targets.0: 10.0.0.1 needs a user (in the target or in defaults)',
      'config.ssh.targets.0: 10.0.0.1 needs privateKeyFile or password (in the target or in defaults)',
      'config.ssh.targets.1.privateKeyFile: cannot read /nonexistent/key: ENOENT',
    ]);
    return true;
  });
  const { targets } = parseSshConfig({ defaults: { user: 'noc', password: 's3cret', intervalMs: 30_000 }, targets: [{ address: '10.0.0.1', name: 'srv-1' }] });
  assert.deepEqual([targets[0]!.id, targets[0]!.device, targets[0]!.intervalMs, targets[0]!.port], ['10.0.0.1:22', 'srv-1', 30_000, 22]);
});
