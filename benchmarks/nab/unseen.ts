/**
 * Labelled series of kinds the shipped NAB files do not hold, for a score on data the detector was
 * not tuned on. The NAB files that are not shipped stay unseen; these corpora stand in for "data of
 * another kind" with a reference measured on the same series: ARTime exactly as NAB ran it (the
 * configuration of ours that reproduces its published results: the whole file's range given,
 * unbounded memory, no extra rules).
 *
 * Written from what such series do in general, before any detector ran on them, and not changed
 * afterwards (a generator changed to please the detector would make this another training set). One
 * rule was written after them: the road corpus showed both detectors blind to a stuck sensor, and
 * the stuck-series rule (processors/anomaly/flatline.ts) followed. Counting the silence watch
 * (silence.ts) in the score was decided with all three in view (mentions gained, the others did not
 * move), the log scale for counts (artime.ts, logCounts) with mentions and requests in view (both
 * gained), and its knee (countKnee) with all three in view (mentions held, requests lost 0.8, road
 * did not move; chosen for the NOC bench's bursty counts), so none of those three is untouched any more;
 * the generators themselves never changed:
 *
 * - `mentions`: counts of a topic's mentions per 5 minutes, 40-55 days. A daily rhythm with a
 *   quieter weekend, over-dispersed counts, a level that drifts from week to week, and the topic's
 *   ordinary flurries (1.3-4x, a few a day, not labelled). Labelled: news bursts (4-40x, decaying
 *   over 30 min to 6 h), surges (2-4x for 6-36 h) and collection gaps (near zero for 1-6 h).
 * - `road`: road sensors (speed, occupancy, travel time) every 5 minutes with gaps in the feed,
 *   7-12 days. Weekday rush hours whose depth varies day to day, wet days, ordinary slowdowns (not
 *   labelled). Labelled: incident congestion at any hour (30 min to 3 h), a stuck sensor (a constant
 *   reading for 1-12 h) and a burst of absurd readings (2-4 points).
 *
 * - `requests`: a web service's requests per 5 minutes, 30-50 days, written later than the two above
 *   (and before any detector ran on it, to check a change made while looking at `mentions`). Daily
 *   and weekly rhythm, over-dispersed counts, growth over the weeks, ordinary campaign days (1.3-2x
 *   for a day, not labelled) and short bumps. Labelled: outages (5-20% of the usual for 15 min to
 *   2 h), flash crowds (3-20x, decaying over 15 min to 3 h) and bot floods (+2-5x the usual, flat, for
 *   2-12 h).
 * - `latency` and `sessions`, written later still, after every choice above, and before any detector
 *   ran on them: the two kinds no choice has looked at.
 *   - `latency`: a WAN path's round-trip time every 5 minutes, 20-40 days. A propagation floor
 *     (2-150 ms) that the samples never go below, busy-hour queueing on top (lighter at weekends),
 *     right-skewed jitter and single samples far up (a probe lost and retried; not labelled).
 *     Labelled: reroutes (the floor 1.3-2.5x for 2-24 h), congestion (queueing 1-5x the floor, and
 *     far noisier, for 30 min to 3 h) and a degrading link (the floor ramping to 1.5-3x over 3-12 h,
 *     then fixed).
 *   - `sessions`: a VPN concentrator's concurrent sessions every 5 minutes, 28-42 days. Business
 *     hours on weekdays, a low night and weekend, holidays at the weekend's level (not labelled), a
 *     slowly wandering load. Labelled: mass disconnects (to 0-20%, clients coming back over
 *     15 min-1 h), session leaks (stale sessions piling up by 0.5-2x the peak over 6-24 h, then
 *     cleared) and a licence cap (the peak held flat at 60-85% of the usual for 12-24 h; its onset is
 *     the first capped point).
 *
 * Windows follow NAB's rule: 10% of the file's length shared among its anomalies, centred on each.
 */
import type { DataFile, WindowMap } from './corpus.js';
import { scoreCorpus, PROFILE_NAMES, type FileInput } from './scorer.js';
import { detectSeries, publishedArtimeParams } from './detect.js';
import { rng } from '../../processors/anomaly/learned.js';
import { gauss, gamma, poisson, between, logBetween, type Uniform } from '../random.js';

