/**
 * Fine-tuning from an ONNX model (`train --from`): on a 3-class image folder built from the
 * Fashion-MNIST fixture, starting from a small exported model with fp16 weights, training fc8
 * lowers the loss; the exported model's new head computes what the tfjs head computes on the
 * source's features; every frozen initializer is the source's, byte for byte; the contract keeps
 * the source's preprocessing with the folder's labels.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { getPreset, smallPreset, type Preset } from '../../model/architecture.js';
import { makeCrops, batchLength } from '../../model/image/crops.js';
import { exportOnnx, readContract } from '../../model/onnx/index.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { createSession } from '../../model/session.js';
import { useBackend } from '../../training/backend.js';
import { FASHION_MNIST_LABELS } from '../../training/data/fashion-mnist.js';
import { loadImageFolder } from '../../training/data/image-folder.js';
import { featureExtractor } from '../../training/features.js';
import { finetune } from '../../training/finetune.js';
import { writeFashionFolder } from './fmnist-folder.js';
import { readPresetWeights } from '../../model/onnx/index.js';
import { sourceWeights, trainModel } from '../../training/run.js';
import { readCheckpointJson } from '../../training/checkpoint.js';
import { resumeOptions } from '../../cli/commands/train.js';
import { headForward, newLastLayer } from '../../training/head-trainer.js';
import { initWeights } from '../../training/network.js';
import type { TrainOptions } from '../../training/run.js';
import type { LayerWeights } from '../../model/weights.js';
import { relativeError } from '../model/onnx-checker.js';

const tmp = mkdtempSync(join(tmpdir(), 'sightline-finetune-'));
const folder = join(tmp, 'folder');
const sourcePath = join(tmp, 'source.onnx');
after(() => rmSync(tmp, { recursive: true, force: true }));

/** alexnet-small with narrow convolutions (fc6/fc7 stay 4096 wide): a fast source model. */
function narrowPreset(): Preset {
  const base = smallPreset(10, 1, 28);
  const widths = [16, 32, 32, 32, 32];
  let i = 0;
  return Object.freeze({ ...base, layers: base.layers.map((l) => (l.kind === 'conv' ? { ...l, filters: widths[i++] ?? 32 } : l)) });
}

const PRE = { inputSize: 28, resizeSize: 32, channels: 'gray' as const, scale: 1 / 255, mean: [0.29], std: [0.35], background: [0, 0, 0] as [number, number, number] };
const CLASSES: Record<number, string> = { 1: 'Trouser', 7: 'Sneaker', 8: 'Bag' };
const PER_CLASS = 10;

before(async () => {
  await useBackend('wasm');
  const p = narrowPreset();
  writeFileSync(sourcePath, exportOnnx(p, initWeights(p, 'he', 5), { name: 'source', modelVersion: '3', labels: FASHION_MNIST_LABELS, preprocess: PRE }, { fp16: true }));
  await writeFashionFolder(folder, 'train', CLASSES, PER_CLASS);
});

function loss(fc8: LayerWeights, x: Float32Array, rows: number, labels: Int32Array): number {
  return tf.tidy(() => {
    const logits = headForward([{ w: tf.tensor2d(fc8.w, fc8.wShape as [number, number]), b: tf.tensor1d(fc8.b) }], tf.tensor2d(x, [rows, x.length / rows]));
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), fc8.b.length), logits).dataSync()[0] ?? NaN;
  });
}

