import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { compileRules, loadRulesFile, parseExpr, watchRules, type RuleSet } from '../../processors/rules.js';
import { ConfigError } from '../../core/config.js';
import type { Labels } from '../../core/types.js';
import { seriesKey } from '../../core/series.js';
import { ThresholdOperator, ruleRef } from '../../processors/threshold.js';
import { registry } from '../../core/metrics.js';
import { tempDir, waitFor, sleep } from '../peers/util.js';

const GOOD = `
groups:
  - name: interfaces
    rules:
      - alert: InterfaceSaturated
        expr: 'if_in_util_pct{role=~"core|distribution", ifName!="lo"} >= 90'
        clear: 80
        for: 2m
        severity: major
        labels: { team: noc }
        annotations: { summary: '{{ $labels.device }} {{ $value | humanize }}' }
      - alert: DeviceUnreachable
        expr: device_reachable < 1
        labels: { severity: critical }
route: { receiver: noc, group_by: [device], group_wait: 10s, group_interval: 2m, repeat_interval: 3h }
maintenance:
  - { name: once, matchers: ['device="r9"'], starts_at: '2026-11-27T01:00:00Z', ends_at: '2026-11-27T02:00:00Z' }
`;

function problems(yaml: string): string[] {
  try {
    compileRules(parse(yaml), 'rules.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the rule file to be rejected');
}

test('a Prometheus-like rule file compiles into threshold rules and alerting config', () => {
  const rs = compileRules(parse(GOOD));
  assert.equal(rs.rules.length, 2);
  const r = rs.rules[0]!;
  assert.deepEqual(
    { name: r.name, metric: r.metric, op: r.op, value: r.value, clear: r.clear, forMs: r.forMs, severity: r.severity, labels: r.labels },
    { name: 'InterfaceSaturated', metric: 'if_in_util_pct', op: '>=', value: 90, clear: 80, forMs: 120_000, severity: 'major', labels: { team: 'noc' } },
  );
  assert.deepEqual(r.matchers, [{ name: 'role', op: '=~', value: 'core|distribution' }, { name: 'ifName', op: '!=', value: 'lo' }]);
  assert.equal(rs.rules[1]!.severity, 'critical', 'severity may come from labels like in Prometheus');
  assert.equal(rs.rules[1]!.clear, 1, 'no clear threshold: clears at the trigger value');
  assert.deepEqual(rs.alerting.route, { receiver: 'noc', groupBy: ['device'], groupWaitMs: 10_000, groupIntervalMs: 120_000, repeatIntervalMs: 10_800_000 });
  assert.equal(rs.alerting.maintenance[0]!.startsAt, Date.UTC(2026, 10, 27, 1));
  assert.equal(rs.alerting.inhibitRules.length, 1, 'default inhibition: unreachable device suppresses its interfaces');
  assert.equal(rs.alerting.staleAfterMs, 300_000, 'staleness as Prometheus: 5 min by default');
  assert.equal(compileRules(parse('groups: []\nstale_after: 15m')).alerting.staleAfterMs, 900_000);
});

test('errors name the rule and the field', () => {
  const bad = (rule: string) => problems(`groups:\n  - name: g\n    rules:\n      - alert: R1\n        expr: up < 1\n      - ${rule}\n`);
  assert.match(bad('{ alert: Hot, expr: "temp >> 3" }').join('\n'), /groups\[0\]\.rules\[1\] \(Hot\)\.expr: "temp >> 3" is not a threshold expression/);
  assert.match(bad('{ alert: Hot, expr: "temp > 3", for: 5 minutes }').join('\n'), /rules\[1\] \(Hot\)\.for: "5 minutes" is not a duration/);
  assert.match(bad('{ alert: Hot, expr: "temp > 3", severity: urgent }').join('\n'), /rules\[1\] \(Hot\)\.severity/);
  assert.match(bad('{ alert: Hot, expr: "temp > 3", clear: 5 }').join('\n'), /rules\[1\] \(Hot\)\.clear: 5 must be <= the threshold 3/);
  assert.match(bad('{ alert: Hot, expr: "temp{a=~\\"(\\"} > 3" }').join('\n'), /\(Hot\)\.expr: label a has an invalid regex/);
  assert.match(bad('{ alert: R1, expr: "temp > 3" }').join('\n'), /\(R1\)\.alert: duplicate alert name R1/);
  assert.match(bad('{ alert: Hot, expr: "temp > 3", threshold: 4 }').join('\n'), /\(Hot\).*threshold|\(Hot\): Unexpected property/);
  assert.match(problems('groups: []\nsilences:\n  - { id: s1, matchers: [], starts_at: "2026-11-27T02:00:00Z", ends_at: "2026-11-27T01:00:00Z", created_by: a }').join('\n'), /silences\[0\] \(s1\)\.ends_at: must be after starts_at/);
  assert.match(problems('groups: []\nmaintenance:\n  - { name: w, matchers: [\'a="b"\'], cron: "0 2 * * *" }').join('\n'), /maintenance\[0\] \(w\)\.duration: a recurring/);
  assert.match(problems('groups: []\nroute: { group_wait: soon }').join('\n'), /route\.group_wait: "soon"/);
  assert.match(problems('groups: []\nstale_after: later').join('\n'), /stale_after: "later" is not a duration/);
});

test('expression parser: selector forms and numbers', () => {
  assert.deepEqual(parseExpr('up == 0', 'x'), { metric: 'up', matchers: [], op: '==', value: 0 });
  assert.deepEqual(parseExpr('if_errors_ps{device="a\\"b"} > 1.5e3', 'x').matchers, [{ name: 'device', op: '=', value: 'a"b' }]);
  assert.equal(parseExpr('temp{} <= -4.5', 'x').value, -4.5);
});

test('hot reload: a new file replaces the rules; a bad file keeps the old ones and is counted', async () => {
  const dir = tempDir('rules');
  try {
    const file = join(dir.path, 'rules.yaml');
    writeFileSync(file, GOOD);
    const seen: RuleSet[] = [];
    const w = watchRules(file, (rs) => seen.push(rs), { debounceMs: 50 });
    try {
      assert.equal(w.current().rules.length, 2);
      // Editors save by writing a temp file and renaming it over the original: the directory watch sees it.
      writeFileSync(join(dir.path, 'rules.yaml.tmp'), GOOD.replace('>= 90', '>= 95'));
      renameSync(join(dir.path, 'rules.yaml.tmp'), file);
      await waitFor('reload', () => seen.length === 1, 5000, 20);
      assert.equal(w.current().rules[0]!.value, 95);
      const errorsBefore = await errorCount();
      writeFileSync(file, 'groups:\n  - name: g\n    rules:\n      - { alert: Broken, expr: "nope" }\n');
      await waitFor('the bad file to be counted', async () => (await errorCount()) === errorsBefore + 1, 5000, 20);
      await sleep(100);
      assert.equal(seen.length, 1, 'no reload for a bad file');
      assert.equal(w.current().rules[0]!.value, 95, 'the previous rules stay in force');
    } finally {
      w.close();
    }
  } finally {
    dir.remove();
  }
  assert.throws(() => loadRulesFile('/nonexistent/rules.yaml'), /cannot read/);
});

async function errorCount(): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'noctua_errors_total');
  return Number(m?.values.find((v) => v.labels.component === 'rules' && v.labels.kind === 'invalid_file')?.value ?? 0);
}

