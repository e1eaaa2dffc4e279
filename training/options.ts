/**
 * Run-size defaults that fit any dataset, and the run arguments a checkpoint records so that
 * `--resume DIR` alone continues the same run (and a conflicting flag is refused, not obeyed).
 */
import type { TrainOptions } from './run.js';

/** Fine-tuning: the last layer only, the fully connected layers, or every layer. */
export type TrainLayers = 'fc8' | 'fc' | 'all';
export const TRAIN_LAYERS: readonly TrainLayers[] = ['fc8', 'fc', 'all'];

/** `--val`: a count of images, a fraction of the dataset, or 'test' (monitor the test split). */
export type ValSpec = number | 'test' | { fraction: number };

/** The default validation split: 10 % of the images. */
export const DEFAULT_VAL: ValSpec = { fraction: 0.1 };
/** The paper's batch, used whenever the training set has at least 8 batches of it. */
export const MAX_AUTO_BATCH = 128;
/** Warm-up cap (steps) and share of the whole run it may take at most. */
export const MAX_AUTO_WARMUP = 300;
const WARMUP_SHARE = 0.05;
const STEPS_PER_EPOCH_TARGET = 8;

export class TrainSizeError extends Error {
  override readonly name = 'TrainSizeError';
}

export interface SizeFlags {
  val: ValSpec;
  batch: number | 'auto';
  warmupSteps: number | 'auto';
  epochs: number;
  workers: number;
}

export interface Sizes {
  /** Images held out for validation (0 when the test split is monitored or none is wanted). */
  valCount: number;
  batch: number;
  warmupSteps: number;
  stepsPerEpoch: number;
}

/**
 * Resolves `auto` sizes for `total` images. The validation split never takes the last batch;
 * an explicit size that does not fit is refused with the flag to change.
 */
export function planSizes(total: number, f: SizeFlags): Sizes {
  let valCount = 0;
  if (typeof f.val === 'number') valCount = f.val;
  else if (f.val !== 'test') valCount = Math.round(total * f.val.fraction);
  const minBatch = f.workers;
  if (typeof f.val !== 'number' && f.val !== 'test') {
    // A fraction is a default-ish request: shrink it rather than leave nothing to train on.
    const spare = total - (f.batch === 'auto' ? minBatch : f.batch);
    valCount = Math.max(0, Math.min(valCount, spare));
  }
  const trainN = total - valCount;
  if (typeof f.val === 'number' && valCount >= total) {
    throw new TrainSizeError(`--val ${valCount} takes all ${total} images of the dataset; lower --val (e.g. --val 10%)`);
  }
  let batch: number;
  if (f.batch === 'auto') {
    const p2 = 2 ** Math.floor(Math.log2(Math.max(1, trainN / STEPS_PER_EPOCH_TARGET)));
    batch = Math.min(MAX_AUTO_BATCH, p2);
    batch = Math.max(minBatch, Math.floor(batch / f.workers) * f.workers);
  } else batch = f.batch;
  if (trainN < batch) {
    const why = valCount > 0 ? ` (--val took ${valCount} of ${total})` : '';
    throw new TrainSizeError(`the training set has ${trainN} images${why}, fewer than one batch of ${batch}; lower --batch${valCount > 0 ? ' or --val' : ''}`);
  }
  if (batch % f.workers !== 0) throw new TrainSizeError(`--batch ${batch} must be a multiple of --workers ${f.workers}`);
  const stepsPerEpoch = Math.floor(trainN / batch);
  const warmupSteps = f.warmupSteps === 'auto'
    ? Math.min(MAX_AUTO_WARMUP, Math.ceil(stepsPerEpoch * f.epochs * WARMUP_SHARE))
    : f.warmupSteps;
  return { valCount, batch, warmupSteps, stepsPerEpoch };
}

/** `--val` as the user writes it: 'test', '10%', '0.1' is not a count, '500'. */
export function formatVal(v: ValSpec): string {
  if (v === 'test') return 'test';
  if (typeof v === 'number') return String(v);
  return `${+(v.fraction * 100).toFixed(6)}%`;
}

/**
 * The arguments a checkpoint records: everything that defines the run. Output-side options
 * (where and how the model is written) and the schedule's extensions are not part of it.
 */
export type RunArgs = Omit<TrainOptions, 'resume' | 'resumeLr' | 'skipEval' | 'checkpoint'>;

/** Options that may differ on resume: the run's length, extra fixed drops, how often it checkpoints and how the result is written. */
const MAY_CHANGE: ReadonlySet<keyof RunArgs> = new Set<keyof RunArgs>(['epochs', 'lrDrops', 'out', 'fp16', 'name', 'modelVersion', 'checkpointEvery']);

/** Flag of each option, for messages. */
export const FLAG_OF: Record<keyof RunArgs, string> = {
  preset: '--preset', dataset: '--dataset', dataDir: '--data', epochs: '--epochs', batch: '--batch', lr: '--lr', minLr: '--min-lr',
  patience: '--patience', lrDrops: '--lr-drops', warmupSteps: '--warmup', init: '--init', seed: '--seed', limit: '--limit',
  val: '--val', workers: '--workers', backend: '--backend', pcaStd: '--pca-std', randomErasing: '--random-erasing', out: '--out', fp16: '--fp16', name: '--name',
  modelVersion: '--model-version', from: '--from', trainLayers: '--train-layers', checkpointEvery: '--checkpoint-every',
};

/** What an option absent from an older checkpoint's arguments meant (it did not exist then: off). */
const ABSENT_MEANS: Partial<RunArgs> = { randomErasing: 0 };

function show(key: keyof RunArgs, v: unknown): string {
  if (v === undefined) return '(not set)';
  if (key === 'val') return formatVal(v as ValSpec);
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

/**
 * The options of a resumed run: the checkpoint's, with the flags given on the command line for
 * what may change. A given flag that would change anything else is refused, naming what the
 * checkpoint holds (a resumed run must be the same run, or its data and schedule silently change).
 */
export function resumeArgs(saved: RunArgs, given: Partial<RunArgs>, dir: string): RunArgs {
  const out: RunArgs = { ...saved };
  const conflicts: string[] = [];
  for (const key of Object.keys(given) as (keyof RunArgs)[]) {
    const v = given[key];
    if (v === undefined) continue;
    if (MAY_CHANGE.has(key)) {
      (out as unknown as Record<string, unknown>)[key] = v;
      continue;
    }
    const held = saved[key] ?? ABSENT_MEANS[key];
    if (JSON.stringify(v) !== JSON.stringify(held)) {
      conflicts.push(`${FLAG_OF[key]} ${show(key, v)} (the checkpoint holds ${FLAG_OF[key]} ${show(key, held)})`);
    }
  }
  if (conflicts.length > 0) {
    throw new TrainSizeError(
      `checkpoint '${dir}' was made by another run: ${conflicts.join('; ')}. ` +
        `Drop these flags to continue it, or start a new run with another --checkpoint folder`,
    );
  }
  return out;
}

/** The command that continues a stopped run, printable as is (paths quoted for the shell when needed). */
export function resumeCommand(dir: string): string {
  const quoted = /^[\w./:@%+=,-]+$/.test(dir) ? dir : `'${dir.replaceAll("'", "'\\''")}'`;
  return `sightline train --resume ${quoted}`;
}