export interface Corpus {
  readonly files: DataFile[];
  readonly windows: WindowMap;
  /** What each labelled anomaly is, per file (for per-kind tallies). */
  readonly kinds: Record<string, string[]>;
}

const STEP = 300_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 2, 3);

export const UNSEEN_KINDS = ['mentions', 'road', 'requests', 'latency', 'sessions'] as const;
export type UnseenKind = (typeof UNSEEN_KINDS)[number];

export function unseenCorpus(kind: UnseenKind, seed: number, files: number): Corpus {
  const out: Corpus = { files: [], windows: {}, kinds: {} };
  for (let f = 0; f < files; f++) {
    const r = rng(seed * 7919 + f * 104_729 + (kind === 'road' ? 1 : 0));
    const one = GENERATORS[kind](r, f);
    const key = `${kind}/${one.name}${f}.csv`;
    out.files.push({ key, timestamps: one.timestamps, values: one.values });
    out.windows[key] = nabWindows(one.timestamps, one.onsets);
    out.kinds[key] = one.labels;
  }
  return out;
}

const GENERATORS: Readonly<Record<UnseenKind, (r: Uniform, f: number) => Generated>> = {
  mentions: (r) => mentions(r),
  road: (r, f) => road(r, f),
  requests: (r) => requests(r),
  latency: (r) => latency(r),
  sessions: (r) => sessions(r),
};

interface Generated {
  name: string;
  timestamps: number[];
  values: number[];
  /** Point index of each labelled anomaly's first point, ascending. */
  onsets: number[];
  labels: string[];
}

/** NAB's windows: 10% of the file's length shared among its anomalies, centred on each onset. */
function nabWindows(ts: readonly number[], onsets: readonly number[]): Array<[number, number]> {
  if (onsets.length === 0) return [];
  const width = Math.floor((0.1 * ts.length) / onsets.length);
  return onsets.map((i) => [ts[Math.max(0, i - Math.floor(width / 2))]!, ts[Math.min(ts.length - 1, i + Math.ceil(width / 2))]!]);
}

/** `count` onsets after NAB's probation (15%, at most 750 points) and a day of margin, at least `gap` apart. */
function placeOnsets(n: number, count: number, gap: number, r: Uniform): number[] {
  const first = Math.min(Math.floor(0.15 * n), 750) + 288;
  const span = (n - first - gap) / count;
  const out: number[] = [];
  for (let a = 0; a < count; a++) out.push(Math.floor(first + span * a + between(0.1, 0.9, r) * Math.max(1, span - gap)));
  return out;
}

function pick<T>(xs: readonly T[], r: Uniform): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** A count series' rhythm: its length in points, start, level, peak hour, night and weekend factors and over-dispersion (gamma shape), drawn in this order. */
interface Rhythm {
  n: number;
  start: number;
  level: number;
  peak: number;
  night: number;
  weekend: number;
  shape: number;
}

type Range = readonly [number, number];

function rhythm(r: Uniform, days: Range, level: Range, peak: Range, night: Range, weekend: Range, shape: Range): Rhythm {
  return {
    n: Math.floor(between(days[0], days[1], r) * 288),
    start: T0 + Math.floor(r() * 14) * DAY,
    level: logBetween(level[0], level[1], r),
    peak: between(peak[0], peak[1], r),
    night: between(night[0], night[1], r),
    weekend: between(weekend[0], weekend[1], r),
    shape: between(shape[0], shape[1], r),
  };
}

