import type { Labels, Sample } from '../../core/types.js';

/**
 * What a Linux host says about itself over one SSH exec, as the samples SNMP would give for it (the
 * same metric names as IF-MIB, HOST-RESOURCES and UCD-SNMP), so rates, rollups, alert rules and the
 * dashboard treat an SSH-polled server and an SNMP-polled router alike.
 */

/** One exec: each file after a marker line; `grep -H` names the interface of each /sys value. */
export const LINUX_COMMAND = [
  'export LC_ALL=C',
  'echo @@uptime; cat /proc/uptime',
  'echo @@loadavg; cat /proc/loadavg',
  'echo @@meminfo; cat /proc/meminfo',
  'echo @@stat; head -1 /proc/stat',
  'echo @@netdev; cat /proc/net/dev',
  'echo @@sys; grep -sH . /sys/class/net/*/ifindex /sys/class/net/*/operstate /sys/class/net/*/flags /sys/class/net/*/speed',
  'echo @@end',
].join('; ');

/** CPU jiffies of the previous poll (busy, total): CPU load is their difference between two polls. */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

export interface LinuxPoll {
  readonly samples: Sample[];
  readonly cpu: CpuTimes | null;
  /** Parts of the output that did not read as expected (the rest is kept). */
  readonly problems: string[];
}

const OPER: Readonly<Record<string, number>> = { up: 1, down: 2, testing: 3, unknown: 4, dormant: 5, notpresent: 6, lowerlayerdown: 7 };

export function parseLinux(out: string, device: string, base: Labels, ts: number, previous: CpuTimes | null): LinuxPoll {
  const sections = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of out.split('\n')) {
    const m = /^@@(\w+)$/.exec(line.trim());
    if (m) {
      current = [];
      sections.set(m[1]!, current);
    } else if (current) {
      current.push(line);
    }
  }
  const problems: string[] = [];
  if (!sections.has('end')) problems.push('output cut short (no @@end)');
  const samples: Sample[] = [];
  const labels: Labels = { ...base, device };
  const put = (metric: string, value: number, l: Labels = labels) => {
    if (Number.isFinite(value)) samples.push({ metric, labels: l, ts, value });
  };

  const uptime = Number((sections.get('uptime')?.[0] ?? '').split(/\s+/)[0]);
  if (Number.isFinite(uptime) && uptime > 0) put('sysUpTime', Math.round(uptime * 100));
  else problems.push('no uptime');

  const load = (sections.get('loadavg')?.[0] ?? '').split(/\s+/).slice(0, 3).map(Number);
  if (load.length === 3 && load.every(Number.isFinite)) ['1', '5', '15'].forEach((la, i) => put('laLoadInt', Math.round(load[i]! * 100), { ...labels, la }));
  else problems.push('no load average');

  const mem = new Map<string, number>();
  for (const l of sections.get('meminfo') ?? []) {
    const m = /^(\w+):\s+(\d+)(?: kB)?$/.exec(l.trim());
    if (m) mem.set(m[1]!, Number(m[2]));
  }
  const memMap: Array<[string, string]> = [['memTotalReal', 'MemTotal'], ['memAvailReal', 'MemAvailable'], ['memTotalSwap', 'SwapTotal'], ['memAvailSwap', 'SwapFree'], ['memBuffer', 'Buffers'], ['memCached', 'Cached']];
  for (const [metric, key] of memMap) if (mem.has(key)) put(metric, mem.get(key)!);
  if (!mem.has('MemTotal')) problems.push('no meminfo');

  let cpu: CpuTimes | null = null;
  const stat = /^cpu\s+(.+)$/.exec((sections.get('stat')?.[0] ?? '').trim());
  if (stat) {
    const f = stat[1]!.split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    const total = f.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    cpu = { busy: total - idle, total };
    if (previous && total > previous.total && cpu.busy >= previous.busy) {
      put('hrProcessorLoad', Math.round((100 * (cpu.busy - previous.busy)) / (total - previous.total)), { ...labels, hrDeviceIndex: '0' });
    }
  } else {
    problems.push('no /proc/stat cpu line');
  }

  // /sys: ifindex, operstate, flags and speed per interface name.
  const sys = new Map<string, Record<string, string>>();
  for (const l of sections.get('sys') ?? []) {
    const m = /^\/sys\/class\/net\/([^/]+)\/(ifindex|operstate|flags|speed):(.*)$/.exec(l.trim());
    if (!m) continue;
    const e = sys.get(m[1]!) ?? {};
    e[m[2]!] = m[3]!;
    sys.set(m[1]!, e);
  }
  let interfaces = 0;
  for (const l of sections.get('netdev') ?? []) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(l);
    if (!m || m[1] === 'face') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 16 || !f.every((x) => Number.isFinite(x) && x >= 0)) {
      problems.push(`interface ${m[1]}: unreadable counters`);
      continue;
    }
    const name = m[1]!;
    const s = sys.get(name) ?? {};
    const ifIndex = /^\d+$/.test(s.ifindex ?? '') ? s.ifindex! : undefined;
    if (!ifIndex) {
      problems.push(`interface ${name}: no ifindex`);
      continue;
    }
    interfaces++;
    const il: Labels = { ...labels, ifIndex, ifName: name };
    // rx: bytes packets errs drop fifo frame compressed multicast | tx: bytes packets errs drop ...
    put('ifHCInOctets', f[0]!, il);
    put('ifHCInUcastPkts', f[1]!, il);
    put('ifInErrors', f[2]!, il);
    put('ifInDiscards', f[3]!, il);
    put('ifHCOutOctets', f[8]!, il);
    put('ifHCOutUcastPkts', f[9]!, il);
    put('ifOutErrors', f[10]!, il);
    put('ifOutDiscards', f[11]!, il);
    const flags = Number.parseInt(s.flags ?? '', 16);
    const adminUp = Number.isFinite(flags) ? (flags & 0x1) === 1 : undefined;
    if (adminUp !== undefined) put('ifAdminStatus', adminUp ? 1 : 2, il);
    // 'unknown' is what Linux says of a loopback or a tunnel that works: up when it is enabled.
    const oper = OPER[s.operstate ?? ''];
    if (oper !== undefined) put('ifOperStatus', oper === 4 && adminUp ? 1 : oper, il);
    const speed = Number(s.speed);
    if (Number.isFinite(speed) && speed > 0) put('ifHighSpeed', speed, il);
  }
  if (interfaces === 0) problems.push('no interfaces');
  return { samples, cpu, problems };
}
