/**
 * The training loop on real data (the Fashion-MNIST fixture): a tiny trainModel run lowers the
 * loss and exports an ONNX that computes what the tfjs network computes; a run stopped and resumed
 * from its checkpoint (mid-epoch, and at an epoch's end with the epoch's validation and schedule
 * still to do) ends bit-for-bit where an uninterrupted run ends; the same seed gives the same weights.
 *
 * Every Trainer starts two worker threads (tfjs + wasm each), which dominates these tests, so the
 * runs are few and short: batch 8–16, ≤ 8 steps. The resume chain uses the small preset at 20 px
 * crops (same layers, smaller conv maps) to halve the convolution work.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { getPreset, type Preset } from '../../model/architecture.js';
import { readContract } from '../../model/onnx/index.js';
import type { NamedWeights } from '../../model/weights.js';
import { fillBatch, type Normalization } from '../../training/augment.js';
import { useBackend } from '../../training/backend.js';
import { CHECKPOINT_FORMAT, loadCheckpointArrays, readCheckpointData, saveCheckpoint, type CheckpointData } from '../../training/checkpoint.js';
import type { SquareDataset } from '../../training/data/dataset.js';
import { FASHION_MNIST_LABELS, loadFashionMnist } from '../../training/data/fashion-mnist.js';
import { forward, initWeights, paramsFromWeights } from '../../training/network.js';
import { trainModel, type TrainOptions } from '../../training/run.js';
import { epochOrder, initialState, mixSeed, scheduleAfterEpoch, Trainer } from '../../training/trainer.js';
import type { TrainConfig } from '../../training/types.js';
import { relativeError, runOrt } from '../model/onnx-checker.js';

const FIXTURE = new URL('../fixtures/fashion-mnist', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'sightline-trainer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  await useBackend('wasm');
});

function smallConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    preset: { name: 'alexnet-small', numClasses: 10, channels: 1, inputSize: 20 },
    epochs: 2, batch: 8, lr: 0.005, minLr: 1e-5, patience: 1, lrDrops: [], warmupSteps: 2, init: 'he', seed: 7,
    momentum: 0.9, weightDecay: 0.0005, workers: 2, backend: 'wasm', pcaStd: 0,
    normalization: { scale: 1 / 255, mean: [0.29], std: [0.35] },
    ...over,
  };
}

/** Center crops of `count` images, normalized: the tfjs input (NHWC) and its NCHW twin for onnxruntime. */
function centerBatch(ds: SquareDataset, p: Preset, norm: Normalization, count: number): { nhwc: Float32Array; nchw: Float32Array } {
  const s = p.inputSize;
  const nhwc = new Float32Array(count * s * s);
  fillBatch(ds, { indices: Array.from({ length: count }, (_, i) => i), inputSize: s, augment: false, rand: () => 0 }, norm, nhwc);
  // One channel: NHWC and NCHW hold the same values in the same order.
  return { nhwc, nchw: nhwc.slice() };
}

async function tfjsOutputs(p: Preset, weights: NamedWeights, nhwc: Float32Array, n: number, labels?: Int32Array): Promise<{ logits: Float32Array; embedding: Float32Array; loss: number }> {
  const params = paramsFromWeights(weights);
  const x = tf.tensor4d(nhwc, [n, p.inputSize, p.inputSize, p.channels]);
  const out = forward(p, params, x, { training: false });
  const loss = labels ? tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), p.numClasses), out.logits) : tf.scalar(NaN);
  const res = { logits: Float32Array.from(await out.logits.data()), embedding: Float32Array.from(await out.embedding.data()), loss: (await loss.data())[0] ?? NaN };
  tf.dispose([x, out.logits, out.embedding, loss, ...[...params.values()].flatMap((l) => [l.w, l.b])]);
  return res;
}

