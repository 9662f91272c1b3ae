import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Labels } from '../../core/types.js';
import { ThresholdOperator, ruleRef } from '../../processors/threshold.js';
import { AlertManager, fingerprint, webhookPayload, inMaintenance, type AlertChange, type Notification } from '../../processors/alerts.js';
import { compileRules } from '../../processors/rules.js';
import { parse } from 'yaml';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 27, 0, 0, 0);

/** Rules + lifecycle driven like the runner does: evaluate a sample, apply conditions, tick with event time. */
class Harness {
  readonly th: ThresholdOperator;
  am: AlertManager;
  changes: AlertChange[] = [];
  notes: Notification[] = [];
  constructor(yaml: string) {
    const rs = compileRules(parse(yaml), 'test');
    this.th = new ThresholdOperator(rs.rules);
    this.am = new AlertManager(rs.alerting);
  }
  feed(metric: string, labels: Labels, ts: number, value: number): void {
    const key = `${metric}${JSON.stringify(labels)}`;
    this.th.evaluate(ruleRef(key), { metric, labels, ts, value });
    this.am.apply(this.th.drain());
    this.tick(ts);
  }
  tick(ts: number): void {
    this.am.tick(ts);
    this.changes.push(...this.am.drainChanges());
    this.notes.push(...this.am.drainNotifications());
  }
  states(): string[] {
    return this.changes.filter((c) => c.event === 'state').map((c) => `${c.previous}->${c.state}@${(c.ts - T0) / 1000}`);
  }
  noteSummary(): string[] {
    return this.notes.map((n) => `${(n.ts - T0) / 1000}s ${n.status} ${[...n.alerts].sort((x, y) => (x.labels.alertname! + x.labels.device < y.labels.alertname! + y.labels.device ? -1 : 1)).map((a) => `${a.labels.alertname}:${a.labels.device}${a.labels.ifIndex ? '/' + a.labels.ifIndex : ''}=${a.status}`).join(',')}`);
  }
}

const ROUTE = `route: { receiver: noc, group_by: [alertname, device], group_wait: 30s, group_interval: 1m, repeat_interval: 1h }`;
const UTIL = `
groups:
  - name: if
    rules:
      - alert: HighUtil
        expr: if_in_util_pct{role="core"} > 90
        clear: 80
        for: 1m
        severity: major
        labels: { team: noc }
        annotations:
          summary: '{{ $labels.device }} at {{ $value | printf "%.1f" }}%'
`;
const IF1: Labels = { device: 'r1', ifIndex: '1', role: 'core' };

test('threshold hysteresis: fires above 90, stays active above the clear level 80, clears at or below 80', () => {
  const h = new Harness(UTIL + ROUTE);
  const seen: string[] = [];
  for (const [t, v] of [[0, 85], [1, 95], [2, 85], [3, 81], [4, 80], [5, 89], [6, 91]] as const) {
    h.th.evaluate(ruleRef('k'), { metric: 'if_in_util_pct', labels: IF1, ts: T0 + t * 1000, value: v });
    for (const c of h.th.drain()) seen.push(`${t}:${c.active ? 'on' : 'off'}`);
  }
  assert.deepEqual(seen, ['1:on', '2:on', '3:on', '4:off', '6:on']);
  // Selectors: the role matcher excludes an access port, another metric is not watched.
  h.th.evaluate(ruleRef('k2'), { metric: 'if_in_util_pct', labels: { ...IF1, role: 'access' }, ts: T0, value: 99 });
  h.th.evaluate(ruleRef('k3'), { metric: 'if_out_util_pct', labels: IF1, ts: T0, value: 99 });
  assert.deepEqual(h.th.drain(), []);
});

test('a for-duration that is not met: pending, then resolved without ever firing or notifying', () => {
  const h = new Harness(UTIL + ROUTE);
  for (let s = 0; s <= 40; s += 10) h.feed('if_in_util_pct', IF1, T0 + s * 1000, 95);
  h.feed('if_in_util_pct', IF1, T0 + 50_000, 50);
  for (let s = 60; s <= 600; s += 10) h.feed('if_in_util_pct', IF1, T0 + s * 1000, 50);
  assert.deepEqual(h.states(), ['inactive->pending@0', 'pending->resolved@50']);
  assert.deepEqual(h.notes, []);
});

