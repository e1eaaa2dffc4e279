/**
 * One training run end to end: load the dataset, build or resume the trainer, train, evaluate
 * the exported ONNX with 1 and 10 crops, and write the model with its metrics in the contract.
 */
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { getPreset, PRESET_NAMES, type Preset, readContract, readPresetWeights, exportOnnx, createSession } from '../model/index.js';
import type { ModelContract, NamedWeights, PreprocessContract } from '../model/index.js';
import { newLastLayer } from './head-trainer.js';
import { channelStats, subset, type SquareDataset } from './data/dataset.js';
import { FASHION_MNIST_LABELS, loadFashionMnist } from './data/fashion-mnist.js';
import { loadImageFolder, splitIndices } from './data/image-folder.js';
import { readCheckpointData } from './checkpoint.js';
import { evaluateClassifier, type ClassifierMetrics } from './evaluate.js';
import { Trainer, type TrainerEvents } from './trainer.js';
import type { TrainConfig } from './types.js';
import type { InitScheme } from './network.js';
import type { TrainLayers } from './options.js';
import { DEFAULT_VAL, planSizes, TrainSizeError, type RunArgs, type Sizes, type ValSpec } from './options.js';

export interface TrainOptions {
  preset: string;
  /** 'fashion-mnist' or an ImageFolder root. */
  dataset: string;
  /** Where the Fashion-MNIST IDX files are. */
  dataDir?: string;
  epochs: number;
  /** Images per step; 'auto' scales it to the training set (at most 128, about 8 steps per epoch or more). */
  batch: number | 'auto';
  lr: number;
  minLr: number;
  patience: number;
  lrDrops: number[];
  /** Linear warm-up steps; 'auto': 5 % of the run's steps, at most 300. */
  warmupSteps: number | 'auto';
  init: InitScheme;
  seed: number;
  limit?: number;
  /** Held-out validation images (ImageFolder, or Fashion-MNIST train): a count, a fraction, or 'test' to monitor the test split. */
  val: ValSpec;
  workers: number;
  backend: 'wasm' | 'cpu';
  pcaStd: number;
  /** Random-erasing probability per training image (0 or absent: off). */
  randomErasing?: number;
  out: string;
  checkpoint?: string;
  /** Also checkpoint every this many steps within an epoch (long epochs on a busy machine); 0 or absent: at epoch ends only. */
  checkpointEvery?: number;
  resume?: string;
  /** On resume, continue with this learning rate instead of the checkpoint's (a manual schedule step). */
  resumeLr?: number;
  fp16: boolean;
  name: string;
  modelVersion: string;
  /** Fine-tuning: the ONNX model whose weights the run starts from (see finetune.ts). */
  from?: string;
  /** Fine-tuning: which layers train ('fc8', 'fc' = fc6–fc8, 'all'). */
  trainLayers?: TrainLayers;
  /** Skip the final 1- and 10-crop evaluation (tests). */
  skipEval?: boolean;
}

export interface Splits {
  train: SquareDataset;
  val?: SquareDataset;
  test?: SquareDataset;
  channels: 'gray' | 'rgb';
  /** Batch and warm-up with 'auto' resolved for this training set. */
  sizes: Sizes;
}

async function loadSplits(o: TrainOptions, resizeSize: number, channels: 1 | 3, background: [number, number, number] = [255, 255, 255]): Promise<Splits> {
  if (o.dataset === 'fashion-mnist') {
    const all = await loadFashionMnist('train', { dir: o.dataDir, size: resizeSize, limit: o.limit });
    const test = await loadFashionMnist('test', { dir: o.dataDir, size: resizeSize, limit: o.limit === undefined ? undefined : Math.max(256, Math.floor(o.limit / 4)) });
    const sizes = planSizes(all.n, o);
    if (o.val === 'test' || sizes.valCount === 0) return { train: all, val: o.val === 'test' ? test : undefined, test, channels: 'gray', sizes };
    const { train, val } = splitIndices(all.n, sizes.valCount, o.seed);
    return { train: subset(all, train), val: subset(all, val), test, channels: 'gray', sizes };
  }
  const pre: PreprocessContract = {
    inputSize: 0, resizeSize, channels: channels === 1 ? 'gray' : 'rgb', scale: 1, mean: [0], std: [1], background,
  };
  const { dataset } = await loadImageFolder(o.dataset, pre, { limit: o.limit });
  // A folder has no test split: 'test' means the default held-out share.
  const sizes = planSizes(dataset.n, { ...o, val: o.val === 'test' ? DEFAULT_VAL : o.val });
  const { train, val } = splitIndices(dataset.n, sizes.valCount, o.seed);
  return { train: subset(dataset, train), val: val.length > 0 ? subset(dataset, val) : undefined, channels: pre.channels === 'gray' ? 'gray' : 'rgb', sizes };
}

