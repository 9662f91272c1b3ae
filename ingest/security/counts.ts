import type { NetEvent, Sample, SampleBatch } from '../../core/types.js';

/**
 * Security events as a series alert rules can watch: `security_events_5m{device, source, kind,
 * severity}` is the number of such events with an event time in the last five minutes, sent every
 * `stepMs` while the series had an event in the last hour (so a rule sees it fall back to 0). A rule
 * such as `security_events_5m{source="suricata",severity="major"} > 0` turns IDS alerts into alerts,
 * with their grouping, silences and webhooks to ticketing; `security_events_5m{kind="ban"} > 10` a
 * brute-force campaign. Per series, memory is one counter per step of the five minutes.
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

export class EventCounts {
  private readonly series = new Map<string, Counted>();

  constructor(private readonly stepMs = 10_000) {}

  add(e: NetEvent, now: number): void {
    // Older than the span (a file read after a restart): not recent, whatever it says.
    if (e.ts <= now - SPAN_MS || e.ts > now + SPAN_MS) return;
    const key = `${e.device}\u0000${e.source}\u0000${e.kind}\u0000${e.severity}`;
    let c = this.series.get(key);
    if (!c) {
      c = { device: e.device, labels: { device: e.device, source: e.source, kind: e.kind, severity: e.severity }, steps: new Map(), last: e.ts };
      this.series.set(key, c);
    }
    const step = Math.floor(e.ts / this.stepMs);
    c.steps.set(step, (c.steps.get(step) ?? 0) + 1);
    c.last = Math.max(c.last, e.ts);
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