test('for-duration met: pending at the first breach, firing once the condition held 1 min; startsAt is the breach', () => {
  const h = new Harness(UTIL + ROUTE);
  for (let s = 0; s <= 100; s += 10) h.feed('if_in_util_pct', IF1, T0 + s * 1000, 95);
  assert.deepEqual(h.states(), ['inactive->pending@0', 'pending->firing@60']);
  const firing = h.changes.find((c) => c.state === 'firing')!;
  assert.equal(firing.startsAt, T0);
  assert.equal(firing.annotations.summary, 'r1 at 95.0%');
  assert.deepEqual(firing.labels, { alertname: 'HighUtil', device: 'r1', ifIndex: '1', role: 'core', severity: 'major', team: 'noc' });
  assert.deepEqual(h.noteSummary(), ['90s firing HighUtil:r1/1=firing'], 'group_wait 30 s after firing');
});

test('group timing: group_wait, then group_interval batches, then repeat_interval', () => {
  const h = new Harness(`
groups:
  - name: g
    rules:
      - alert: Down
        expr: up{} < 1
route: { receiver: noc, group_by: [alertname], group_wait: 30s, group_interval: 5m, repeat_interval: 1h }
`);
  const up = (dev: string, t: number, v: number) => h.feed('up', { device: dev }, t, v);
  up('a', T0, 0); // fires at 0: group created, first flush at 30 s
  up('b', T0 + 10_000, 0); // joins within group_wait: same notification
  up('c', T0 + 40_000, 0); // after the first flush: waits for group_interval (30 s + 5 min)
  for (let t = 60_000; t <= 70 * MIN; t += 30_000) {
    up('a', T0 + t, 0);
    up('b', T0 + t, 0);
    up('c', T0 + t, 0);
  }
  assert.deepEqual(h.noteSummary(), [
    '30s firing Down:a=firing,Down:b=firing',
    '330s firing Down:a=firing,Down:b=firing,Down:c=firing',
    // nothing changed at 630 s, 930 s, ...: the next message is the repeat, 1 h after the last one
    '3930s firing Down:a=firing,Down:b=firing,Down:c=firing',
  ]);
  const payload = webhookPayload(h.notes[0]!, 'http://noc.example:8080');
  assert.equal(payload.version, '4');
  assert.deepEqual(payload.groupLabels, { alertname: 'Down' });
  assert.deepEqual(payload.commonLabels, { alertname: 'Down', severity: 'warning' });
  const alerts = payload.alerts as Record<string, unknown>[];
  assert.equal(alerts[0]!.startsAt, '2026-11-27T00:00:00.000Z');
  assert.equal(alerts[0]!.endsAt, '0001-01-01T00:00:00Z');
  assert.equal(alerts[0]!.status, 'firing');
  assert.match(String(alerts[0]!.fingerprint), /^[0-9a-f]{16}$/);
});