describe('train --from: fine-tuning the last layer on cached features', () => {
  it('lowers the loss, keeps frozen layers bit for bit and exports a head that matches tfjs', async (t) => {
    const out = join(tmp, 'tuned.onnx');
    const opts: TrainOptions = {
      preset: 'alexnet-small', dataset: folder, from: sourcePath, trainLayers: 'fc8', epochs: 4, batch: 'auto', lr: 0.01, minLr: 1e-5,
      patience: 3, lrDrops: [], warmupSteps: 'auto', init: 'paper', seed: 2, val: 0, workers: 2, backend: 'wasm', pcaStd: 0,
      out, fp16: false, name: 'tuned', modelVersion: '1', skipEval: true,
    };
    const res = await finetune(opts);
    const fc8 = res.trained.get('fc8');
    assert.ok(fc8);
    assert.deepEqual(fc8.wShape, [4096, 3]);
    assert.deepEqual([...res.trained.keys()], ['fc8'], 'only fc8 trains by default');

    // The contract: the source's preprocessing and io, the folder's labels.
    const contract = await readContract(out);
    const source = await readContract(sourcePath);
    assert.deepEqual(contract.labels, ['Bag', 'Sneaker', 'Trouser']);
    assert.deepEqual(contract.preprocess, source.preprocess);
    assert.deepEqual(contract.io, source.io);
    assert.equal(contract.source, 'finetune:source');

    // Frozen layers: every initializer the source still uses is in the export with the same bytes.
    const src = decodeModel(readFileSync(sourcePath)).graph?.initializer ?? [];
    const dst = new Map((decodeModel(readFileSync(out)).graph?.initializer ?? []).map((i) => [i.name, i]));
    const frozen = src.filter((i) => !(i.name ?? '').startsWith('fc8.'));
    assert.equal(frozen.length, 14, 'conv1–conv5, fc6, fc7: weight and bias each');
    for (const init of frozen) {
      const copy = dst.get(init.name);
      assert.ok(copy, `${init.name} is kept`);
      assert.ok(Buffer.from(copy.rawData ?? []).equals(Buffer.from(init.rawData ?? [])), `${init.name} unchanged`);
    }
    assert.ok(!dst.has('fc8.weight.fp16'), "the replaced layer's old weights are gone");

    // Center crops of every folder image → the source's fc7 embedding (onnxruntime) → the tfjs head.
    const { dataset } = await loadImageFolder(folder, source.preprocess);
    const per = dataset.size * dataset.size;
    const crops = new Float32Array(dataset.n * batchLength(source.preprocess, 1));
    for (let i = 0; i < dataset.n; i++) {
      const square = { data: dataset.pixels.subarray(i * per, (i + 1) * per), size: dataset.size, channels: 1 as const, order: 'gray' as const, width: 32, height: 32, format: 'png' as const };
      makeCrops(square, source.preprocess, 1, crops.subarray(i * 784, (i + 1) * 784));
    }
    const fx = await featureExtractor(readFileSync(sourcePath), source, 'embedding', 4096, 2);
    const feats = await fx.features(dataset, 1);
    await fx.close();
    const before = loss(newLastLayer(4096, 3, opts.seed), feats.x, feats.rows, feats.labels);
    const afterLoss = loss(fc8, feats.x, feats.rows, feats.labels);
    t.diagnostic(`center-crop loss on the ${dataset.n} folder images: ${before.toFixed(4)} → ${afterLoss.toFixed(4)}`);
    assert.ok(afterLoss < before * 0.8, `loss ${before.toFixed(4)} → ${afterLoss.toFixed(4)}`);

    const tfLogits = tf.tidy(() => headForward([{ w: tf.tensor2d(fc8.w, [4096, 3]), b: tf.tensor1d(fc8.b) }], tf.tensor2d(feats.x, [feats.rows, 4096])).dataSync());
    const session = await createSession(out, { device: 'cpu', threads: 2 });
    try {
      const { logits } = await session.run(crops, dataset.n);
      const err = relativeError(logits, Float32Array.from(tfLogits));
      t.diagnostic(`exported head vs tfjs: relative error ${err.toExponential(2)}`);
      assert.ok(err <= 1e-4, `relative error ${err.toExponential(2)}`);
    } finally {
      await session.close();
    }
  });

  it('a checkpointed fine-tune resumed from its checkpoint ends where an uninterrupted run ends; another dataset is refused', async () => {
    const base: TrainOptions = {
      preset: 'alexnet-small', dataset: folder, from: sourcePath, trainLayers: 'fc8', epochs: 3, batch: 'auto', lr: 0.01, minLr: 1e-5,
      patience: 1, lrDrops: [], warmupSteps: 2, init: 'paper', seed: 3, val: 6, workers: 2, backend: 'wasm', pcaStd: 0,
      out: join(tmp, 'r.onnx'), fp16: false, name: 'r', modelVersion: '1', skipEval: true,
    };
    const whole = await finetune({ ...base, checkpoint: join(tmp, 'ck-whole') });
    const ck = join(tmp, 'ck-part');
    await finetune({ ...base, epochs: 1, checkpoint: ck });
    const saved = await readCheckpointJson(ck);
    assert.equal(saved.kind, 'head');
    assert.equal(saved.args?.dataset, folder, 'the checkpoint records the run');
    const ran: number[] = [];
    const resumed = await finetune({ ...base, resume: ck, checkpoint: ck }, { onEpoch: (r) => ran.push(r.epoch) });
    assert.deepEqual(ran, [2, 3], 'the resumed run trains only the epochs the checkpoint had not done');
    assert.equal(resumed.history.length, 3);
    assert.deepEqual(resumed.history.map((h) => [h.trainLoss, h.valAccuracy, h.lr]), whole.history.map((h) => [h.trainLoss, h.valAccuracy, h.lr]));
    assert.equal(resumed.bestEpoch, whole.bestEpoch);
    const a = whole.trained.get('fc8');
    const b = resumed.trained.get('fc8');
    assert.ok(a && b && Buffer.from(a.w.buffer).equals(Buffer.from(b.w.buffer)) && Buffer.from(a.b.buffer).equals(Buffer.from(b.b.buffer)), 'same weights bit for bit');

    // The CLI refuses a conflicting --dataset, naming what the checkpoint holds ...
    const flags = {
      preset: 'alexnet-small', dataset: '/data/other', epochs: '30', batch: 'auto', lr: '0.01', minLr: '0.00001', patience: '3', lrDrops: '',
      warmup: 'auto', init: 'paper', seed: '1', val: '10%', workers: '2', backend: 'wasm', pcaStd: '0.1', randomErasing: '0', fp16: false, modelVersion: '1', trainLayers: 'fc8',
      checkpointEvery: '0', resume: ck,
    };
    await assert.rejects(resumeOptions(flags, (a) => a === 'dataset'), /--dataset \/data\/other \(the checkpoint holds --dataset .*folder\)/);
    const alone = await resumeOptions(flags, () => false);
    assert.deepEqual([alone.from, alone.trainLayers, alone.dataset], [sourcePath, 'fc8', folder], '--resume alone continues the fine-tune');
    // ... and the library a folder of other classes, or a full-trainer resume of a head checkpoint.
    const other = join(tmp, 'other');
    await writeFashionFolder(other, 'train', { 0: 'T-shirt', 1: 'Trouser' }, 5);
    await assert.rejects(finetune({ ...base, dataset: other, val: 2, resume: ck }), /was trained on the classes Bag, Sneaker, Trouser; the dataset has T-shirt, Trouser/);
    await assert.rejects(trainModel({ ...base, trainLayers: 'all', resume: ck }), /is a fine-tune of the dense layers/);
  });

  it('refuses what it cannot do, naming the flag', async () => {
    const base: TrainOptions = {
      preset: 'alexnet-small', dataset: folder, from: sourcePath, trainLayers: 'all', epochs: 1, batch: 'auto', lr: 0.01, minLr: 1e-5,
      patience: 3, lrDrops: [], warmupSteps: 'auto', init: 'paper', seed: 2, val: 0, workers: 2, backend: 'wasm', pcaStd: 0,
      out: join(tmp, 'x.onnx'), fp16: false, name: 'x', modelVersion: '1', skipEval: true,
    };
    await assert.rejects(finetune(base), /--train-layers all trains the whole network/);
    await assert.rejects(finetune({ ...base, trainLayers: 'fc8', dataset: 'fashion-mnist' }), /pass --dataset DIR/);
  });
});