function mentions(r: Uniform): Generated {
  const { n, start, level, peak, night, weekend, shape } = rhythm(r, [40, 55], [5, 300], [12, 22], [0.15, 0.5], [0.6, 1], [2, 10]);
  const flurriesPerDay = between(1, 5, r);
  const count = 1 + Math.floor(r() * 4);
  const onsets = placeOnsets(n, count, 900, r);
  const labels = onsets.map(() => pick(['burst', 'burst', 'burst', 'surge', 'surge', 'gap'], r));
  const events = onsets.map((at, a) => {
    const kind = labels[a]!;
    if (kind === 'burst') return { at, kind, amp: logBetween(4, 40, r), len: logBetween(6, 72, r) };
    if (kind === 'surge') return { at, kind, amp: between(2, 4, r), len: between(6, 36, r) * 12 };
    return { at, kind, amp: 0.03, len: between(1, 6, r) * 12 };
  });
  const flurries: Array<{ at: number; amp: number; tau: number }> = [];
  for (let i = 0; i < n; i++) if (r() < flurriesPerDay / 288) flurries.push({ at: i, amp: logBetween(1.3, 4, r), tau: between(3, 24, r) });
  let drift = 0;
  const timestamps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = start + i * STEP;
    const d = new Date(t);
    if (i % 288 === 0) drift = Math.max(-0.7, Math.min(0.7, drift + 0.08 * gauss(r)));
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const day = night + (1 - night) * (0.5 + 0.5 * Math.cos(((h - peak) / 24) * 2 * Math.PI));
    let mean = level * Math.exp(drift) * day * (d.getUTCDay() % 6 === 0 ? weekend : 1);
    for (const fl of flurries) if (i >= fl.at && i < fl.at + 6 * fl.tau) mean *= 1 + (fl.amp - 1) * Math.exp(-(i - fl.at) / fl.tau);
    for (const e of events) {
      if (i < e.at) continue;
      if (e.kind === 'burst' && i < e.at + 8 * e.len) mean *= 1 + (e.amp - 1) * Math.exp(-(i - e.at) / e.len);
      if (e.kind === 'surge' && i < e.at + e.len) mean *= 1 + (e.amp - 1) * Math.min(1, (i - e.at + 1) / 12);
      if (e.kind === 'gap' && i < e.at + e.len) mean *= e.amp;
    }
    timestamps.push(t);
    values.push(poisson((gamma(shape, r) * mean) / shape, r));
  }
  return { name: 'topic', timestamps, values, onsets, labels };
}

function requests(r: Uniform): Generated {
  const { n, start, level, peak, night, weekend, shape } = rhythm(r, [30, 50], [20, 2000], [13, 20], [0.05, 0.4], [0.4, 1.1], [5, 30]);
  const growth = between(-0.2, 0.6, r) / n;
  const count = 1 + Math.floor(r() * 3);
  const onsets = placeOnsets(n, count, 600, r);
  const labels = onsets.map(() => pick(['outage', 'outage', 'crowd', 'crowd', 'bots'], r));
  const events = onsets.map((at, a) => {
    const kind = labels[a]!;
    if (kind === 'outage') return { at, kind, amp: between(0.05, 0.2, r), len: between(3, 24, r) };
    if (kind === 'crowd') return { at, kind, amp: logBetween(3, 20, r), len: between(3, 36, r) };
    return { at, kind, amp: between(2, 5, r), len: between(24, 144, r) };
  });
  const campaign = new Map<number, number>();
  const bumps: Array<{ at: number; amp: number; tau: number }> = [];
  for (let i = 0; i < n; i++) if (r() < 1 / 288) bumps.push({ at: i, amp: between(1.2, 2, r), tau: between(2, 12, r) });
  const timestamps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = start + i * STEP;
    const d = new Date(t);
    const dayNo = Math.floor(t / DAY);
    if (!campaign.has(dayNo)) campaign.set(dayNo, r() < 0.08 ? between(1.3, 2, r) : 1);
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const day = night + (1 - night) * Math.max(0, Math.cos(((h - peak) / 24) * 2 * Math.PI)) ** 1.5;
    let mean = level * (1 + growth * i) * day * (d.getUTCDay() % 6 === 0 ? weekend : 1) * campaign.get(dayNo)!;
    for (const b of bumps) if (i >= b.at && i < b.at + 6 * b.tau) mean *= 1 + (b.amp - 1) * Math.exp(-(i - b.at) / b.tau);
    const usual = mean;
    for (const e of events) {
      if (i < e.at) continue;
      if (e.kind === 'outage' && i < e.at + e.len) mean = usual * e.amp;
      if (e.kind === 'crowd' && i < e.at + 8 * e.len) mean *= 1 + (e.amp - 1) * Math.exp(-(i - e.at) / e.len);
      if (e.kind === 'bots' && i < e.at + e.len) mean += level * (e.amp - 1) * 0.5;
    }
    timestamps.push(t);
    values.push(poisson((gamma(shape, r) * mean) / shape, r));
  }
  return { name: 'service', timestamps, values, onsets, labels };
}