test('acknowledgement records who/when/comment and stops repeats; after resolving, a re-fire notifies again', () => {
  const yaml = `
groups:
  - name: g
    rules:
      - alert: Down
        expr: up < 1
${ROUTE}
`;
  const run = (ack: boolean) => {
    const h = new Harness(yaml);
    h.feed('up', { device: 'r1' }, T0, 0);
    h.feed('up', { device: 'r1' }, T0 + 40_000, 0); // notified at 30 s
    if (ack) {
      const fp = h.changes[0]!.fingerprint;
      const c = h.am.acknowledge(fp, 'alice', T0 + 45_000, 'looking at it');
      assert.deepEqual(c.ack, { by: 'alice', at: T0 + 45_000, comment: 'looking at it' });
      assert.equal(c.event, 'ack');
      h.tick(T0 + 45_000);
    }
    for (let t = MIN; t <= 130 * MIN; t += MIN) h.feed('up', { device: 'r1' }, T0 + t, 0);
    h.feed('up', { device: 'r1' }, T0 + 131 * MIN, 1); // resolves
    h.feed('up', { device: 'r1' }, T0 + 135 * MIN, 1);
    h.feed('up', { device: 'r1' }, T0 + 140 * MIN, 0); // re-fires: a new episode
    h.feed('up', { device: 'r1' }, T0 + 145 * MIN, 0);
    return h;
  };
  const without = run(false);
  assert.deepEqual(without.noteSummary(), ['30s firing Down:r1=firing', '3630s firing Down:r1=firing', '7230s firing Down:r1=firing', '7890s resolved Down:r1=resolved', '8430s firing Down:r1=firing']);
  const withAck = run(true);
  assert.deepEqual(withAck.noteSummary(), ['30s firing Down:r1=firing', '7890s resolved Down:r1=resolved', '8430s firing Down:r1=firing']);
  assert.ok(withAck.changes.some((c) => c.event === 'ack' && c.ack?.by === 'alice'));
  const refire = withAck.changes.filter((c) => c.state === 'firing').at(-1)!;
  assert.equal(refire.ack, null, 'the new episode is not acknowledged');
  assert.throws(() => withAck.am.acknowledge('0000000000000000', 'bob', T0, ''), /no such active alert/);
});

test('a silence expiring: notifications held while it lasts, sent at the next group flush after it ends', () => {
  const h = new Harness(`
groups:
  - name: g
    rules:
      - alert: Down
        expr: up < 1
${ROUTE}
silences:
  - { id: change-42, matchers: ['device="r1"'], starts_at: '2026-11-27T00:00:00Z', ends_at: '2026-11-27T00:05:00Z', created_by: alice, comment: fibre work }
`);
  for (let t = 0; t <= 8 * MIN; t += 10_000) {
    h.feed('up', { device: 'r1' }, T0 + MIN + t, 0);
    h.feed('up', { device: 'r2' }, T0 + MIN + t, 0);
  }
  assert.equal(h.changes.find((c) => c.labels.device === 'r1' && c.state === 'firing')!.suppressedBy, 'silence:change-42');
  assert.equal(h.changes.find((c) => c.labels.device === 'r2' && c.state === 'firing')!.suppressedBy, null);
  // r2 at 60 + 30 s; r1's group flushes every minute from 90 s, the first flush at or after 300 s is 330 s.
  assert.deepEqual(h.noteSummary(), ['90s firing Down:r2=firing', '330s firing Down:r1=firing']);
});

test('a maintenance window (recurring, cron in a time zone) suppresses notifications only inside it', () => {
  const yaml = `
groups:
  - name: g
    rules:
      - alert: Down
        expr: up < 1
${ROUTE}
maintenance:
  - { name: nightly, matchers: ['site="lab"'], cron: '0 2 * * *', duration: 1h, timezone: Europe/Paris }
`;
  // 02:00-03:00 Paris = 01:00-02:00 UTC in November.
  const w = compileRules(parse(yaml)).alerting.maintenance[0]!;
  assert.equal(inMaintenance(w, Date.UTC(2026, 10, 27, 0, 59)), false);
  assert.equal(inMaintenance(w, Date.UTC(2026, 10, 27, 1, 0)), true);
  assert.equal(inMaintenance(w, Date.UTC(2026, 10, 27, 1, 59)), true);
  assert.equal(inMaintenance(w, Date.UTC(2026, 10, 27, 2, 0)), false);
  const h = new Harness(yaml);
  const at = (hh: number, mm: number) => Date.UTC(2026, 10, 27, hh, mm);
  for (let m = 10; m <= 65; m += 1) {
    h.feed('up', { device: 'lab1', site: 'lab' }, at(1, 0) + m * MIN, 0); // 01:10 .. 02:05 UTC
    h.feed('up', { device: 'core1', site: 'dc' }, at(1, 0) + m * MIN, 0);
  }
  const lab = h.changes.find((c) => c.labels.device === 'lab1' && c.state === 'firing')!;
  assert.equal(lab.suppressedBy, 'maintenance:nightly');
  // core1 is notified at once; lab1 only at the first flush after the window ends at 02:00 UTC.
  assert.deepEqual(h.notes.map((n) => `${new Date(n.ts).toISOString().slice(11, 19)} ${n.alerts[0]!.labels.device}`), ['01:10:30 core1', '02:00:30 lab1']);
});