function configFrom(o: TrainOptions, splits: Splits, numClasses: number, inputSize: number, src?: ModelContract): TrainConfig {
  const stats = channelStats(splits.train);
  return {
    preset: { name: src?.preset ?? o.preset, numClasses, channels: splits.train.channels, inputSize },
    epochs: o.epochs, batch: splits.sizes.batch, lr: o.lr, minLr: o.minLr, patience: o.patience, lrDrops: o.lrDrops,
    warmupSteps: splits.sizes.warmupSteps, init: o.init, seed: o.seed, momentum: 0.9, weightDecay: 0.0005,
    workers: o.workers, backend: o.backend, pcaStd: o.pcaStd, randomErasing: o.randomErasing ?? 0,
    // Mean subtraction (and scaling) computed over the training set, stored in the contract.
    // A fine-tuned model keeps its source's normalization (the features it learned expect it).
    normalization: src
      ? { scale: src.preprocess.scale, mean: src.preprocess.mean, std: src.preprocess.std }
      : { scale: 1 / 255, mean: stats.mean.map((m) => m / 255), std: stats.std.map((s) => s / 255) },
  };
}

export interface TrainResult {
  stopped: boolean;
  out?: string;
  metrics: Record<string, number>;
  test1?: ClassifierMetrics;
  test10?: ClassifierMetrics;
  trainer: Trainer;
}

export interface RunEvents extends TrainerEvents {
  onPhase?: (phase: string) => void;
  onEvalProgress?: (crops: number, done: number, total: number) => void;
}

/** A model to fine-tune every layer of (`--from M --train-layers all`): its file and contract. */
async function readSource(path: string): Promise<{ bytes: Uint8Array; contract: ModelContract }> {
  const bytes = new Uint8Array(await readFile(path));
  const contract = await readContract(bytes);
  if (contract.preprocess.channels === 'bgr') throw new TrainSizeError(`--train-layers all needs a gray or RGB model; '${path}' takes BGR input (use --train-layers fc8 or fc)`);
  if (!(PRESET_NAMES as readonly string[]).includes(contract.preset)) {
    throw new TrainSizeError(`--train-layers all needs a model of a Sightline preset; '${path}' is '${contract.preset}' (use --train-layers fc8 or fc)`);
  }
  return { bytes, contract };
}

/**
 * The source's weights for every layer but fc8, and a new fc8 for the dataset's classes; when the
 * source already has exactly these labels (continuing a model on its own dataset, e.g. the bundled
 * Fashion-MNIST model at a lower learning rate), its fc8 is kept: a new one would throw away a
 * trained classifier for nothing.
 */
export function sourceWeights(bytes: Uint8Array, preset: Preset, seed: number, sourceLabels: readonly string[], classes: readonly string[]): NamedWeights {
  const same = sourceLabels.length === classes.length && sourceLabels.every((l, i) => l === classes[i]);
  if (same) return readPresetWeights(bytes, preset);
  const weights = readPresetWeights(bytes, preset, new Set(['fc8']));
  const fc7 = preset.layers.find((l) => l.name === 'fc7');
  weights.set('fc8', newLastLayer(fc7?.kind === 'dense' ? fc7.units : 4096, preset.numClasses, seed));
  return weights;
}

/** The trained model's labels, in class-index order. */
function labelsOf(o: TrainOptions, splits: Splits): string[] {
  return o.dataset === 'fashion-mnist' ? [...FASHION_MNIST_LABELS] : splits.train.classNames;
}

/** What the checkpoint records about this run (see options.ts). */
export function runArgsOf(o: TrainOptions): RunArgs {
  const { resume: _r, resumeLr: _l, skipEval: _s, checkpoint: _c, ...args } = o;
  return args;
}