const UTIL_RULES = (threshold: number) => compileRules(parse(`groups:\n  - name: g\n    rules:\n      - { alert: Hot, expr: 'if_in_util_pct{role="core"} > ${threshold}', clear: ${threshold - 10} }\n      - { alert: Errs, expr: 'if_in_errors_ps > 1' }\n`)).rules;

function conditions(op: ThresholdOperator, metric: string, labels: Labels, ts: number, value: number, ref = ruleRef(seriesKey(metric, labels))): string[] {
  op.evaluate(ref, { metric, labels, ts, value });
  return op.drain().map((c) => `${c.rule.name}:${c.active ? 'on' : 'off'}`);
}

test('threshold: a rule reload applies to series whose ref already holds their rules; kept rules keep their active conditions', () => {
  const L: Labels = { device: 'r1', ifIndex: '1', role: 'core' };
  const R = ruleRef(seriesKey('if_in_util_pct', L));
  const op = new ThresholdOperator(UTIL_RULES(90));
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 1, 85, R), []);
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 2, 95, R), ['Hot:on']);
  op.setRules(UTIL_RULES(70));
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 3, 65, R), ['Hot:on'], 'still active: 65 is above the new clear level 60');
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 4, 55, R), ['Hot:off']);
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 5, 75, R), ['Hot:on'], 'the new threshold 70 applies to the cached series');
  op.setRules(UTIL_RULES(70).filter((r) => r.name !== 'Hot'));
  assert.deepEqual(conditions(op, 'if_in_util_pct', L, 6, 99, R), [], 'a removed rule no longer evaluates');
  // another operator (a restore, another partition) with the rules in another order never reads R's entry
  const other = new ThresholdOperator([...UTIL_RULES(90)].reverse());
  const R2 = ruleRef(seriesKey('if_in_util_pct', L));
  assert.deepEqual(conditions(new ThresholdOperator(UTIL_RULES(90)), 'if_in_util_pct', L, 7, 50, R2), []);
  assert.deepEqual(conditions(other, 'if_in_util_pct', L, 8, 95, R2), ['Hot:on']);
  assert.deepEqual(op.toJSON().active, {});
});