test('parent-down inhibition: an unreachable device suppresses its interface alerts, not other devices\'', () => {
  const h = new Harness(`
groups:
  - name: g
    rules:
      - alert: DeviceUnreachable
        expr: device_reachable < 1
        severity: critical
      - alert: InterfaceDown
        expr: if_oper_up < 1
        severity: major
route: { receiver: noc, group_by: [device], group_wait: 30s, group_interval: 1m, repeat_interval: 1h }
`);
  for (let t = 0; t <= 5 * MIN; t += 10_000) {
    h.feed('device_reachable', { device: 'r1' }, T0 + t, 0);
    h.feed('if_oper_up', { device: 'r1', ifIndex: '3' }, T0 + t, 0);
    h.feed('if_oper_up', { device: 'r2', ifIndex: '3' }, T0 + t, 0);
  }
  const ifR1 = h.changes.find((c) => c.rule === 'InterfaceDown' && c.labels.device === 'r1')!;
  const dev = h.changes.find((c) => c.rule === 'DeviceUnreachable')!;
  assert.equal(ifR1.suppressedBy, `inhibited:${dev.fingerprint}`);
  assert.deepEqual(h.noteSummary(), ['30s firing DeviceUnreachable:r1=firing', '30s firing InterfaceDown:r2/3=firing']);
  // The device comes back but its interface stays down: the interface alert is no longer inhibited.
  for (let t = 6 * MIN; t <= 8 * MIN; t += 10_000) {
    h.feed('device_reachable', { device: 'r1' }, T0 + t, 1);
    h.feed('if_oper_up', { device: 'r1', ifIndex: '3' }, T0 + t, 0);
  }
  assert.deepEqual(h.noteSummary().slice(2), ['390s firing DeviceUnreachable:r1=resolved,InterfaceDown:r1/3=firing']);
});

test('flapping: detected after N changes, reported as one firing alert, ended when it settles', () => {
  const h = new Harness(`
groups:
  - name: g
    rules:
      - alert: Down
        expr: up < 1
${ROUTE}
flap: { window: 10m, enter: 4, exit: 2 }
`);
  // Up/down every 20 s for 4 minutes: 12 state changes.
  for (let t = 0; t < 4 * MIN; t += 20_000) h.feed('up', { device: 'r1' }, T0 + t, (t / 20_000) % 2 === 0 ? 0 : 1);
  const flapAt = h.changes.find((c) => c.event === 'flapping')!;
  assert.equal((flapAt.ts - T0) / 1000, 60, 'the 4th change (down, up, down, up at 60 s) starts flapping');
  assert.ok(h.states().length >= 10, 'every state change is still recorded');
  // Stable and up from 4 min: changes age out of the 10 min window, flapping ends with a resolved notification.
  for (let t = 4 * MIN; t <= 20 * MIN; t += 20_000) h.feed('up', { device: 'r1' }, T0 + t, 1);
  const end = h.changes.find((c) => c.event === 'flap-end')!;
  assert.ok(end.ts > flapAt.ts);
  const sum = h.noteSummary();
  // The first flush (70 s) already sees a flapping alert: reported firing with the flapping flag,
  // then at most one message per change of the group, never a resolved/firing storm.
  assert.equal(sum[0], '70s firing Down:r1=firing');
  assert.equal(h.notes[0]!.alerts[0]!.flapping, true);
  assert.equal(h.notes[0]!.alerts[0]!.annotations.flapping, 'true');
  assert.ok(sum.length <= 3, `few notifications while flapping: ${sum.join(' | ')}`);
  assert.match(sum.at(-1)!, /resolved Down:r1=resolved/);
  assert.ok(h.notes.at(-1)!.ts >= end.ts, `the resolution is told once flapping has ended (${end.ts - T0}): ${sum.join(" | ")} ${JSON.stringify(h.changes.filter((c) => c.event !== "state").map((c) => [c.event, c.ts - T0]))}`);
});

