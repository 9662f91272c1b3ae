import type * as TF from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { counter, histogram, M } from '../../core/metrics.js';

/**
 * The learned layer: one small tfjs network per metric family (not per series, so memory does not
 * grow with series count) that predicts the next normalised value from the last WINDOW normalised
 * values. It trains in the background on a bounded reservoir of recent windows from every series
 * of the family; the stream keeps scoring with the previous version until a new one is ready, so
 * a point is only ever scored by a model trained on points before it.
 */

export const WINDOW = 12;
/** Layout version of the persisted model (bump when the network's shape changes). */
export const MODEL_FORMAT = 1;

const trainSeconds = histogram('noctua_anomaly_model_train_seconds', 'Training time of one anomaly model version', ['family'], [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
const modelVersions = counter('noctua_anomaly_model_versions_total', 'Anomaly model versions trained', ['family']);

let backendReady: Promise<string> | undefined;
/**
 * tfjs, loaded by initBackend() only: importing it costs ~1.5 s and ~50 MB at start, and the
 * learned layer is off unless configured, so processes that do not use it never load it.
 */
let tfLib: typeof TF | undefined;
const tfNs = (): typeof TF => {
  if (!tfLib) throw new Error('anomaly: the learned layer needs initBackend() before use');
  return tfLib;
};

/** tfjs-node when installed (native), else the wasm backend, else tfjs's own cpu backend. */
export function initBackend(): Promise<string> {
  backendReady ??= (async () => {
    tfLib = await import('@tensorflow/tfjs');
    const tf = tfLib;
    try {
      await import('@tensorflow/tfjs-node' as string);
      await tf.setBackend('tensorflow');
      return 'tensorflow';
    } catch {
      /* not installed: the normal case here */
    }
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return 'wasm';
      }
    } catch (err) {
      M.errors.inc({ component: 'anomaly', kind: 'tfjs_wasm_backend' });
      process.emitWarning(`anomaly: tfjs wasm backend unavailable, using cpu: ${(err as Error).message}`);
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return 'cpu';
  })();
  return backendReady;
}

/** A tiny seeded PRNG (mulberry32) for reservoir sampling and shuffles. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FamilyModelOptions {
  readonly family: string;
  readonly seed: number;
  /** Windows kept for training (reservoir). */
  readonly reservoir: number;
  /** New windows seen between two trainings. */
  readonly retrainEvery: number;
  readonly epochs: number;
  readonly hidden: number;
}

export const DEFAULT_FAMILY_OPTIONS: Omit<FamilyModelOptions, 'family'> = { seed: 42, reservoir: 4096, retrainEvery: 2000, epochs: 4, hidden: 16 };

interface Snapshot {
  format: number;
  family: string;
  version: number;
  trainedOn: number;
  seed: number;
  hidden: number;
  /** Weights as plain arrays, layer by layer. */
  weights: Array<{ shape: number[]; data: number[] }>;
}

export class FamilyModel {
  readonly opts: FamilyModelOptions;
  private model: TF.LayersModel | undefined;
  private training: Promise<void> | undefined;
  private readonly xs: Float32Array;
  private readonly ys: Float32Array;
  private filled = 0;
  private seenWindows = 0;
  private sinceTrain = 0;
  private readonly random: () => number;
  /** Versions trained so far (0 = no model yet). */
  version = 0;
  lastTrainMs = 0;

  constructor(opts: Partial<FamilyModelOptions> & { family: string }) {
    this.opts = { ...DEFAULT_FAMILY_OPTIONS, ...opts };
    this.xs = new Float32Array(this.opts.reservoir * WINDOW);
    this.ys = new Float32Array(this.opts.reservoir);
    this.random = rng(this.opts.seed);
  }

  get ready(): boolean {
    return this.model !== undefined;
  }

  /** Adds one (window → next value) example; reports whether a retraining is due. */
  observe(window: ArrayLike<number>, next: number): boolean {
    this.seenWindows++;
    let slot: number;
    if (this.filled < this.opts.reservoir) slot = this.filled++;
    else {
      slot = Math.floor(this.random() * this.seenWindows);
      if (slot >= this.opts.reservoir) slot = -1;
    }
    if (slot >= 0) {
      for (let i = 0; i < WINDOW; i++) this.xs[slot * WINDOW + i] = window[i]!;
      this.ys[slot] = next;
    }
    this.sinceTrain++;
    return this.sinceTrain >= this.opts.retrainEvery && this.training === undefined;
  }