function road(r: Uniform, f: number): Generated {
  const measure = (['speed', 'occupancy', 'traveltime'] as const)[f % 3]!;
  const n = Math.floor(between(7, 12, r) * 288);
  const free = measure === 'speed' ? between(50, 70, r) : measure === 'occupancy' ? between(2, 8, r) : between(150, 600, r);
  const noise = between(0.03, 0.1, r);
  const am = between(6.5, 8.5, r);
  const pm = between(16, 18.5, r);
  const depth = between(0.2, 0.7, r);
  const count = 1 + Math.floor(r() * 3);
  // the feed drops now and then: an hour or two, rarely days
  const timestamps: number[] = [];
  let t = T0 + Math.floor(r() * 7) * DAY;
  for (let i = 0; i < n; i++) {
    timestamps.push(t);
    t += STEP;
    if (r() < 0.01) t += Math.floor(between(1, 48, r)) * STEP;
    if (r() < 0.001) t += Math.floor(between(1, 4, r)) * DAY;
  }
  const onsets = placeOnsets(n, count, 150, r);
  const labels = onsets.map(() => pick(['jam', 'jam', 'stuck', 'absurd'], r));
  const lens = labels.map((k) => (k === 'jam' ? between(6, 36, r) : k === 'stuck' ? between(12, 144, r) : between(2, 5, r)));
  const dayDepth = new Map<number, number>();
  const wet = new Map<number, boolean>();
  const values: number[] = [];
  let last = free;
  for (let i = 0; i < n; i++) {
    const local = new Date(timestamps[i]! - 6 * HOUR);
    const dayNo = Math.floor(local.getTime() / DAY);
    if (!dayDepth.has(dayNo)) {
      dayDepth.set(dayNo, depth * between(0.6, 1.4, r));
      wet.set(dayNo, r() < 0.12);
    }
    const h = local.getUTCHours() + local.getUTCMinutes() / 60;
    const weekend = local.getUTCDay() % 6 === 0;
    let c = weekend ? 0.1 * Math.exp(-((h - 14) ** 2) / 8) : dayDepth.get(dayNo)! * (Math.exp(-((h - am) ** 2) / 0.8) + 0.8 * Math.exp(-((h - pm) ** 2) / 1.2));
    if (wet.get(dayNo)) c += 0.12;
    if (r() < 0.02) c += between(0, 0.3, r);
    let v: number | null = null;
    for (let a = 0; a < onsets.length; a++) {
      const at = onsets[a]!;
      if (i < at || i >= at + lens[a]!) continue;
      if (labels[a] === 'jam') c = Math.max(c, between(0.6, 0.95, r));
      else if (labels[a] === 'stuck') v = last;
      else v = measure === 'occupancy' ? 100 : Math.round(measure === 'speed' ? between(0, 5, r) : free * between(8, 15, r));
    }
    if (v === null) {
      c = Math.min(1, c);
      const x = measure === 'speed' ? free * (1 - 0.8 * c) : measure === 'occupancy' ? free * (1 + 6 * c) : free * (1 + 4 * c * c);
      v = Math.max(0, x * (1 + noise * gauss(r)));
      v = measure === 'occupancy' ? Math.round(v * 10) / 10 : Math.round(v);
      last = v;
    }
    values.push(v);
  }
  return { name: measure, timestamps, values, onsets, labels };
}

/** An exponential draw of mean 1 (queueing delay: never below the floor, now and then far above it). */
const expo = (r: Uniform): number => -Math.log(1 - r() + 1e-12);