test('fingerprint is Alertmanager\'s (FNV-1a 64 over sorted names and values): known vectors', () => {
  // prometheus/common model signature tests: the empty set is the FNV offset basis.
  assert.equal(fingerprint({}), 'cbf29ce484222325');
  assert.equal(BigInt('0x' + fingerprint({ name: 'garland, briggs', fear: 'love is not enough' })).toString(), '5799056148416392346');
});

test('alert state round-trips through a checkpoint mid-scenario', () => {
  const yaml = UTIL + ROUTE;
  const a = new Harness(yaml);
  const b = new Harness(yaml);
  for (let s = 0; s <= 600; s += 10) {
    const v = s < 300 ? 95 : s < 400 ? 70 : 95;
    a.feed('if_in_util_pct', IF1, T0 + s * 1000, v);
    if (s === 200 || s === 420) {
      b.am = AlertManager.fromJSON(compileRules(parse(yaml)).alerting, JSON.parse(JSON.stringify(b.am.toJSON())));
    }
    b.feed('if_in_util_pct', IF1, T0 + s * 1000, v);
  }
  assert.deepEqual(b.changes, a.changes);
  assert.deepEqual(b.notes, a.notes);
  assert.ok(a.notes.length >= 3);
});

test('staleness: an alert whose series stops sending resolves once the watermark passes 5 min (or 3 of its intervals) after its last sample; it fires again if the series returns', () => {
  const IF2: Labels = { device: 'r2', ifIndex: '1', role: 'core' };
  const ONCE = `
groups:
  - name: anomaly
    rules:
      - alert: AnomalyDetected
        expr: anomaly_active > 0
        severity: warning
`;
  const run = (yaml: string, restoreAt = -1) => {
    const h = new Harness(yaml + ROUTE);
    for (let s = 0; s <= 3600; s += 10) {
      if (s === restoreAt) h.am = AlertManager.fromJSON(compileRules(parse(yaml + ROUTE)).alerting, JSON.parse(JSON.stringify(h.am.toJSON())));
      // r1: every 10 s until 100 s, gone until 1200 s, then back above the threshold
      if (s <= 100 || s >= 1200) h.feed('if_in_util_pct', IF1, T0 + s * 1000, 95);
      // r3: polled every 5 min, above the threshold throughout
      if (s % 300 === 0) h.feed('if_in_util_pct', { device: 'r3', ifIndex: '1', role: 'core' }, T0 + s * 1000, 95);
      // a single anomaly_active sample (only changes are sent): no interval, never stale
      if (s === 0) h.feed('anomaly_active', { device: 'r4', of: 'if_in_bps' }, T0, 1);
      // r2 keeps event time moving
      h.feed('if_in_util_pct', IF2, T0 + s * 1000, 50);
    }
    return h;
  };
  const h = run(UTIL + ONCE.replace('groups:\n', ''));
  const of = (dev: string) => h.changes.filter((c) => c.event === 'state' && c.labels.device === dev).map((c) => `${c.previous}->${c.state}@${(c.ts - T0) / 1000}`);
  assert.deepEqual(of('r1'), ['inactive->pending@0', 'pending->firing@60', 'firing->resolved@400', 'resolved->pending@1200', 'pending->firing@1260']);
  assert.deepEqual(of('r3'), ['inactive->pending@0', 'pending->firing@300'], 'a 5-min poll is not stale between polls');
  assert.deepEqual(of('r4'), ['inactive->firing@0'], 'a change-only series never goes stale');
  assert.ok(h.noteSummary().some((n) => /resolved HighUtil:r1\/1=resolved/.test(n)), 'the resolution is notified');
  // exact across a checkpoint taken while r1 is silent
  assert.deepEqual(run(UTIL + ONCE.replace('groups:\n', ''), 250).changes, h.changes);
  // stale_after: 0 turns it off
  const off = run(UTIL + ONCE.replace('groups:\n', '') + 'stale_after: 0\n');
  assert.ok(!off.changes.some((c) => c.state === 'resolved'), 'nothing resolves');
});