test('threshold: fresh refs per sample and refs kept per series give the same conditions, also after a checkpoint (a new operator never reads the old one\'s entries)', () => {
  const run = (fresh: boolean): string[] => {
    let op = new ThresholdOperator(UTIL_RULES(90));
    const refs = new Map<string, ReturnType<typeof ruleRef>>();
    const refOf = (metric: string, labels: Labels) => {
      const k = seriesKey(metric, labels);
      if (fresh) return ruleRef(k);
      let r = refs.get(k);
      if (!r) refs.set(k, (r = ruleRef(k)));
      return r;
    };
    const shared = Array.from({ length: 50 }, (_, i) => ({ device: `r${i % 5}`, ifIndex: String(i), role: i % 2 ? 'core' : 'edge' }));
    const out: string[] = [];
    for (let t = 0; t < 600; t++) {
      if (t === 300) op = ThresholdOperator.fromJSON(UTIL_RULES(90), JSON.parse(JSON.stringify(op.toJSON())));
      for (let i = 0; i < 50; i++) {
        const labels: Labels = fresh ? { ...shared[i]! } : shared[i]!;
        const v = 50 + 45 * Math.sin((t + i * 7) / 9);
        for (const c of conditions(op, 'if_in_util_pct', labels, t, v, refOf('if_in_util_pct', labels))) out.push(`${t}/${i}/${c}`);
        for (const c of conditions(op, 'if_in_errors_ps', labels, t, (t * i) % 3, refOf('if_in_errors_ps', labels))) out.push(`${t}/${i}/${c}`);
        conditions(op, 'if_in_discards_ps', labels, t, 1, refOf('if_in_discards_ps', labels));
      }
    }
    return out;
  };
  const a = run(false);
  const b = run(true);
  assert.ok(a.filter((x) => x.endsWith('Hot:off')).length > 100, 'conditions come and go');
  assert.ok(a.some((x) => x.startsWith('300/') && x.endsWith(':off')), 'a condition restored from the checkpoint clears');
  assert.deepEqual(b, a);
});

test('threshold: series watched by many rules, and many metrics with rules, agree with a plain evaluation of every rule', () => {
  // 40 rules on one metric (more than fit the per-series bit flags) and 70 metrics with a rule each
  // (more than the per-labels-object slots).
  const lines = [
    ...Array.from({ length: 40 }, (_, i) => `      - { alert: U${i}, expr: 'util{role=~"core|edge"} > ${i * 2.5}', clear: ${i * 2.5 - 4} }`),
    ...Array.from({ length: 70 }, (_, i) => `      - { alert: M${i}, expr: 'm${i} ${i % 2 ? '<' : '>'} 50', clear: ${i % 2 ? 55 : 45} }`),
  ];
  const rules = compileRules(parse(`groups:\n  - name: g\n    rules:\n${lines.join('\n')}\n`)).rules;
  const expected: string[] = [];
  const on = new Set<string>();
  const plain = (metric: string, labels: Labels, t: number, v: number) => {
    for (const r of rules) {
      if (r.metric !== metric || !r.matchers.every((m) => new RegExp(`^(?:${m.value})$`).test(labels[m.name] ?? ''))) continue;
      const id = `${r.name} ${seriesKey(metric, labels)}`;
      const was = on.has(id);
      const now = r.op === '>' ? v > (was ? r.clear : r.value) : v < (was ? r.clear : r.value);
      if (now) on.add(id);
      else on.delete(id);
      if (now || was) expected.push(`${t} ${r.name}:${now ? 'on' : 'off'}`);
    }
  };
  const shared = [{ device: 'a', role: 'core' }, { device: 'b', role: 'edge' }, { device: 'c', role: 'lab' }];
  for (const fresh of [false, true]) {
    const op = new ThresholdOperator(rules);
    const got: string[] = [];
    expected.length = 0;
    on.clear();
    for (let t = 0; t < 120; t++) {
      for (let d = 0; d < shared.length; d++) {
        const labels: Labels = fresh ? { ...shared[d]! } : shared[d]!;
        const v = 50 + 50 * Math.sin((t + d * 11) / 7);
        for (const metric of ['util', ...Array.from({ length: 70 }, (_, i) => `m${i}`)]) {
          plain(metric, labels, t, v);
          for (const c of conditions(op, metric, labels, t, v)) got.push(`${t} ${c}`);
        }
      }
    }
    assert.ok(expected.filter((x) => x.startsWith('U39') || x.includes(' U39:')).length > 0, 'the 40th rule of the series fires');
    assert.ok(expected.some((x) => x.includes(' M69:off')), 'the 70th metric clears');
    assert.deepEqual(got, expected, fresh ? 'fresh labels objects' : 'shared labels objects');
  }
});