  private build(): TF.LayersModel {
    const tf = tfNs();
    const init = (k: number) => tf.initializers.glorotUniform({ seed: this.opts.seed + k });
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [WINDOW], units: this.opts.hidden, activation: 'tanh', kernelInitializer: init(1) }));
    m.add(tf.layers.dense({ units: 1, kernelInitializer: init(2) }));
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    return m;
  }

  /**
   * Trains a new version on the reservoir (in the background: the caller may await or not). The
   * new network replaces the old one only when it is complete.
   */
  train(): Promise<void> {
    const tf = tfNs();
    if (this.training) return this.training;
    if (this.filled < 64) return Promise.resolve();
    this.sinceTrain = 0;
    const n = this.filled;
    const started = performance.now();
    this.training = (async () => {
      const next = this.build();
      if (this.model) next.setWeights(this.model.getWeights().map((w) => w.clone()));
      const x = tf.tensor2d(this.xs.slice(0, n * WINDOW), [n, WINDOW]);
      const y = tf.tensor2d(this.ys.slice(0, n), [n, 1]);
      try {
        // shuffle: false keeps training deterministic with the seed
        await next.fit(x, y, { epochs: this.opts.epochs, batchSize: 128, shuffle: false, verbose: 0 });
        const old = this.model;
        this.model = next;
        old?.dispose();
        this.version++;
        this.lastTrainMs = performance.now() - started;
        trainSeconds.observe({ family: this.opts.family }, this.lastTrainMs / 1000);
        modelVersions.inc({ family: this.opts.family });
      } catch (err) {
        next.dispose();
        M.errors.inc({ component: 'anomaly', kind: 'model_train' });
        throw new Error(`anomaly model ${this.opts.family}: training on ${n} windows failed: ${(err as Error).message}`);
      } finally {
        x.dispose();
        y.dispose();
        this.training = undefined;
      }
    })();
    return this.training;
  }

  /** Predicts the next normalised value for each window (rows of WINDOW values); NaN when no model yet. */
  predict(windows: Float32Array, count: number): Float32Array {
    const tf = tfNs();
    if (!this.model || count === 0) return new Float32Array(count).fill(NaN);
    return tf.tidy(() => {
      const out = this.model!.predict(tf.tensor2d(windows.subarray(0, count * WINDOW), [count, WINDOW])) as TF.Tensor;
      return out.dataSync() as Float32Array;
    }).slice();
  }

  toSnapshot(): Snapshot {
    if (!this.model) throw new Error(`anomaly model ${this.opts.family}: nothing trained to save`);
    return {
      format: MODEL_FORMAT,
      family: this.opts.family,
      version: this.version,
      trainedOn: this.seenWindows,
      seed: this.opts.seed,
      hidden: this.opts.hidden,
      weights: this.model.getWeights().map((w) => ({ shape: w.shape, data: Array.from(w.dataSync()) })),
    };
  }

  loadSnapshot(s: Snapshot): void {
    const tf = tfNs();
    if (s.format !== MODEL_FORMAT || s.hidden !== this.opts.hidden) throw new Error(`anomaly model ${this.opts.family}: snapshot format ${s.format}/hidden ${s.hidden} does not fit format ${MODEL_FORMAT}/hidden ${this.opts.hidden}`);
    const m = this.build();
    m.setWeights(s.weights.map((w) => tf.tensor(w.data, w.shape)));
    this.model?.dispose();
    this.model = m;
    this.version = s.version;
    this.seenWindows = s.trainedOn;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}

/** File name of a family's model: safe characters only, the family kept readable. */
export function modelFile(dir: string, family: string): string {
  return join(dir, `${family.replace(/[^A-Za-z0-9_.-]/g, '_')}.model.json`);
}

/** Saves a family's model atomically (write then rename), so a crash never leaves half a model. */
export function saveModel(dir: string, m: FamilyModel): string {
  mkdirSync(dir, { recursive: true });
  const path = modelFile(dir, m.opts.family);
  writeFileSync(path + '.tmp', JSON.stringify(m.toSnapshot()));
  renameSync(path + '.tmp', path);
  return path;
}

/** Loads a saved model into `m`; false when none was saved. A corrupt file is an error naming it. */
export function loadModel(dir: string, m: FamilyModel): boolean {
  const path = modelFile(dir, m.opts.family);
  if (!existsSync(path)) return false;
  try {
    m.loadSnapshot(JSON.parse(readFileSync(path, 'utf8')) as Snapshot);
    return true;
  } catch (err) {
    M.errors.inc({ component: 'anomaly', kind: 'model_load' });
    throw new Error(`anomaly model ${m.opts.family}: cannot load ${path}: ${(err as Error).message}`);
  }
}

/**
 * Per-series input of the learned layer: the last WINDOW values normalised by the series' own
 * running mean and deviation. Small, serialisable, part of the series' checkpoint.
 */
export interface WindowState {
  mean: number;
  dev: number;
  n: number;
  buf: number[];
}

export function newWindowState(): WindowState {
  return { mean: 0, dev: 0, n: 0, buf: [] };
}

const NORM_ALPHA = 0.01;

/** Normalised value of `v` under the state (before learning from it). */
export function normalise(s: WindowState, v: number): number {
  if (s.n === 0) return 0;
  const x = (v - s.mean) / Math.max(s.dev, 1e-9 + 1e-6 * Math.abs(s.mean));
  return x > 10 ? 10 : x < -10 ? -10 : x;
}

/** Learns `v` into the state and appends its normalised form to the window. */
export function pushWindow(s: WindowState, v: number): void {
  const x = normalise(s, v);
  if (s.n === 0) s.mean = v;
  const a = Math.max(NORM_ALPHA, 1 / (s.n + 1));
  s.dev += a * (Math.abs(v - s.mean) - s.dev);
  s.mean += a * (v - s.mean);
  s.n++;
  s.buf.push(x);
  if (s.buf.length > WINDOW) s.buf.shift();
}

/** The learned layer's raw surprise in [0, 1): prediction error in normalised units, squashed. */
export function learnedSurprise(predicted: number, actual: number): number | undefined {
  if (!Number.isFinite(predicted)) return undefined;
  return Math.tanh(Math.abs(actual - predicted) / 4);
}
