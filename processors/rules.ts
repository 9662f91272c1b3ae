import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { validate, ConfigError } from '../core/config.js';
import { M } from '../core/metrics.js';
import type { Logger } from '../core/log.js';
import { SEVERITIES, type Severity } from '../core/types.js';
import { anchoredRegex, type CmpOp, type LabelMatcher, type MatchOp, type ThresholdRule } from './threshold.js';
import { DEFAULT_ALERTING, type AlertingConfig, type MaintenanceWindow, type Silence } from './alerts.js';
import { parseDuration } from './window.js';
import { Cron } from 'croner';

/**
 * The rule file: Prometheus' rule-file shape (groups -> rules with alert, expr, for, labels,
 * annotations) plus Alertmanager's route / inhibit_rules / silences, and maintenance windows and flap
 * detection. `expr` is the PromQL subset a threshold needs: `metric{label="v",l2=~"re"} > 90`.
 *
 * Example:
 *   groups:
 *     - name: interfaces
 *       rules:
 *         - alert: InterfaceSaturated
 *           expr: if_in_util_pct{role=~"core|distribution"} > 90
 *           clear: 80            # hysteresis: resolves when <= 80
 *           for: 2m
 *           severity: major
 *           annotations:
 *             summary: '{{ $labels.device }} {{ $labels.ifName }} in {{ $value | printf "%.1f" }}%'
 *   route: { receiver: noc, group_by: [alertname, device], group_wait: 30s, group_interval: 5m, repeat_interval: 4h }
 *   inhibit_rules:
 *     - { source_matchers: ['alertname="DeviceUnreachable"'], target_matchers: ['ifIndex=~".+"'], equal: [device] }
 *   silences:
 *     - { id: change-42, matchers: ['device="core1"'], starts_at: '2026-11-27T22:00:00Z', ends_at: '2026-11-28T02:00:00Z', created_by: alice, comment: 'fibre work' }
 *   maintenance:
 *     - { name: lab-nightly, matchers: ['site="lab"'], cron: '0 2 * * *', duration: 2h, timezone: Europe/Paris }
 *   flap: { window: 1h, enter: 6, exit: 3 }
 *   stale_after: 5m      # an alert whose series stopped sending samples resolves (0 = never)
 */

const DurationT = Type.Union([Type.String(), Type.Number({ minimum: 0 })], { description: 'a duration like 30s, 5m, 1h or ms' });
const TimeT = Type.Union([Type.String(), Type.Number()], { description: 'RFC 3339 time or epoch ms' });
const MatcherListT = Type.Array(Type.String({ description: 'name="value", name!="v", name=~"re" or name!~"re"' }));

const RuleT = Type.Object(
  {
    alert: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
    expr: Type.String({ minLength: 1 }),
    clear: Type.Optional(Type.Number()),
    for: Type.Optional(DurationT),
    severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
    labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    annotations: Type.Record(Type.String(), Type.String(), { default: {} }),
  },
  { additionalProperties: false },
);

