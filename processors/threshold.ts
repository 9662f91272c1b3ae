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

/** Comparison operators as small integers, so the per-sample loop switches on a number. */
const OP_CODE: Readonly<Record<CmpOp, number>> = { '>': 0, '>=': 1, '<': 2, '<=': 3, '==': 4, '!=': 5 };

function cmp(op: number, a: number, b: number): boolean {
  switch (op) {
    case 0:
      return a > b;
    case 1:
      return a >= b;
    case 2:
      return a < b;
    case 3:
      return a <= b;
    case 4:
      return a === b;
    default:
      return a !== b;
  }
}

/**
 * The rules watching one series (indices into the rule set, one array shared by every series with
 * the same list) and which of their conditions are active on it, by position in `rules`: bits of a
 * small integer (no memory beyond the entry), or flags in `wide` for the rare series watched by more
 * than NARROW rules.
 */
interface SeriesRules {
  readonly rules: readonly number[];
  bits: number;
  readonly wide: Uint8Array | null;
}

/** The rules of one metric. */
interface MetricRules {
  readonly cands: number[];
}

/** Flags that fit the bits of a small integer (V8 keeps 31-bit signed integers unboxed). */
const NARROW = 30;

/**
 * A series as the operator sees it: its key, and a place where the operator keeps the series' rule
 * entry between samples (the pipeline's SeriesRef, one per series), so a sample finds its rules
 * without hashing its key.
 */
export interface RuleRef {
  readonly key: string;
  rules: unknown;
  rulesGen: number;
}

/** A fresh RuleRef for a series key (callers without a SeriesRef). */
export function ruleRef(key: string): RuleRef {
  return { key, rules: undefined, rulesGen: -1 };
}

/** Rule-set generations, unique across operators: a ref filled by one operator (or rule set) is never read by another. */
let generations = 0;

const NO_RULES: SeriesRules = Object.freeze({ rules: Object.freeze([]) as readonly number[], bits: 0, wide: null }) as SeriesRules;

function setFlag(e: SeriesRules, j: number, on: boolean): void {
  if (e.wide !== null) e.wide[j] = on ? 1 : 0;
  else if (on) e.bits |= 1 << j;
  else e.bits &= ~(1 << j);
}

export class ThresholdOperator {
  private rules: readonly ThresholdRule[] = [];
  // The rules' comparisons unpacked by rule index: the per-sample loop reads no rule object.
  private ops = new Int8Array(0);
  private values = new Float64Array(0);
  private clears = new Float64Array(0);
  private byMetric = new Map<string, MetricRules>();
  private gen = 0;
  /** Rules matching each series, by series key (matchers are evaluated once per series, not per sample). */
  private matchCache = new Map<string, SeriesRules>();
  private lists = new Map<string, readonly number[]>();
  /**
   * Active conditions: rule name -> series keys. The source of truth for checkpoints and rule reloads;
   * the per-series flags in matchCache mirror it and are rebuilt from it when the rules change.
   */
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
    this.ops = new Int8Array(rules.length);
    this.values = new Float64Array(rules.length);
    this.clears = new Float64Array(rules.length);
    this.byMetric = new Map();
    this.gen = ++generations;
    rules.forEach((r, i) => {
      this.ops[i] = OP_CODE[r.op];
      this.values[i] = r.value;
      this.clears[i] = r.clear;
      let m = this.byMetric.get(r.metric);
      if (!m) this.byMetric.set(r.metric, (m = { cands: [] }));
      m.cands.push(i);
    });
    this.matchCache = new Map();
    this.lists = new Map();
    const names = new Set(rules.map((r) => r.name));
    for (const name of [...this.active.keys()]) {
      if (!names.has(name)) this.active.delete(name);
    }
  }

  /** First sample of a series since the rules were set: match its labels, pick up its active conditions. */
  private match(key: string, s: Sample, cands: readonly number[]): SeriesRules {
    let e = NO_RULES;
    const m = cands.filter((i) => matchAll(this.rules[i]!.matchers, s.labels));
    if (m.length > 0) {
      // Series share a handful of distinct rule lists: keep one array per list, not one per series.
      const sig = m.join(',');
      let list = this.lists.get(sig);
      if (!list) this.lists.set(sig, (list = m));
      e = { rules: list, bits: 0, wide: list.length > NARROW ? new Uint8Array(list.length) : null };
      for (let j = 0; j < list.length; j++) {
        if (this.active.get(this.rules[list[j]!]!.name)?.has(key)) setFlag(e, j, true);
      }
    }
    this.matchCache.set(key, e);
    return e;
  }

  /**
   * Evaluates every rule that watches this series against one sample (in event-time order per series).
   * `ref.key` is the series key of (s.metric, s.labels) (processors/window SeriesKeys).
   */
  evaluate(ref: RuleRef, s: Sample): void {
    // Most metrics have no rule at all: the metric name (short, hash cached) answers first.
    const m = this.byMetric.get(s.metric);
    if (m === undefined) return;
    const key = ref.key;
    let e: SeriesRules;
    if (ref.rulesGen === this.gen) e = ref.rules as SeriesRules;
    else {
      e = this.matchCache.get(key) ?? this.match(key, s, m.cands);
      ref.rules = e;
      ref.rulesGen = this.gen;
    }
    const idx = e.rules;
    const n = idx.length;
    if (n === 0) return;
    const v = s.value;
    if (!Number.isFinite(v)) return;
    const ops = this.ops;
    const bits = e.bits;
    const wide = e.wide;
    if (bits === 0 && wide === null) {
      // Nothing active on this series (the usual case): only the trigger thresholds matter.
      const values = this.values;
      for (let j = 0; j < n; j++) {
        const i = idx[j]!;
        if (cmp(ops[i]!, v, values[i]!)) this.change(e, j, key, s, true);
      }
      return;
    }
    for (let j = 0; j < n; j++) {
      const i = idx[j]!;
      if (wide === null ? ((bits >>> j) & 1) === 1 : wide[j] === 1) {
        if (cmp(ops[i]!, v, this.clears[i]!)) this.out.push({ rule: this.rules[i]!, key, seriesLabels: s.labels, ts: s.ts, value: v, active: true });
        else this.change(e, j, key, s, false);
      } else if (cmp(ops[i]!, v, this.values[i]!)) this.change(e, j, key, s, true);
    }
  }

  /** The condition of the j-th rule of series `key` starts (active) or stops holding. */
  private change(e: SeriesRules, j: number, key: string, s: Sample, active: boolean): void {
    const rule = this.rules[e.rules[j]!]!;
    let set = this.active.get(rule.name);
    setFlag(e, j, active);
    if (active) {
      if (!set) this.active.set(rule.name, (set = new Set()));
      set.add(key);
    } else set?.delete(key);
    this.out.push({ rule, key, seriesLabels: s.labels, ts: s.ts, value: s.value, active });
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