function latency(r: Uniform): Generated {
  const n = Math.floor(between(20, 40, r) * 288);
  const start = T0 + Math.floor(r() * 14) * DAY;
  const floor = logBetween(2, 150, r);
  const busy = between(10, 16, r);
  const queueing = between(0.05, 0.5, r);
  const weekend = between(0.3, 0.8, r);
  const jitter = between(0.01, 0.1, r);
  const spikesPerDay = between(2, 20, r);
  const count = 1 + Math.floor(r() * 3);
  const onsets = placeOnsets(n, count, 300, r);
  const labels = onsets.map(() => pick(['reroute', 'congestion', 'degradation'], r));
  const events = onsets.map((at, a) => {
    const kind = labels[a]!;
    if (kind === 'reroute') return { at, kind, amp: between(1.3, 2.5, r), len: between(2, 24, r) * 12 };
    if (kind === 'congestion') return { at, kind, amp: between(1, 5, r), len: between(0.5, 3, r) * 12 };
    return { at, kind, amp: between(1.5, 3, r), len: between(3, 12, r) * 12 };
  });
  const timestamps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = start + i * STEP;
    const d = new Date(t);
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const load = Math.max(0, Math.cos(((h - busy) / 24) * 2 * Math.PI)) ** 2 * (d.getUTCDay() % 6 === 0 ? weekend : 1);
    let base = floor;
    let queue = floor * (queueing * load + jitter * expo(r));
    for (const e of events) {
      if (i < e.at || i >= e.at + e.len) continue;
      if (e.kind === 'reroute') base = floor * e.amp;
      else if (e.kind === 'congestion') queue += floor * e.amp * (0.5 + expo(r));
      else base = floor * (1 + ((e.amp - 1) * (i - e.at + 1)) / e.len);
    }
    let v = base + queue;
    // a probe lost and retried, an ICMP reply deprioritised: one sample far up, nothing wrong
    if (r() < spikesPerDay / 288) v *= between(1.5, 4, r);
    timestamps.push(t);
    values.push(Math.round(v * 100) / 100);
  }
  return { name: 'rtt', timestamps, values, onsets, labels };
}

function sessions(r: Uniform): Generated {
  const n = Math.floor(between(28, 42, r) * 288);
  const start = T0 + Math.floor(r() * 14) * DAY;
  const level = logBetween(50, 5000, r);
  const open = between(7, 9, r);
  const close = between(16, 19, r);
  const night = between(0.03, 0.2, r);
  const weekend = between(0.1, 0.4, r);
  const count = 1 + Math.floor(r() * 2);
  // far apart: a cap's onset may wait days for a working day's peak
  const onsets = placeOnsets(n, count, 1800, r);
  const labels = onsets.map(() => pick(['disconnect', 'leak', 'cap'], r));
  const events = onsets.map((at, a) => {
    const kind = labels[a]!;
    if (kind === 'disconnect') return { at, kind, amp: between(0, 0.2, r), len: between(3, 12, r) };
    if (kind === 'leak') return { at, kind, amp: between(0.5, 2, r), len: between(6, 24, r) * 12 };
    return { at, kind, amp: between(0.6, 0.85, r), len: between(12, 24, r) * 12 };
  });
  const holiday = new Map<number, boolean>();
  // the usual sessions first (a holiday is a weekday at its weekend level), then the incidents on them
  const timestamps: number[] = [];
  const usual: number[] = [];
  let ar = 0;
  for (let i = 0; i < n; i++) {
    const t = start + i * STEP;
    const d = new Date(t);
    const dayNo = Math.floor(t / DAY);
    if (!holiday.has(dayNo)) holiday.set(dayNo, r() < 0.04);
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const ramp = (x: number) => Math.min(1, Math.max(0, x));
    const office = Math.min(ramp(h - open + 0.5), ramp(close + 0.5 - h));
    const off = d.getUTCDay() % 6 === 0 || holiday.get(dayNo)!;
    const target = level * (night + (1 - night) * office * (off ? weekend : 1));
    ar = 0.9 * ar + 0.03 * gauss(r);
    timestamps.push(t);
    usual.push(Math.max(0, target * (1 + ar) + 0.5 * Math.sqrt(target) * gauss(r)));
  }
  // a licence cap shows only once the sessions reach it: its onset is the first capped point
  events.forEach((e, a) => {
    if (e.kind !== 'cap') return;
    const cap = e.amp * level;
    const next = onsets[a + 1] ?? n;
    let at = e.at;
    while (at < next - 600 && usual[at]! <= cap) at++;
    onsets[a] = at;
    e.at = at;
  });
  const values = usual.map((u, i) => {
    let v = u;
    for (const e of events) {
      if (i < e.at) continue;
      if (e.kind === 'disconnect' && i < e.at + 8 * e.len) v = u * (1 - (1 - e.amp) * Math.exp(-(i - e.at) / e.len));
      if (e.kind === 'leak' && i < e.at + e.len) v += (level * e.amp * (i - e.at + 1)) / e.len;
      if (e.kind === 'cap' && i < e.at + e.len) v = Math.min(v, e.amp * level);
    }
    return Math.round(v);
  });
  return { name: 'sessions', timestamps, values, onsets, labels };
}