export async function trainModel(o: TrainOptions, events: RunEvents = {}, onTrainer?: (t: Trainer) => void): Promise<TrainResult> {
  const resumed = o.resume ? await readCheckpointData(o.resume) : undefined;
  const from = o.from !== undefined ? await readSource(o.from) : undefined;
  const src = from?.contract;
  const base = getPreset(src?.preset ?? o.preset);
  const channels: 1 | 3 = src ? (src.preprocess.channels === 'gray' ? 1 : 3) : o.dataset === 'fashion-mnist' ? 1 : 3;
  const inputSize = resumed?.config.preset.inputSize ?? src?.preprocess.inputSize ?? (base.name !== 'alexnet-small' ? base.inputSize : o.dataset === 'fashion-mnist' ? 28 : 56);
  const preset = getPreset(base.name, { channels, inputSize });
  events.onPhase?.(`loading ${o.dataset}`);
  const splits = await loadSplits(o, src?.preprocess.resizeSize ?? (preset.resizeSize || base.resizeSize), channels, src?.preprocess.background);
  const numClasses = splits.train.classNames.length;
  let cfg = configFrom(o, splits, numClasses, inputSize, src);
  if (resumed) {
    // Resume continues the saved run; only the length and the fixed drops may be extended.
    cfg = { ...resumed.config, epochs: o.epochs, lrDrops: o.lrDrops.length > 0 ? o.lrDrops : resumed.config.lrDrops };
  }
  if (resumed && o.resumeLr !== undefined) resumed.state.lr = o.resumeLr;
  const trainer = new Trainer(cfg, splits.train, splits.val, resumed?.state);
  trainer.runArgs = runArgsOf(o);
  trainer.checkpointEvery = o.checkpointEvery ?? 0;
  onTrainer?.(trainer);
  try {
    if (resumed && o.resume) await trainer.loadCheckpoint(o.resume);
    else if (from) trainer.setWeights(sourceWeights(from.bytes, trainer.preset, o.seed, from.contract.labels, labelsOf(o, splits)));
    else trainer.initWeights();
    events.onPhase?.('training');
    const { stopped } = await trainer.run(o.checkpoint ?? o.resume, events);
    if (stopped) return { stopped, metrics: {}, trainer };
    const labels = labelsOf(o, splits);
    const contract = {
      name: o.name, modelVersion: o.modelVersion, labels,
      preprocess: src?.preprocess ?? {
        inputSize, resizeSize: trainer.preset.resizeSize, channels: splits.channels, scale: cfg.normalization.scale,
        mean: cfg.normalization.mean, std: cfg.normalization.std,
        // Fashion-MNIST garments sit on black; transparent uploads are flattened onto the same.
        background: (o.dataset === 'fashion-mnist' ? [0, 0, 0] : [255, 255, 255]) as [number, number, number],
      },
      source: src ? `finetune:${src.name}` : 'sightline-train',
    };
    const metrics: Record<string, number> = { epochs: trainer.state.epoch, train_seconds: Math.round(trainer.state.totalSeconds) };
    const last = trainer.state.history.at(-1);
    if (last?.valAccuracy !== undefined) metrics['val_top1_1crop'] = last.valAccuracy;
    const weights = trainer.weights();
    let test1: ClassifierMetrics | undefined;
    let test10: ClassifierMetrics | undefined;
    const evalSet = splits.test ?? splits.val;
    if (!o.skipEval && evalSet) {
      events.onPhase?.('evaluating the exported model (1 and 10 crops)');
      const tmp = join(tmpdir(), `sightline-eval-${process.pid}.onnx`);
      await writeFile(tmp, exportOnnx(trainer.preset, weights, contract, { fp16: o.fp16 }));
      const session = await createSession(tmp, { device: 'cpu', threads: o.workers });
      try {
        test1 = await evaluateClassifier(session, evalSet, 1, (d, t) => events.onEvalProgress?.(1, d, t));
        test10 = await evaluateClassifier(session, evalSet, 10, (d, t) => events.onEvalProgress?.(10, d, t));
      } finally {
        await session.close();
        await rm(tmp, { force: true });
      }
      const tag = splits.test ? 'test' : 'val';
      Object.assign(metrics, { [`${tag}_top1_1crop`]: test1.top1, [`${tag}_top1_10crop`]: test10.top1, [`${tag}_top5_10crop`]: test10.top5, [`${tag}_images`]: evalSet.n });
    }
    await mkdir(dirname(o.out), { recursive: true });
    await writeFile(o.out, exportOnnx(trainer.preset, weights, { ...contract, metrics }, { fp16: o.fp16 }));
    return { stopped: false, out: o.out, metrics, test1, test10, trainer };
  } finally {
    await trainer.close();
  }
}
