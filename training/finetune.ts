/**
 * Fine-tuning (`sightline train --from MODEL --dataset DIR`): teach a trained model the classes of
 * an image folder. The source's fc8 is replaced by one sized to the folder's classes; with
 * `--train-layers fc8` (the default) or `fc` the frozen layers' output is computed once per image
 * crop by onnxruntime on the source graph itself (so any AlexNet-style ONNX works: our exports,
 * imported torchvision / Caffe models, grouped convolutions included), the head trains on those
 * cached features, and the exported model is the source with its head's weights replaced: the
 * convolutions stay bit for bit, the contract keeps the source's preprocessing with the new labels.
 * `--train-layers all` loads a Sightline-preset source into the full trainer instead (training/run.ts).
 * With a checkpoint folder, each epoch is checkpointed and `--resume DIR` continues the run exactly
 * (head-checkpoint.ts).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseContract, type ModelContract, readContract, readDenseHead, replaceDenseLayers, createSession } from '../model/index.js';
import type { NamedWeights } from '../model/index.js';
import { useBackend } from './backend.js';
import { subset } from './data/dataset.js';
import { loadImageFolder, splitIndices } from './data/image-folder.js';
import { evaluateClassifier, type ClassifierMetrics } from './evaluate.js';
import { featureExtractor } from './features.js';
import { loadHeadCheckpoint, saveHeadCheckpoint } from './head-checkpoint.js';
import { newLastLayer, trainHead, type HeadEvents } from './head-trainer.js';
import { planSizes, TrainSizeError } from './options.js';
import { runArgsOf, type TrainOptions } from './run.js';
import type { EpochRecord } from './types.js';

/** Cached augmentation: every training image's 10 crops (corners + center, and their mirrors). */
const TRAIN_CROPS = 10;

