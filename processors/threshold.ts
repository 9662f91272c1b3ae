import type { Labels, Sample, Severity } from '../core/types.js';

/**
 * Threshold rules: which series a rule watches (metric + Prometheus-style label matchers), when its
 * condition becomes true (operator + value) and when it becomes false again (the clear threshold,
 * hysteresis, so a value hovering around the limit does not flap the alert). Pending / for-duration
 * / firing / resolved belong to processors/alerts.ts; this operator only says "the condition of
 * rule R on series S is active (or stopped being active) at event time t with value v".
 *
 * Pure: state is the set of (rule, series) pairs whose condition is active.
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';
export interface LabelMatcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
}

export type CmpOp = '>' | '>=' | '<' | '<=' | '==' | '!=';
export const CMP_OPS: readonly CmpOp[] = ['>', '>=', '<', '<=', '==', '!='];

export interface ThresholdRule {
  /** The alert name (Prometheus `alert:`), unique in a rule file. */
  readonly name: string;
  readonly group: string;
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
  readonly op: CmpOp;
  readonly value: number;
  /** The condition stays active while `value op clear` holds; equals `value` when not set. */
  readonly clear: number;
  readonly forMs: number;
  readonly severity: Severity;
  readonly labels: Readonly<Record<string, string>>;
  /** Templates: `{{ $labels.device }}`, `{{ $value }}`, `{{ $value | printf "%.1f" }}`, `{{ $value | humanize }}`. */
  readonly annotations: Readonly<Record<string, string>>;
}

/** One evaluation result worth telling the alert lifecycle about. */
export interface Condition {
  readonly rule: ThresholdRule;
  readonly key: string;
  readonly seriesLabels: Labels;
  readonly ts: number;
  readonly value: number;
  /** True while the condition holds (sent on every evaluation), false once when it stops. */
  readonly active: boolean;
}

export function compare(op: CmpOp, a: number, b: number): boolean {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

const regexCache = new Map<string, RegExp>();
/** Prometheus anchors label regexes: `=~"eth.*"` must match the whole value. */
export function anchoredRegex(src: string): RegExp {
  let re = regexCache.get(src);
  if (!re) {
    re = new RegExp(`^(?:${src})$`);
    regexCache.set(src, re);
  }
  return re;
}

export function matchLabel(m: LabelMatcher, labels: Labels): boolean {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return anchoredRegex(m.value).test(v);
    case '!~':
      return !anchoredRegex(m.value).test(v);
  }
}

export function matchAll(ms: readonly LabelMatcher[], labels: Labels): boolean {
  for (const m of ms) if (!matchLabel(m, labels)) return false;
  return true;
}

const NO_RULES: readonly number[] = [];

export class ThresholdOperator {
  private rules: readonly ThresholdRule[] = [];
  private byMetric = new Map<string, number[]>();
  /** Rules matching each series, by series key (matchers are evaluated once per series, not per sample). */
  private matchCache = new Map<string, readonly number[]>();
  private lists = new Map<string, readonly number[]>();
  /** Active conditions: rule name -> series keys. */
  private active = new Map<string, Set<string>>();
  private out: Condition[] = [];

  constructor(rules: readonly ThresholdRule[] = []) {
    this.setRules(rules);
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  /**
   * Replaces the rule set (hot reload). Active conditions of rules that still exist under the same
   * name are kept; those of removed rules are dropped (the alert lifecycle resolves their alerts).
   */
  setRules(rules: readonly ThresholdRule[]): void {
    this.rules = rules;
    this.byMetric = new Map();
    rules.forEach((r, i) => {
      let a = this.byMetric.get(r.metric);
      if (!a) this.byMetric.set(r.metric, (a = []));
      a.push(i);
    });
    this.matchCache = new Map();
    this.lists = new Map();
    const names = new Set(rules.map((r) => r.name));
    for (const name of [...this.active.keys()]) {
      if (!names.has(name)) this.active.delete(name);
    }
  }

  private rulesFor(key: string, s: Sample): readonly number[] {
    // Most metrics have no rule at all: the metric name (short, hash cached) answers before the series key.
    if (!this.byMetric.has(s.metric)) return NO_RULES;
    let r = this.matchCache.get(key);
    if (r === undefined) {
      const cands = this.byMetric.get(s.metric);
      if (!cands) r = NO_RULES;
      else {
        const m = cands.filter((i) => matchAll(this.rules[i]!.matchers, s.labels));
        if (m.length === 0) r = NO_RULES;
        else {
          // Series share a handful of distinct rule lists: keep one array per list, not one per series.
          const sig = m.join(',');
          r = this.lists.get(sig);
          if (!r) this.lists.set(sig, (r = m));
        }
      }
      this.matchCache.set(key, r);
    }
    return r;
  }

  /** Evaluates every rule that watches this series against one sample (in event-time order per series). */
  evaluate(key: string, s: Sample): void {
    const idx = this.rulesFor(key, s);
    if (idx.length === 0) return;
    const v = s.value;
    if (!Number.isFinite(v)) return;
    for (const i of idx) {
      const rule = this.rules[i]!;
      let set = this.active.get(rule.name);
      const was = set !== undefined && set.has(key);
      const now = was ? compare(rule.op, v, rule.clear) : compare(rule.op, v, rule.value);
      if (now) {
        if (!was) {
          if (!set) this.active.set(rule.name, (set = new Set()));
          set.add(key);
        }
        this.out.push({ rule, key, seriesLabels: s.labels, ts: s.ts, value: v, active: true });
      } else if (was) {
        set!.delete(key);
        this.out.push({ rule, key, seriesLabels: s.labels, ts: s.ts, value: v, active: false });
      }
    }
  }

  drain(): Condition[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  toJSON(): { v: 1; active: Record<string, string[]> } {
    const active: Record<string, string[]> = {};
    for (const [name, set] of this.active) if (set.size > 0) active[name] = [...set];
    return { v: 1, active };
  }

  static fromJSON(rules: readonly ThresholdRule[], j: { v: 1; active: Record<string, string[]> }): ThresholdOperator {
    if (typeof j !== 'object' || j === null || j.v !== 1) throw new Error('threshold state: not a v1 checkpoint');
    const op = new ThresholdOperator(rules);
    const names = new Set(rules.map((r) => r.name));
    for (const [name, keys] of Object.entries(j.active)) if (names.has(name)) op.active.set(name, new Set(keys));
    return op;
  }
}

/** Renders an annotation template with the alert's labels and value (a safe subset of Prometheus templating). */
export function renderTemplate(tpl: string, labels: Labels, value: number): string {
  return tpl.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_all, expr: string) => {
    const [head, ...pipes] = expr.split('|').map((p) => p.trim());
    let v: string | number;
    const lm = /^(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(head ?? '');
    if (lm) v = labels[lm[1]!] ?? '';
    else if (head === '$value' || head === '.Value') v = value;
    else return `{{ ${expr} }}`;
    for (const p of pipes) {
      const pf = /^printf\s+"%\.(\d+)f"$/.exec(p);
      if (pf && typeof v === 'number') v = v.toFixed(Number(pf[1]));
      else if (p === 'humanize' && typeof v === 'number') v = humanize(v);
    }
    return String(v);
  });
}

/** Prometheus' humanize: SI prefixes, 4 significant digits. */
export function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const units = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${Number(x.toPrecision(4))}${units[i]}`;
}