describe('train --from --train-layers all: the whole network from the source weights', () => {
  // The small preset at 20 px crops (from 23 px squares): the same layers, a quarter of the conv work.
  const p = getPreset('alexnet-small', { channels: 1, inputSize: 20 });
  const pre = { ...PRE, inputSize: 20, resizeSize: 23 };
  const path = join(tmp, 'source-small.onnx');

  it('reads back every layer of an exported model bit for bit (tfjs layout)', () => {
    const w = initWeights(p, 'he', 9);
    writeFileSync(path, exportOnnx(p, w, { name: 'small-source', modelVersion: '1', labels: FASHION_MNIST_LABELS, preprocess: pre }));
    const back = readPresetWeights(readFileSync(path), p);
    for (const [name, lw] of w) {
      const got = back.get(name);
      assert.ok(got, name);
      assert.deepEqual(got.wShape, lw.wShape, name);
      assert.ok(Buffer.from(got.w.buffer).equals(Buffer.from(lw.w.buffer)) && Buffer.from(got.b.buffer).equals(Buffer.from(lw.b.buffer)), `${name} round-trips`);
    }
    assert.throws(() => readPresetWeights(readFileSync(sourcePath), p), /Conv .* has weights \[16, 1, 5, 5\], preset 'alexnet-small' layer 'conv1' needs \[64, 1, 5, 5\]/);
  });

  it("keeps the source's fc8 when the dataset has the source's labels, else makes a new one", () => {
    const bytes = readFileSync(path);
    const same = sourceWeights(bytes, p, 1, FASHION_MNIST_LABELS, FASHION_MNIST_LABELS);
    const src = readPresetWeights(bytes, p);
    const fc8 = same.get('fc8');
    assert.ok(fc8 && Buffer.from(fc8.w.buffer).equals(Buffer.from((src.get('fc8')?.w as Float32Array).buffer)), 'continuing on the same classes keeps the trained classifier');
    const p3 = getPreset('alexnet-small', { channels: 1, inputSize: 20, numClasses: 3 });
    const other = sourceWeights(bytes, p3, 1, FASHION_MNIST_LABELS, ['Bag', 'Sneaker', 'Trouser']);
    assert.deepEqual(other.get('fc8')?.wShape, [4096, 3]);
    // Same count, other names (or order): a new layer too, the old one's rows mean other classes.
    const renamed = sourceWeights(bytes, p, 1, FASHION_MNIST_LABELS, [...FASHION_MNIST_LABELS].reverse());
    assert.ok(!Buffer.from((renamed.get('fc8')?.w as Float32Array).buffer).equals(Buffer.from((src.get('fc8')?.w as Float32Array).buffer)));
    assert.ok(Buffer.from((renamed.get('fc7')?.w as Float32Array).buffer).equals(Buffer.from((src.get('fc7')?.w as Float32Array).buffer)));
  });

  it('starts from the source, trains every layer and keeps the source preprocessing', async () => {
    const out = join(tmp, 'all.onnx');
    const res = await trainModel({
      preset: 'alexnet-small', dataset: folder, from: path, trainLayers: 'all', epochs: 1, batch: 8, lr: 0.001, minLr: 1e-5,
      patience: 3, lrDrops: [], warmupSteps: 0, init: 'he', seed: 4, val: 0, workers: 2, backend: 'wasm', pcaStd: 0,
      out, checkpoint: join(tmp, 'all-ckpt'), fp16: false, name: 'all', modelVersion: '1', skipEval: true,
    });
    assert.equal(res.stopped, false);
    const contract = await readContract(out);
    assert.deepEqual(contract.preprocess, pre);
    assert.deepEqual(contract.labels, ['Bag', 'Sneaker', 'Trouser']);
    assert.equal(contract.source, 'finetune:small-source');
    const source = readPresetWeights(readFileSync(path), p);
    const tuned = readPresetWeights(readFileSync(out), getPreset('alexnet-small', { channels: 1, inputSize: 20, numClasses: 3 }));
    for (const name of ['conv1', 'conv5', 'fc6', 'fc7']) {
      const a = source.get(name)?.w as Float32Array;
      const b = tuned.get(name)?.w as Float32Array;
      const err = relativeError(b, a);
      assert.ok(err > 0 && err < 0.05, `${name}: trained from the source's weights (relative change ${err.toExponential(2)})`);
    }
    assert.deepEqual(tuned.get('fc8')?.wShape, [4096, 3]);
  });
});