export interface FinetuneEvents extends HeadEvents {
  onPhase?: (phase: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface FinetuneResult {
  out: string;
  contract: ModelContract;
  history: EpochRecord[];
  bestEpoch: number;
  val1?: ClassifierMetrics;
  val10?: ClassifierMetrics;
  /** The trained layers, tfjs layout (tests compare them with the exported graph). */
  trained: NamedWeights;
  seconds: { features: number; train: number; total: number };
}

export async function finetune(o: TrainOptions, events: FinetuneEvents = {}): Promise<FinetuneResult> {
  const t0 = performance.now();
  const layersToTrain = o.trainLayers ?? 'fc8';
  if (!o.from) throw new TrainSizeError('fine-tuning needs --from MODEL');
  if (layersToTrain === 'all') {
    throw new TrainSizeError('--train-layers all trains the whole network: it runs through trainModel (training/run.ts), not on cached features');
  }
  if ((o.randomErasing ?? 0) > 0) {
    throw new TrainSizeError(`--random-erasing ${o.randomErasing} needs --train-layers all: fc8 and fc train on features of cached crops, which cannot be erased`);
  }
  if (o.dataset === 'fashion-mnist') throw new TrainSizeError("--from fine-tunes on an image folder: pass --dataset DIR (ROOT/<class>/<image>), not 'fashion-mnist'");
  const source = new Uint8Array(await readFile(o.from));
  const src = await readContract(source);
  const head = readDenseHead(source);
  const trainable = layersToTrain === 'fc8' ? head.layers.slice(-1) : head.layers;
  const first = trainable[0];
  const last = head.layers.at(-1);
  if (!first || !last) throw new TrainSizeError(`'${o.from}' has no dense layers to fine-tune`);

  events.onPhase?.(`loading ${o.dataset} (the source's preprocessing: ${src.preprocess.channels}, ${src.preprocess.resizeSize} px)`);
  const { dataset } = await loadImageFolder(o.dataset, src.preprocess, { limit: o.limit, onProgress: events.onProgress });
  const classes = dataset.classNames;
  const sizes = planSizes(dataset.n, { ...o, val: o.val === 'test' ? { fraction: 0.1 } : o.val, batch: 'auto', workers: 1 });
  const split = splitIndices(dataset.n, sizes.valCount, o.seed);
  const train = subset(dataset, split.train);
  const val = split.val.length > 0 ? subset(dataset, split.val) : undefined;

  events.onPhase?.(`computing the frozen layers' features once (${train.n} training images × ${TRAIN_CROPS} crops${val ? `, ${val.n} validation images` : ''})`);
  const tf0 = performance.now();
  const fx = await featureExtractor(source, src, first.input, first.weights.wShape[0] ?? 0, o.workers);
  let trainF;
  let valF;
  try {
    trainF = await fx.features(train, TRAIN_CROPS, events.onProgress);
    valF = val ? await fx.features(val, 1) : undefined;
  } finally {
    await fx.close();
  }
  const featureSeconds = (performance.now() - tf0) / 1000;

  // Batch and warm-up are sized on the cached rows (10 per image), as a run over them is.
  const planned = planSizes(trainF.rows, { val: 0, batch: o.batch, warmupSteps: o.warmupSteps, epochs: o.epochs, workers: 1 });
  const init: NamedWeights = new Map(trainable.map((l) => [l.name, l.weights]));
  init.set(last.name, newLastLayer(last.weights.wShape[0] ?? 0, classes.length, o.seed));
  const order = trainable.map((l) => l.name);
  const resume = o.resume ? await loadHeadCheckpoint(o.resume, init, order, classes) : undefined;
  const checkpointDir = o.checkpoint;
  const args = runArgsOf(o);
  // A resumed run keeps its batch and warm-up (with `auto`, they would follow a changed --epochs).
  const rows = resume ? { batch: resume.state.batch, warmupSteps: resume.state.warmupSteps } : planned;
  const onEpochEnd = checkpointDir ? (r: Parameters<typeof saveHeadCheckpoint>[4]) => saveHeadCheckpoint(checkpointDir, args, classes, order, r) : undefined;
  events.onPhase?.(`training ${trainable.map((l) => l.name).join(', ')} on ${trainF.rows} cached rows (batch ${rows.batch}, warm-up ${rows.warmupSteps} steps)`);
  await useBackend(o.backend);
  const th0 = performance.now();
  const { weights, history, bestEpoch } = await trainHead(init, order, trainF, valF, {
    epochs: o.epochs, batch: rows.batch, lr: o.lr, minLr: o.minLr, patience: o.patience, warmupSteps: rows.warmupSteps, seed: o.seed, dropout: 0.5,
  }, { ...events, onEpochEnd }, resume);
  const trainSeconds = (performance.now() - th0) / 1000;

  const contract = (metrics: Record<string, number>): ModelContract =>
    parseContract(JSON.stringify({ ...src, name: o.name, modelVersion: o.modelVersion, labels: classes, metrics, source: `finetune:${src.name}` }), `${o.name} (fine-tuned)`);
  const metrics: Record<string, number> = { epochs: o.epochs, best_epoch: bestEpoch, train_seconds: Math.round(featureSeconds + trainSeconds), train_images: train.n };
  const exportWith = (m: Record<string, number>): Uint8Array => replaceDenseLayers(source, weights, contract(m), { fp16: o.fp16 });
  let val1: ClassifierMetrics | undefined;
  let val10: ClassifierMetrics | undefined;
  if (val && !o.skipEval) {
    events.onPhase?.('evaluating the exported model on the validation images (1 and 10 crops)');
    const tmp = join(tmpdir(), `sightline-finetune-${process.pid}.onnx`);
    await writeFile(tmp, exportWith(metrics));
    const session = await createSession(tmp, { device: 'cpu', threads: o.workers });
    try {
      val1 = await evaluateClassifier(session, val, 1);
      val10 = await evaluateClassifier(session, val, 10);
    } finally {
      await session.close();
      await rm(tmp, { force: true });
    }
    Object.assign(metrics, { val_top1_1crop: val1.top1, val_top1_10crop: val10.top1, val_images: val.n });
  }
  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, exportWith(metrics));
  return {
    out: o.out, contract: contract(metrics), history, bestEpoch, val1, val10, trained: weights,
    seconds: { features: featureSeconds, train: trainSeconds, total: (performance.now() - t0) / 1000 },
  };
}