const FileT = Type.Object(
  {
    groups: Type.Array(
      Type.Object({ name: Type.String({ minLength: 1 }), rules: Type.Array(Type.Unknown(), { default: [] }) }, { additionalProperties: false }),
      { default: [] },
    ),
    route: Type.Optional(
      Type.Object(
        {
          receiver: Type.String({ default: 'default' }),
          group_by: Type.Array(Type.String(), { default: ['alertname', 'device'] }),
          group_wait: Type.Optional(DurationT),
          group_interval: Type.Optional(DurationT),
          repeat_interval: Type.Optional(DurationT),
        },
        { additionalProperties: false },
      ),
    ),
    inhibit_rules: Type.Optional(
      Type.Array(
        Type.Object(
          { source_matchers: MatcherListT, target_matchers: MatcherListT, equal: Type.Array(Type.String(), { default: [] }) },
          { additionalProperties: false },
        ),
      ),
    ),
    silences: Type.Array(
      Type.Object(
        {
          id: Type.String({ minLength: 1 }),
          matchers: MatcherListT,
          starts_at: TimeT,
          ends_at: TimeT,
          created_by: Type.String({ minLength: 1 }),
          comment: Type.String({ default: '' }),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    maintenance: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          matchers: MatcherListT,
          starts_at: Type.Optional(TimeT),
          ends_at: Type.Optional(TimeT),
          cron: Type.Optional(Type.String()),
          duration: Type.Optional(DurationT),
          timezone: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    flap: Type.Optional(
      Type.Object(
        { window: DurationT, enter: Type.Integer({ minimum: 2 }), exit: Type.Integer({ minimum: 1 }) },
        { additionalProperties: false },
      ),
    ),
    stale_after: Type.Optional(DurationT),
    external_url: Type.Optional(Type.String({ pattern: '^https?://' })),
  },
  { additionalProperties: false },
);
export type RuleFile = Static<typeof FileT>;

export interface RuleSet {
  readonly rules: ThresholdRule[];
  readonly alerting: AlertingConfig;
}

const MATCHER_RE = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*/y;

/** Parses `a="x", b=~"y.*"` (the inside of a selector's braces). */
export function parseMatchers(src: string, where: string): LabelMatcher[] {
  const out: LabelMatcher[] = [];
  let pos = 0;
  const s = src.trim();
  while (pos < s.length) {
    MATCHER_RE.lastIndex = pos;
    const m = MATCHER_RE.exec(s);
    if (!m) throw new ConfigError([`${where}: cannot parse label matcher at "${s.slice(pos)}" (expected name="value", name!="v", name=~"re" or name!~"re")`]);
    const value = JSON.parse(`"${m[3]!}"`) as string;
    const op = m[2] as MatchOp;
    if (op === '=~' || op === '!~') {
      try {
        anchoredRegex(value);
      } catch (err) {
        throw new ConfigError([`${where}: label ${m[1]} has an invalid regex ${JSON.stringify(value)}: ${(err as Error).message}`]);
      }
    }
    out.push({ name: m[1]!, op, value });
    pos = MATCHER_RE.lastIndex;
    if (pos < s.length) {
      if (s[pos] !== ',') throw new ConfigError([`${where}: expected "," between label matchers at "${s.slice(pos)}"`]);
      pos++;
    }
  }
  return out;
}

const EXPR_RE = /^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/s;

export function parseExpr(expr: string, where: string): { metric: string; matchers: LabelMatcher[]; op: CmpOp; value: number } {
  const m = EXPR_RE.exec(expr);
  if (!m) throw new ConfigError([`${where}.expr: "${expr}" is not a threshold expression like metric{label="v"} > 90`]);
  return { metric: m[1]!, matchers: m[2] ? parseMatchers(m[2], `${where}.expr`) : [], op: m[3] as CmpOp, value: Number(m[4]) };
}

function time(v: string | number, where: string): number {
  const t = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) throw new ConfigError([`${where}: "${v}" is not an RFC 3339 time or epoch ms`]);
  return t;
}

function dur(v: string | number, where: string): number {
  try {
    return parseDuration(v, where);
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
}

function matcherList(list: readonly string[], where: string): LabelMatcher[] {
  return list.flatMap((m, i) => parseMatchers(m, `${where}[${i}]`));
}

/** Validates a parsed rule document; every error names the rule (or section) and the field. */
export function compileRules(doc: unknown, where = 'rules'): RuleSet {
  const f = validate(FileT, doc, where);
  const problems: string[] = [];
  const rules: ThresholdRule[] = [];
  const names = new Set<string>();
  f.groups.forEach((g, gi) => {
    g.rules.forEach((raw, ri) => {
      const name = typeof raw === 'object' && raw !== null && typeof (raw as { alert?: unknown }).alert === 'string' ? (raw as { alert: string }).alert : '?';
      const at = `${where}.groups[${gi}].rules[${ri}] (${name})`;
      try {
        const r = validate(RuleT, raw, at);
        if (names.has(r.alert)) throw new ConfigError([`${at}.alert: duplicate alert name ${r.alert}`]);
        names.add(r.alert);
        const e = parseExpr(r.expr, at);
        const sevLabel = r.labels.severity;
        if (sevLabel !== undefined && !SEVERITIES.includes(sevLabel as Severity)) {
          throw new ConfigError([`${at}.labels.severity: "${sevLabel}" is not one of ${SEVERITIES.join(', ')}`]);
        }
        const severity = (r.severity ?? sevLabel ?? 'warning') as Severity;
        const clear = r.clear ?? e.value;
        // The clear threshold must sit on the "healthy" side of the trigger, or the alert would never resolve.
        if ((e.op === '>' || e.op === '>=') && clear > e.value) throw new ConfigError([`${at}.clear: ${clear} must be <= the threshold ${e.value} for ${e.op}`]);
        if ((e.op === '<' || e.op === '<=') && clear < e.value) throw new ConfigError([`${at}.clear: ${clear} must be >= the threshold ${e.value} for ${e.op}`]);
        const labels = { ...r.labels };
        delete labels.severity;
        rules.push({
          name: r.alert,
          group: g.name,
          metric: e.metric,
          matchers: e.matchers,
          op: e.op,
          value: e.value,
          clear,
          forMs: r.for === undefined ? 0 : dur(r.for, `${at}.for`),
          severity,
          labels,
          annotations: r.annotations,
        });
      } catch (err) {
        if (err instanceof ConfigError) problems.push(...err.problems);
        else throw err;
      }
    });
  });

  const d = DEFAULT_ALERTING;
  const guard = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else problems.push(String((err as Error).message ?? err));
      return fallback;
    }
  };
  const route = f.route
    ? {
        receiver: f.route.receiver,
        groupBy: f.route.group_by,
        groupWaitMs: guard(() => (f.route!.group_wait === undefined ? d.route.groupWaitMs : dur(f.route!.group_wait, `${where}.route.group_wait`)), 0),
        groupIntervalMs: guard(() => (f.route!.group_interval === undefined ? d.route.groupIntervalMs : dur(f.route!.group_interval, `${where}.route.group_interval`)), 1),
        repeatIntervalMs: guard(() => (f.route!.repeat_interval === undefined ? d.route.repeatIntervalMs : dur(f.route!.repeat_interval, `${where}.route.repeat_interval`)), 1),
      }
    : d.route;
  if (route.groupIntervalMs <= 0) problems.push(`${where}.route.group_interval: must be > 0`);
  const inhibitRules = f.inhibit_rules
    ? f.inhibit_rules.map((r, i) => ({
        sourceMatchers: guard(() => matcherList(r.source_matchers, `${where}.inhibit_rules[${i}].source_matchers`), []),
        targetMatchers: guard(() => matcherList(r.target_matchers, `${where}.inhibit_rules[${i}].target_matchers`), []),
        equal: r.equal,
      }))
    : d.inhibitRules;
  const silences: Silence[] = f.silences.map((s, i) => {
    const at = `${where}.silences[${i}] (${s.id})`;
    const startsAt = guard(() => time(s.starts_at, `${at}.starts_at`), 0);
    const endsAt = guard(() => time(s.ends_at, `${at}.ends_at`), 0);
    if (endsAt <= startsAt) problems.push(`${at}.ends_at: must be after starts_at`);
    const matchers = guard(() => matcherList(s.matchers, `${at}.matchers`), []);
    if (s.matchers.length === 0) problems.push(`${at}.matchers: a silence needs at least one matcher`);
    return { id: s.id, matchers, startsAt, endsAt, createdBy: s.created_by, comment: s.comment };
  });
  const maintenance: MaintenanceWindow[] = f.maintenance.map((w, i) => {
    const at = `${where}.maintenance[${i}] (${w.name})`;
    const mw: { -readonly [K in keyof MaintenanceWindow]: MaintenanceWindow[K] } = { name: w.name, matchers: guard(() => matcherList(w.matchers, `${at}.matchers`), []) };
    if (w.starts_at !== undefined) mw.startsAt = guard(() => time(w.starts_at!, `${at}.starts_at`), 0);
    if (w.ends_at !== undefined) mw.endsAt = guard(() => time(w.ends_at!, `${at}.ends_at`), 0);
    if (w.cron !== undefined) {
      if (w.duration === undefined) problems.push(`${at}.duration: a recurring (cron) maintenance window needs a duration`);
      guard(() => new Cron(w.cron!, { timezone: w.timezone ?? 'UTC', paused: true }), null);
      if (problems.length > 0 && /croner|pattern|timezone/i.test(problems[problems.length - 1]!)) problems[problems.length - 1] = `${at}.cron: ${problems[problems.length - 1]}`;
      mw.cron = w.cron;
      mw.timezone = w.timezone ?? 'UTC';
    }
    if (w.duration !== undefined) mw.durationMs = guard(() => dur(w.duration!, `${at}.duration`), 0);
    if (w.cron === undefined && w.starts_at === undefined && w.ends_at === undefined) problems.push(`${at}: needs starts_at/ends_at or cron + duration`);
    return mw;
  });
  const flap = f.flap
    ? { windowMs: guard(() => dur(f.flap!.window, `${where}.flap.window`), 1), enterChanges: f.flap.enter, exitChanges: f.flap.exit }
    : d.flap;
  if (flap.exitChanges > flap.enterChanges) problems.push(`${where}.flap.exit: must be <= flap.enter`);
  const staleAfterMs = f.stale_after === undefined ? d.staleAfterMs : guard(() => dur(f.stale_after!, `${where}.stale_after`), 0);
  if (problems.length > 0) throw new ConfigError(problems);
  return { rules, alerting: { route, inhibitRules, silences, maintenance, flap, staleAfterMs, externalUrl: f.external_url ?? d.externalUrl } };
}

export function loadRulesFile(path: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: cannot read (${(err as Error).message})`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError([`${path}: not valid YAML: ${(err as Error).message}`]);
  }
  return compileRules(doc, path);
}

export interface RuleWatcher {
  /** The rules in force (the last file that validated). */
  current(): RuleSet;
  close(): void;
}

/**
 * Loads the rule file and reloads it on change (fs.watch on the directory, so editors that replace
 * the file by rename are seen; debounced). A bad file keeps the previous rules, is logged and
 * counted (noctua_errors_total{component="rules",kind="invalid_file"}).
 */
export function watchRules(path: string, onChange: (rules: RuleSet) => void, opts: { debounceMs?: number; log?: Logger } = {}): RuleWatcher {
  let cur = loadRulesFile(path);
  let timer: NodeJS.Timeout | null = null;
  const name = basename(path);
  const reload = () => {
    timer = null;
    try {
      cur = loadRulesFile(path);
      opts.log?.info({ file: path, rules: cur.rules.length }, 'rules reloaded');
      onChange(cur);
    } catch (err) {
      M.errors.inc({ component: 'rules', kind: 'invalid_file' });
      opts.log?.error({ file: path, err: (err as Error).message }, 'rule file rejected; keeping the previous rules');
    }
  };
  let w: FSWatcher | null = watch(dirname(path), (_ev, file) => {
    if (file !== null && file !== name) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, opts.debounceMs ?? 250);
  });
  w.on('error', (err) => {
    M.errors.inc({ component: 'rules', kind: 'watch' });
    opts.log?.error({ file: path, err: err.message }, 'rule file watch failed');
  });
  return {
    current: () => cur,
    close() {
      if (timer) clearTimeout(timer);
      w?.close();
      w = null;
    },
  };
}
