import type { NetEvent, Sample, SampleBatch } from '../../core/types.js';

/**
 * Security events as a series alert rules can watch: `security_events_5m{device, source, kind,
 * severity}` is the number of such events with an event time in the last five minutes, sent every
 * `stepMs` while the series had an event in the last hour (so a rule sees it fall back to 0). A rule
 * such as `security_events_5m{source="suricata",severity="major"} > 0` turns IDS alerts into alerts,
 * with their grouping, silences and webhooks to ticketing; `security_events_5m{kind="ban"} > 10` a
 * brute-force campaign. Per series, memory is one counter per step of the five minutes.
 * The counts are state like a processor's: `toJSON` is saved with the followed files' positions
 * (source.ts), so a killed process counts on from what the bus had taken, not from 0.
 */

export const SECURITY_COUNT_METRIC = 'security_events_5m';
const SPAN_MS = 5 * 60_000;
const KEEP_MS = 60 * 60_000;

interface Counted {
  readonly device: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Events per step, by step number (event time / stepMs). */
  readonly steps: Map<number, number>;
  /** Event time of the newest event counted. */
  last: number;
}

/** Saved counts: per series, its labels, its newest event time and [step, events] pairs. */
export type CountsJSON = Array<{ labels: Record<string, string>; last: number; steps: Array<[number, number]> }>;

const LABELS = ['device', 'source', 'kind', 'severity'] as const;
type Key = Record<(typeof LABELS)[number], string>;
const keyOf = (l: Key) => `${l.device}\u0000${l.source}\u0000${l.kind}\u0000${l.severity}`;

export class EventCounts {
  private readonly series = new Map<string, Counted>();

  constructor(private readonly stepMs = 10_000) {}

  add(e: NetEvent, now: number): void {
    // Older than the span (a file read after a restart): not recent, whatever it says.
    if (e.ts <= now - SPAN_MS || e.ts > now + SPAN_MS) return;
    const key = keyOf(e);
    let c = this.series.get(key);
    if (!c) {
      c = { device: e.device, labels: { device: e.device, source: e.source, kind: e.kind, severity: e.severity }, steps: new Map(), last: e.ts };
      this.series.set(key, c);
    }
    const step = Math.floor(e.ts / this.stepMs);
    c.steps.set(step, (c.steps.get(step) ?? 0) + 1);
    c.last = Math.max(c.last, e.ts);
  }

  toJSON(): CountsJSON {
    return [...this.series.values()].map((c) => ({ labels: { ...c.labels }, last: c.last, steps: [...c.steps] }));
  }

  /** Takes back what `toJSON` saved; anything malformed is left out (the counts then start lower, never higher). */
  restore(saved: unknown): void {
    if (!Array.isArray(saved)) return;
    for (const raw of saved as unknown[]) {
      const r = raw as Partial<CountsJSON[number]> | null;
      const labels = r?.labels;
      if (!labels || typeof labels !== 'object' || typeof r.last !== 'number' || !Array.isArray(r.steps)) continue;
      if (!LABELS.every((k) => typeof labels[k] === 'string')) continue;
      const steps = new Map<number, number>();
      for (const p of r.steps as unknown[]) {
        if (Array.isArray(p) && Number.isInteger(p[0]) && Number.isInteger(p[1]) && (p[1] as number) > 0) steps.set(p[0] as number, p[1] as number);
      }
      const l = { device: labels.device!, source: labels.source!, kind: labels.kind!, severity: labels.severity! };
      this.series.set(keyOf(l), { device: l.device, labels: l, steps, last: r.last });
    }
  }

  /** One batch per device: the count of every series seen in the last hour, at `now`. */
  batches(now: number): SampleBatch[] {
    const byDevice = new Map<string, Sample[]>();
    const oldest = Math.floor((now - SPAN_MS) / this.stepMs);
    for (const [key, c] of this.series) {
      if (c.last <= now - KEEP_MS) {
        this.series.delete(key);
        continue;
      }
      let n = 0;
      for (const [step, count] of c.steps) {
        if (step <= oldest) c.steps.delete(step);
        else n += count;
      }
      const list = byDevice.get(c.device) ?? [];
      list.push({ metric: SECURITY_COUNT_METRIC, labels: c.labels, ts: now, value: n });
      byDevice.set(c.device, list);
    }
    return [...byDevice].map(([device, samples]) => ({ device, source: 'security', ts: now, samples }));
  }

  get size(): number {
    return this.series.size;
  }
}
