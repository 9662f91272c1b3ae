import type { Labels, NetEvent } from '../core/types.js';
import { seriesKey, SeriesCache } from '../core/series.js';
import type { Profile } from './clickhouse.js';
import { TsvBuilder, escapeTsv } from './tsv.js';

/**
 * Row shapes of noctua's tables, per schema profile (storage/migrations.ts): samples as TabSeparated
 * bytes (the hot path), series inventory and events as JSONEachRow objects (low volume, free text).
 */

/** Column lists, in the order the encoders write them. */
export const SAMPLE_COLUMNS: Record<Profile, readonly string[]> = {
  full: ['metric', 'series', 'device', 'ts', 'value'],
  legacy: ['metric', 'series', 'device', 'ts', 'ms', 'value'],
};

/** Event time range the tables can hold (DateTime starts at 1970; DateTime64(3) and our ms fit this). */
export const MIN_TS = 0;
export const MAX_TS = Date.UTC(2105, 11, 31);

export function validTs(ts: number): boolean {
  return Number.isSafeInteger(ts) && ts >= MIN_TS && ts <= MAX_TS;
}

/** One series as the sink knows it: identity plus its pre-encoded row prefix. */
export interface SeriesInfo {
  readonly id: string;
  readonly key: string;
  readonly metric: string;
  readonly device: string;
  readonly labels: Labels;
  /** `metric\tseries\tdevice\t`, escaped. */
  readonly prefix: Buffer;
  /** Sample time of the last inventory write that ClickHouse acknowledged (-1: never). */
  upsertedTs: number;
}

/**
 * Series identity with memo: a poll repeats the same series every interval, so the key text, the
 * FNV id and the row prefix are computed once per series, not once per sample. Lookups go
 * label set -> metric, so a sample costs one Map lookup once its label set is resolved
 * (once per label set per message).
 */
export class SeriesIndex {
  /** device + raw label pairs (message order) -> metric -> series. */
  private readonly sets = new Map<string, LabelSetSeries>();
  private readonly ids: SeriesCache;
  private size = 0;
  constructor(private readonly max = 1_000_000) {
    this.ids = new SeriesCache(max);
  }

  /** `{a="1",b="2"}` (or '' without labels): `metric + part` is the canonical series key. */
  static labelPart(labels: Labels): string {
    return seriesKey('', labels);
  }

  /** The series of one label set of one device; resolve once per label set, then `.get(metric)`. */
  labelSet(device: string, labels: Labels): LabelSetSeries {
    let raw = device;
    for (const k in labels) raw += '\u0000' + k + '\u0001' + labels[k];
    let set = this.sets.get(raw);
    if (set === undefined) {
      if (this.size >= this.max) {
        this.sets.clear();
        this.size = 0;
      }
      set = new LabelSetSeries(this, device, labels, SeriesIndex.labelPart(labels));
      this.sets.set(raw, set);
    }
    return set;
  }

  get(device: string, metric: string, _labelPart: string, labels: Labels): SeriesInfo {
    return this.labelSet(device, labels).get(metric);
  }

  /** @internal */
  make(device: string, metric: string, labelPart: string, labels: Labels): SeriesInfo {
    const key = metric + labelPart;
    const id = this.ids.id(key);
    this.size++;
    return {
      id,
      key,
      metric,
      device,
      labels,
      prefix: Buffer.from(`${escapeTsv(metric)}\t${id}\t${escapeTsv(device)}\t`, 'utf8'),
      upsertedTs: -1,
    };
  }
}

export class LabelSetSeries {
  private readonly byMetric = new Map<string, SeriesInfo>();
  constructor(
    private readonly index: SeriesIndex,
    readonly device: string,
    readonly labels: Labels,
    readonly labelPart: string,
  ) {}

  get(metric: string): SeriesInfo {
    let s = this.byMetric.get(metric);
    if (s === undefined) {
      s = this.index.make(this.device, metric, this.labelPart, this.labels);
      this.byMetric.set(metric, s);
    }
    return s;
  }
}

/** Appends one sample row to a TSV body in the profile's column order. */
export function writeSampleRow(out: TsvBuilder, profile: Profile, s: SeriesInfo, ts: number, value: number): void {
  out.raw(s.prefix);
  if (profile === 'full') {
    out.ts(ts);
  } else {
    const sec = Math.floor(ts / 1000);
    out.int(sec).tab().int(ts - sec * 1000);
  }
  out.tab().float(value).nl();
}

export function seriesRow(profile: Profile, s: SeriesInfo, lastSeen: number): Record<string, unknown> {
  if (profile === 'full') {
    return { series: s.id, metric: s.metric, device: s.device, labels: s.labels, key: s.key, last_seen: lastSeen };
  }
  const keys = Object.keys(s.labels).sort();
  return {
    series: s.id,
    metric: s.metric,
    device: s.device,
    label_keys: keys,
    label_values: keys.map((k) => s.labels[k]),
    key: s.key,
    last_seen: Math.floor(lastSeen / 1000),
  };
}

export function eventRow(profile: Profile, e: NetEvent): Record<string, unknown> {
  const common = { id: e.id, source: e.source, kind: e.kind, severity: e.severity, device: e.device, message: e.message, fields: JSON.stringify(e.fields) };
  if (profile === 'full') return { ...common, ts: e.ts };
  const sec = Math.floor(e.ts / 1000);
  return { ...common, ts: sec, ms: e.ts - sec * 1000 };
}
