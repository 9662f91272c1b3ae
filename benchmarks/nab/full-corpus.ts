/**
 * The full NAB corpus, seen from a part of it. NAB publishes each detector's raw full-corpus score
 * per profile (config/thresholds.json) beside its corpus-wide threshold; the published normalised
 * figures (ARTime 74.9, CAD OSE 69.9, ...) follow from them with the full corpus' window count. A
 * folder holding part of the corpus (the shipped 41 files) can then say two things about the files it
 * lacks: what each published detector scored on them (its full raw score less its raw score on this
 * folder at the same threshold), and what ours must score on them for the full corpus to reach a
 * target. Both are exact for the published detectors (NAB's score is a sum over files at one
 * threshold); for ours the second is a lower bound, since the full corpus' sweep may settle on
 * another threshold than this folder's, where this folder scores less.
 */
import { normalise, type CostMatrix } from './scorer.js';

/** NAB v1.1: 58 files, 116 labelled windows. */
export const FULL_CORPUS = { files: 58, windows: 116 } as const;

/** NAB's normalisation for a corpus of `windows` windows: null (every window missed) = 0, perfect (each detected at its first row) = 100. */
export function normaliseFor(raw: number, windows: number, cost: CostMatrix): number {
  return normalise(raw, -windows * cost.fnWeight, windows * cost.tpWeight);
}

/** Inverse of normaliseFor. */
export function rawFor(normalised: number, windows: number, cost: CostMatrix): number {
  const nul = -windows * cost.fnWeight;
  return nul + (normalised / 100) * (windows * cost.tpWeight - nul);
}

export interface RestOfCorpus {
  /** Normalised on the full corpus. */
  readonly full: number;
  /** Normalised on the files not in this folder. */
  readonly rest: number;
}

/** A published detector's full-corpus score, and its score on the files not here, from its raw score here at its published threshold. */
export function restOfCorpus(fullRaw: number, hereRaw: number, hereWindows: number, cost: CostMatrix): RestOfCorpus {
  const restWindows = FULL_CORPUS.windows - hereWindows;
  return { full: normaliseFor(fullRaw, FULL_CORPUS.windows, cost), rest: normaliseFor(fullRaw - hereRaw, restWindows, cost) };
}

/** The normalised score the files not here must give at least for the full corpus to reach `target`, given this folder's raw score. */
export function restNeeded(target: number, hereRaw: number, hereWindows: number, cost: CostMatrix): number {
  const restWindows = FULL_CORPUS.windows - hereWindows;
  return normaliseFor(rawFor(target, FULL_CORPUS.windows, cost) - hereRaw, restWindows, cost);
}