export interface UnseenFigures {
  readonly kind: UnseenKind;
  readonly seeds: number;
  readonly files: number;
  readonly windows: number;
  /** Per profile (standard, low-FP, low-FN): the mean over seeds, each corpus swept for its own threshold. */
  readonly ours: number[];
  readonly artime: number[];
  /** The same at the thresholds each swept on the shipped NAB files (ours) or published (ARTime): nothing chosen on these series. */
  readonly oursAtNab: number[] | null;
  readonly artimeAtNab: number[] | null;
  /** Standard profile per seed, ours and ARTime. */
  readonly perSeed: Array<[number, number]>;
  /** Per kind of labelled anomaly: windows holding a detection at the standard threshold, ours and ARTime, and windows. */
  readonly caught: Record<string, [number, number, number]>;
}

/**
 * Ours and the published ARTime on `seeds` corpora of one kind, scored by NAB's rules. `thresholds`
 * (per profile, in PROFILE_NAMES order), when given, also scores each at a threshold chosen elsewhere.
 */
export async function scoreUnseen(kind: UnseenKind, seeds: number, files: number, thresholds?: { ours: number[]; artime: number[] | null }): Promise<UnseenFigures> {
  const sums = { ours: [0, 0, 0], artime: [0, 0, 0], oursAtNab: [0, 0, 0], artimeAtNab: [0, 0, 0] };
  const perSeed: Array<[number, number]> = [];
  const caught: Record<string, [number, number, number]> = {};
  let windows = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const c = unseenCorpus(kind, seed, files);
    windows += Object.values(c.windows).reduce((a, w) => a + w.length, 0);
    const ours: FileInput[] = [];
    const ref: FileInput[] = [];
    for (const f of c.files) {
      ours.push({ key: f.key, timestamps: f.timestamps, scores: (await detectSeries(f, { learned: false, warmup: 'nab' })).scores });
      ref.push({ key: f.key, timestamps: f.timestamps, scores: (await detectSeries(f, { learned: false, warmup: 'nab', params: publishedArtimeParams(f.values) })).scores });
    }
    const swept = PROFILE_NAMES.map((p) => [scoreCorpus(ours, c.windows, p), scoreCorpus(ref, c.windows, p)] as const);
    PROFILE_NAMES.forEach((p, j) => {
      sums.ours[j] += swept[j]![0].normalised;
      sums.artime[j] += swept[j]![1].normalised;
      if (thresholds) sums.oursAtNab[j] += scoreCorpus(ours, c.windows, p, thresholds.ours[j]).normalised;
      if (thresholds?.artime) sums.artimeAtNab[j] += scoreCorpus(ref, c.windows, p, thresholds.artime[j]).normalised;
    });
    const std = swept[PROFILE_NAMES.indexOf('standard')]!;
    perSeed.push([std[0].normalised, std[1].normalised]);
    [ours, ref].forEach((run, who) => {
      for (const f of run) {
        c.windows[f.key]!.forEach(([a, b], w) => {
          const k = c.kinds[f.key]![w]!;
          const t = (caught[k] ??= [0, 0, 0]);
          if (who === 0) t[2]++;
          for (let i = 0; i < f.timestamps.length; i++) {
            if (f.timestamps[i]! >= a && f.timestamps[i]! <= b && f.scores[i]! >= std[who].threshold) {
              t[who]++;
              break;
            }
          }
        });
      }
    });
  }
  const mean = (xs: number[]) => xs.map((x) => x / seeds);
  return {
    kind,
    seeds,
    files: seeds * files,
    windows,
    ours: mean(sums.ours),
    artime: mean(sums.artime),
    oursAtNab: thresholds ? mean(sums.oursAtNab) : null,
    artimeAtNab: thresholds?.artime ? mean(sums.artimeAtNab) : null,
    perSeed,
    caught,
  };
}
