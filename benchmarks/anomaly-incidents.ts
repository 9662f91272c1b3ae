/**
 * What the detector catches, the other half of what anomaly-quiet.ts measures: the same healthy
 * synthetic series, each with one incident of a kind a NOC meets, placed at random between day 20
 * and day 28 (long after the warm-up):
 *   - shift: the level triples (noise: +4 sigma) for 2 h;
 *   - outage: the value drops to 0 for 1 h (a link down, a counter that stops);
 *   - spike: one point at ten times the value, plus ten events (noise: +8 sigma);
 *   - stuck: the value before it, repeated for 2 h (a frozen sensor, agent or poller).
 * An incident counts as caught when an event is raised from its first point to 30 min after its
 * end; the delay is from its first point. Not NAB data: a check that what was chosen on NAB
 * carries over to other series, and the yardstick of what NAB cannot see (the operator's event
 * rules, the log scale for counts and its knee, which were chosen with it in view).
 *
 * Ours: the operator as the runner runs it. Reference, same series: the published ARTime as NAB runs
 * it (the series' whole range given, which includes the incident's own values), same event level.
 */
import { anomalyConfig } from '../processors/anomaly/operator.js';
import { rng } from '../processors/anomaly/learned.js';
import { KINDS, STEP, UNIT_OF, healthySeries, operatorEvents, referenceHits } from './anomaly-quiet.js';

const DAYS = 30;
const POINTS = (DAYS * 86_400_000) / STEP;
const PER_CELL = 16;
const GRACE = 6; // points after the incident's end (30 min at 5 min steps)
/** Kinds the bench had when its seeds were first laid out (KINDS' first six). */
const FIRST_KINDS = 6;

interface Incident {
  readonly points: number;
  /** The incident's value for a healthy value `x`; `before` is the value before its first point. */
  readonly apply: (kind: string, x: number, before: number) => number;
}

export const INCIDENTS: Readonly<Record<string, Incident>> = {
  shift: { points: 24, apply: (kind, x) => (kind === 'noise' ? x + 40 : 3 * x) },
  outage: { points: 12, apply: () => 0 },
  spike: { points: 1, apply: (kind, x) => (kind === 'noise' ? x + 80 : 10 * x + 10 * (UNIT_OF[kind] ?? 1)) },
  stuck: { points: 24, apply: (_kind, _x, before) => before },
};

export interface Catch {
  /** Incidents caught, of all placed. */
  readonly caught: number;
  readonly placed: number;
  /** Median delay of the caught ones, in minutes (null when none). */
  readonly medianDelayMin: number | null;
}

export interface IncidentFigures {
  /** By incident, then by series kind, and over all kinds ('all'). */
  readonly ours: Record<string, Record<string, Catch>>;
  readonly reference: Record<string, Record<string, Catch>>;
}

function summarise(delays: (number | null)[]): Catch {
  const got = delays.filter((d): d is number => d !== null).sort((a, b) => a - b);
  const mid = got.length === 0 ? null : got.length % 2 ? got[(got.length - 1) / 2]! : (got[got.length / 2 - 1]! + got[got.length / 2]!) / 2;
  return { caught: got.length, placed: delays.length, medianDelayMin: mid === null ? null : (mid * STEP) / 60_000 };
}

export function incidentsCaught(operator: Record<string, unknown> = {}): IncidentFigures {
  const cfg = anomalyConfig({ seed: 1, learned: false, ...operator });
  const ours: Record<string, Record<string, Catch>> = {};
  const reference: Record<string, Record<string, Catch>> = {};
  const incidents = Object.keys(INCIDENTS).length;
  // each cell (incident x kind) keeps its series as kinds are added: the first six kinds' cells are
  // numbered incident by incident as they always were, a later kind's after all of theirs
  const cellSeed = (inc: number, kind: number) => 1000 + PER_CELL * (kind < FIRST_KINDS ? inc * FIRST_KINDS + kind : incidents * FIRST_KINDS + (kind - FIRST_KINDS) * incidents + inc);
  for (const [n, [name, inc]] of Object.entries(INCIDENTS).entries()) {
    ours[name] = {};
    reference[name] = {};
    const allOurs: (number | null)[] = [];
    const allRef: (number | null)[] = [];
    for (const [k, [kind, gen]] of Object.entries(KINDS).entries()) {
      const seed = cellSeed(n, k);
      const series = healthySeries(gen, PER_CELL, seed, POINTS);
      const place = rng(seed + 500);
      const starts = series.map((xs) => {
        const at = Math.floor((20 + 8 * place()) * 288);
        const before = xs[at - 1]!;
        for (let i = at; i < at + inc.points; i++) xs[i] = inc.apply(kind, xs[i]!, before);
        return at;
      });
      const caught = (s: number, i: number, first: (number | null)[]) => {
        if (first[s] === null && i >= starts[s]! && i < starts[s]! + inc.points + GRACE) first[s] = i - starts[s]!;
      };
      const firstOurs: (number | null)[] = series.map(() => null);
      operatorEvents(cfg, series, kind, (s, i) => caught(s, i, firstOurs));
      ours[name]![kind] = summarise(firstOurs);
      allOurs.push(...firstOurs);
      const firstRef: (number | null)[] = series.map(() => null);
      series.forEach((xs, s) => {
        for (const i of referenceHits(xs, cfg.eventLevel)) caught(s, i, firstRef);
      });
      reference[name]![kind] = summarise(firstRef);
      allRef.push(...firstRef);
    }
    ours[name]!.all = summarise(allOurs);
    reference[name]!.all = summarise(allRef);
  }
  return { ours, reference };
}

/** One line per incident: caught / placed and median delay, ours then the reference, over all kinds and per kind. */
export function describeIncidents(f: IncidentFigures): string[] {
  const c = (x: Catch) => `${x.caught}/${x.placed}${x.medianDelayMin === null ? '' : ` in ${x.medianDelayMin} min`}`;
  return Object.keys(f.ours).map((name) => {
    const kinds = Object.keys(f.ours[name]!).filter((k) => k !== 'all');
    return `${name}: ours ${c(f.ours[name]!.all!)} (ARTime ${c(f.reference[name]!.all!)}); ${kinds.map((k) => `${k} ${c(f.ours[name]![k]!)} (${c(f.reference[name]![k]!)})`).join(', ')}`;
  });
}