function differing(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

describe('trainer helpers', () => {
  it('epochOrder is a seeded permutation that changes with seed and epoch', () => {
    const a = epochOrder(50, 1, 0);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(epochOrder(50, 1, 0), a);
    assert.notDeepEqual(epochOrder(50, 1, 1), a);
    assert.notDeepEqual(epochOrder(50, 2, 0), a);
  });

  it('mixSeed depends on every part and on their order', () => {
    assert.equal(mixSeed(1, 2, 3), mixSeed(1, 2, 3));
    assert.notEqual(mixSeed(1, 2, 3), mixSeed(1, 3, 2));
    assert.notEqual(mixSeed(1, 2, 3), mixSeed(1, 2, 4));
    assert.ok(Number.isInteger(mixSeed(4e9, -1)) && mixSeed(4e9, -1) >= 0);
  });

  it('scheduleAfterEpoch: fixed drops, plateau drops after `patience` epochs, floor at minLr', () => {
    const cfg = smallConfig({ lr: 0.01, patience: 2, lrDrops: [3], minLr: 0.0005 });
    const s = initialState(cfg);
    scheduleAfterEpoch(cfg, s, 0.5); // end of epoch 1: improvement
    assert.deepEqual([s.lr, s.bestValError, s.badEpochs], [0.01, 0.5, 0]);
    s.epoch = 1;
    scheduleAfterEpoch(cfg, s, 0.6); // end of epoch 2: worse, and epoch 3 is a fixed drop
    assert.deepEqual([s.lr, s.badEpochs], [0.001, 1]);
    s.epoch = 2;
    scheduleAfterEpoch(cfg, s, 0.55); // second epoch without improvement: plateau drop, floored
    assert.deepEqual([s.lr, s.badEpochs], [0.0005, 0]);
    scheduleAfterEpoch(cfg, s, undefined); // no validation set: only fixed drops apply
    assert.equal(s.lr, 0.0005);
  });

  it('the constructor rejects a batch the workers cannot share and a dataset smaller than a batch', async () => {
    const train = await loadFashionMnist('train', { dir: FIXTURE, size: 23, limit: 12 });
    assert.throws(() => new Trainer(smallConfig({ batch: 9 }), train, undefined), /--batch 9 must be a multiple of the worker count 2/);
    assert.throws(() => new Trainer(smallConfig({ batch: 16 }), train, undefined), /has 12 images, fewer than one batch of 16/);
  });
});

describe('checkpoint files', () => {
  const data = (): CheckpointData => ({ format: CHECKPOINT_FORMAT, config: smallConfig(), state: initialState(smallConfig()) });

  it('round-trip the arrays and the state, including a best validation error of Infinity', async () => {
    const dir = join(tmp, 'roundtrip');
    const params = Float32Array.of(1.5, -2, 3e-8);
    const velocity = Float32Array.of(0, 0.25, -1);
    await saveCheckpoint(dir, data(), params, velocity);
    await saveCheckpoint(dir, { ...data(), state: { ...initialState(smallConfig()), step: 2 } }, params, velocity);
    const back = await readCheckpointData(dir);
    assert.equal(back.state.bestValError, Infinity, 'JSON stores Infinity as null; it must come back as Infinity');
    assert.equal(back.state.step, 2, 'the second save replaced the first');
    assert.deepEqual(back.config, smallConfig());
    const p = new Float32Array(3);
    const v = new Float32Array(3);
    await loadCheckpointArrays(dir, p, v);
    assert.deepEqual([p, v], [params, velocity]);
    await assert.rejects(loadCheckpointArrays(dir, new Float32Array(4), v), /holds 3 values, the model needs 4/);
  });

  it('name what is wrong with a folder that is not a checkpoint or has another format', async () => {
    await assert.rejects(readCheckpointData(join(tmp, 'nowhere')), /'.*nowhere' is not a checkpoint: .*state\.json is missing/);
    const dir = join(tmp, 'future');
    await saveCheckpoint(dir, { ...data(), format: 99 }, new Float32Array(1), new Float32Array(1));
    await assert.rejects(readCheckpointData(dir), /has format 99, expected 1/);
  });
});

describe('trainModel: a tiny run on the fixture', () => {
  it('lowers the loss and exports an ONNX whose outputs match the tfjs network', async (t) => {
    const opts: TrainOptions = {
      preset: 'alexnet-small', dataset: 'fashion-mnist', dataDir: FIXTURE, epochs: 2, batch: 16, lr: 0.003, minLr: 1e-5,
      patience: 3, lrDrops: [], warmupSteps: 2, init: 'he', seed: 3, limit: 64, val: 0, workers: 2, backend: 'wasm', pcaStd: 0,
      out: join(tmp, 'tiny.onnx'), checkpoint: join(tmp, 'tiny-ckpt'), checkpointEvery: 3, fp16: false, name: 'tiny', modelVersion: '1', skipEval: true,
    };
    const steps: number[] = [];
    const checkpoints: string[] = [];
    const onCheckpoint = (dir: string): void => {
      const { state } = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CheckpointData;
      checkpoints.push(`${state.epoch}:${state.step}`);
    };
    const res = await trainModel(opts, { onStep: (p) => steps.push(p.step), onCheckpoint });
    assert.equal(res.stopped, false);
    assert.equal(res.out, opts.out);
    assert.deepEqual(steps, [1, 2, 3, 4, 1, 2, 3, 4], '64 images at batch 16: 4 steps per epoch, 2 epochs');
    assert.deepEqual(checkpoints, ['0:3', '1:0', '1:3', '2:0'], '--checkpoint-every 3: after step 3 of each epoch, and at each epoch end');
    const { trainer } = res;
    assert.equal(trainer.state.epoch, 2);
    assert.equal(trainer.state.history.length, 2);

    // Loss of the center crops of the training images: initial (same seed) vs trained weights.
    const p = trainer.preset;
    const n = trainer.train.n;
    const { nhwc, nchw } = centerBatch(trainer.train, p, trainer.cfg.normalization, n);
    const before = await tfjsOutputs(p, initWeights(p, 'he', opts.seed), nhwc, n, trainer.train.labels);
    const trained = await tfjsOutputs(p, trainer.weights(), nhwc, n, trainer.train.labels);
    t.diagnostic(`center-crop loss on the ${n} training images: ${before.loss.toFixed(4)} → ${trained.loss.toFixed(4)}`);
    assert.ok(Number.isFinite(trained.loss) && trained.loss < before.loss * 0.9, `loss ${before.loss.toFixed(4)} → ${trained.loss.toFixed(4)}`);

    // The exported file carries the trained weights: onnxruntime on NCHW = tfjs on NHWC.
    const k = 8;
    const ort = await runOrt(readFileSync(opts.out), { images: { data: nchw.subarray(0, k * p.inputSize ** 2), dims: [k, 1, p.inputSize, p.inputSize] } }, ['logits', 'embedding']);
    const logitsErr = relativeError(ort['logits'] as Float32Array, trained.logits.subarray(0, k * 10));
    const embErr = relativeError(ort['embedding'] as Float32Array, trained.embedding.subarray(0, k * 4096));
    t.diagnostic(`onnxruntime vs tfjs relative error: logits ${logitsErr.toExponential(2)}, embedding ${embErr.toExponential(2)}`);
    assert.ok(logitsErr <= 1e-4, `logits relative error ${logitsErr.toExponential(2)}`);
    assert.ok(embErr <= 1e-4, `embedding relative error ${embErr.toExponential(2)}`);

    const contract = await readContract(opts.out);
    assert.deepEqual(contract.labels, FASHION_MNIST_LABELS);
    assert.equal(contract.preprocess.inputSize, 28);
    assert.equal(contract.preprocess.resizeSize, 32);
    assert.deepEqual(contract.preprocess.mean, trainer.cfg.normalization.mean);
    assert.equal(contract.metrics['epochs'], 2);
    assert.equal(contract.source, 'sightline-train');
    // The epoch-end checkpoint holds the final state.
    const ckpt = await readCheckpointData(opts.checkpoint as string);
    assert.equal(ckpt.state.epoch, 2);
    // ... and the run's arguments, so that `--resume DIR` alone can continue it.
    const { checkpoint: _c, skipEval: _s, ...recorded } = opts;
    assert.deepEqual(ckpt.args, recorded);
  });
});

describe('resume and determinism', () => {
  let train: SquareDataset;
  let val: SquareDataset;

  before(async () => {
    // 20 px crops come from squares of round(20 · 256 / 224) = 23 px.
    const all = await loadFashionMnist('train', { dir: FIXTURE, size: 23, limit: 24 });
    train = { ...all, n: 16, pixels: all.pixels.subarray(0, 16 * 23 * 23), labels: all.labels.subarray(0, 16) };
    val = { ...all, n: 8, pixels: all.pixels.subarray(16 * 23 * 23), labels: all.labels.subarray(16) };
  });

  /** Runs a fresh or resumed trainer, checkpointing into `dir`, stopping after global step `stopAt` (1-based) if given. */
  async function runTo(cfg: TrainConfig, dir: string | undefined, resumeFrom: string | undefined, stopAt?: number, snapshotAt: number[] = []): Promise<{ params: Float32Array; snapshots: Map<number, Float32Array>; stopped: boolean }> {
    const data = resumeFrom ? await readCheckpointData(resumeFrom) : undefined;
    const t = new Trainer(data?.config ?? cfg, train, val, data?.state);
    const snapshots = new Map<number, Float32Array>();
    try {
      if (resumeFrom) await t.loadCheckpoint(resumeFrom);
      else t.initWeights();
      const { stopped } = await t.run(dir, {
        onStep: (s) => {
          const global = (s.epoch - 1) * s.steps + s.step;
          if (snapshotAt.includes(global)) snapshots.set(global, t.params.slice());
          if (global === stopAt) t.requestStop();
        },
      });
      return { params: t.params.slice(), snapshots, stopped };
    } finally {
      await t.close();
    }
  }

  it('stopping mid-epoch and at an epoch end, then resuming, ends with the same weights bit for bit', async () => {
    const cfg = smallConfig();
    // 16 images at batch 8: 2 steps per epoch, 4 in all.
    // No checkpoints for the reference run: each is ~190 MB of weights and momentum.
    const straight = await runTo(cfg, undefined, undefined, undefined, [1, 2]);
    assert.equal(straight.stopped, false);

    // Stop after step 1 (mid-epoch 1).
    const first = await runTo(cfg, join(tmp, 'a'), undefined, 1);
    assert.equal(first.stopped, true);
    const saved = await readCheckpointData(join(tmp, 'a'));
    assert.deepEqual([saved.state.epoch, saved.state.step], [0, 1]);
    assert.equal(differing(first.params, straight.snapshots.get(1) as Float32Array), 0, 'same seed, same weights after a step');

    // Resume mid-epoch; stop after step 2, the epoch's last, before its validation and schedule run.
    const second = await runTo(cfg, join(tmp, 'b'), join(tmp, 'a'), 2);
    assert.equal(second.stopped, true);
    assert.equal(differing(second.params, straight.snapshots.get(2) as Float32Array), 0, 'resumed mid-epoch: same weights after step 2');

    // Resume across the epoch boundary and finish.
    const third = await runTo(cfg, join(tmp, 'c'), join(tmp, 'b'));
    assert.equal(third.stopped, false);
    const done = await readCheckpointData(join(tmp, 'c'));
    assert.equal(done.state.epoch, 2);
    assert.equal(differing(third.params, straight.params), 0, 'resumed across the epoch boundary: same final weights');
    assert.ok(differing(third.params, straight.snapshots.get(2) as Float32Array) > 0, 'the last steps did change the weights');
  });

  it('another seed starts from other weights', () => {
    const p = getPreset('alexnet-small', { channels: 1, inputSize: 20 });
    const a = initWeights(p, 'he', 1);
    const b = initWeights(p, 'he', 2);
    assert.notDeepEqual(a.get('conv1')?.w, b.get('conv1')?.w);
  });
});
