/**
 * The autoencoder that turns fc7 embeddings into B-bit binary codes, in TensorFlow.js.
 *
 *   x (raw fc7) → normalize (L2, center, scale) → encoder (Dense+ReLU)* → Dense → z (B code logits)
 *   training:  u = sigmoid(z + ε), ε ~ N(0, σ²)      inference: bit = z > 0
 *   decoder (Dense+ReLU)* → Dense → x̂ ≈ normalized x           classifier: Dense(2u − 1) → class logits
 *
 * Binarization follows semantic hashing (Salakhutdinov & Hinton 2009): Gaussian noise added to the
 * code units' input during training only pays off when |z| is large, which drives the sigmoid to
 * 0/1, so the sign code at inference loses little. The auxiliary classification loss on the code
 * layer (as in supervised semantics-preserving hashing, Yang et al. 2017) puts class structure in
 * the codes: unsupervised codes of fc7 only match fc7 Euclidean retrieval, which the classifier's
 * own output beats. A balance term keeps every bit close to half on, half off over a batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerWeights } from '../model/index.js';
import { hashCenters } from './codes/centers.js';
import { NORM_EPSILON, type EncoderWeights, type Normalization } from './codes/export.js';
import { gaussianFill, mulberry32 } from './network.js';

export interface AutoencoderOptions {
  bits: number;
  /** Hidden widths of the encoder; the decoder mirrors them. */
  hidden: number[];
  epochs: number;
  batch: number;
  /** Adam learning rate. */
  lr: number;
  seed: number;
  /** σ of the noise added to the code logits during training. */
  noiseStd: number;
  /** Weight of the classification loss on the code layer (0 = unsupervised, or when there are no labels). */
  clsWeight: number;
  /** Weight of the hash-center term: codes pulled bit by bit to their class's center (codes/centers.ts). */
  centerWeight: number;
  /** Weight of the bit-balance term. */
  balanceWeight: number;
}

export const DEFAULT_AE: Omit<AutoencoderOptions, 'bits'> = {
  hidden: [512], epochs: 5, batch: 256, lr: 1e-3, seed: 1, noiseStd: 1, clsWeight: 1, centerWeight: 1, balanceWeight: 0.1,
};

export interface EmbeddingSet {
  /** n × dim raw fc7, row-major. */
  embeddings: Float32Array;
  n: number;
  dim: number;
  /** Class per row, for the classification loss (optional). */
  labels?: Int32Array;
  numClasses?: number;
}

interface Dense {
  w: tf.Variable;
  b: tf.Variable;
}

function denseInit(fin: number, fout: number, relu: boolean, rand: () => number): Dense {
  // He init ahead of a ReLU, Glorot for linear outputs.
  const std = relu ? Math.sqrt(2 / fin) : Math.sqrt(2 / (fin + fout));
  return { w: tf.variable(tf.tensor2d(gaussianFill(new Float32Array(fin * fout), std, rand), [fin, fout])), b: tf.variable(tf.zeros([fout])) };
}

function stack(x: tf.Tensor2D, layers: readonly Dense[]): tf.Tensor2D {
  let h = x;
  layers.forEach((l, i) => {
    h = tf.add(tf.matMul(h, l.w as tf.Tensor2D), l.b);
    if (i < layers.length - 1) h = tf.relu(h);
  });
  return h;
}

async function toWeights(layers: readonly Dense[]): Promise<LayerWeights[]> {
  return Promise.all(layers.map(async (l) => ({ w: new Float32Array(await l.w.data()), wShape: [...l.w.shape], b: new Float32Array(await l.b.data()) })));
}

/** Mean of the L2-normalized rows, and 1 / RMS of the centered values (see codes/export.ts). */
export function normalizationStats(set: EmbeddingSet): Normalization {
  const { n, dim, embeddings: e } = set;
  const mean = new Float64Array(dim);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (e[i * dim + j] as number) ** 2;
    inv[i] = 1 / Math.max(Math.sqrt(s), NORM_EPSILON);
    for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) + (e[i * dim + j] as number) * (inv[i] as number);
  }
  for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) / n;
  let sq = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) sq += ((e[i * dim + j] as number) * (inv[i] as number) - (mean[j] as number)) ** 2;
  const rms = Math.sqrt(sq / (n * dim));
  return { mean: Float32Array.from(mean), scale: rms > 0 ? 1 / rms : 1 };
}

export interface StepResult {
  loss: number;
  rec: number;
  cls: number;
  /** Rows whose code-layer class prediction is right (0 without labels). */
  correct: number;
}

export class Autoencoder {
  readonly encoder: Dense[];
  readonly decoder: Dense[];
  readonly classifier: Dense | undefined;
  /** [classes, bits] 0/1 hash centers, when the center term is on. */
  private readonly centers: tf.Tensor2D | undefined;
  private readonly mean: tf.Tensor1D;
  private readonly scale: tf.Scalar;
  private readonly optimizer: tf.Optimizer;

  constructor(
    readonly dim: number,
    readonly opts: AutoencoderOptions,
    readonly norm: Normalization,
    readonly numClasses: number,
  ) {
    const rand = mulberry32(opts.seed);
    const widths = [dim, ...opts.hidden, opts.bits];
    this.encoder = widths.slice(1).map((w, i) => denseInit(widths[i] as number, w, i < widths.length - 2, rand));
    const back = [...widths].reverse();
    this.decoder = back.slice(1).map((w, i) => denseInit(back[i] as number, w, i < back.length - 2, rand));
    this.classifier = numClasses > 1 && opts.clsWeight > 0 ? denseInit(opts.bits, numClasses, false, rand) : undefined;
    this.centers = numClasses > 1 && opts.centerWeight > 0 ? tf.keep(tf.tensor2d(hashCenters(numClasses, opts.bits, opts.seed), [numClasses, opts.bits])) : undefined;
    this.mean = tf.keep(tf.tensor1d(norm.mean));
    this.scale = tf.keep(tf.scalar(norm.scale));
    this.optimizer = tf.train.adam(opts.lr);
  }

  /** The same normalization the exported graph applies. */
  normalize(x: tf.Tensor2D): tf.Tensor2D {
    const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(x), 1, true)), NORM_EPSILON);
    return tf.mul(tf.sub(tf.div(x, norm), this.mean), this.scale);
  }

  /** Code logits of n raw embeddings (deterministic, no noise): the function the ONNX graph computes. */
  codeLogits(embeddings: Float32Array, n: number): Float32Array {
    return tf.tidy(() => stack(this.normalize(tf.tensor2d(embeddings.subarray(0, n * this.dim), [n, this.dim])), this.encoder).dataSync() as Float32Array);
  }

  /** One Adam step on a batch; `noiseSeed` makes the code noise reproducible. */
  trainStep(batch: Float32Array, n: number, labels: Int32Array | undefined, noiseSeed: number): StepResult {
    const { bits, noiseStd, clsWeight, centerWeight, balanceWeight } = this.opts;
    let rec: tf.Scalar | undefined;
    let cls: tf.Scalar | undefined;
    let predicted: tf.Tensor1D | undefined;
    const vars = [...this.encoder, ...this.decoder, ...(this.classifier ? [this.classifier] : [])].flatMap((l) => [l.w, l.b]);
    const x = tf.tidy(() => this.normalize(tf.tensor2d(batch.subarray(0, n * this.dim), [n, this.dim])));
    const supervised = labels !== undefined && (this.classifier !== undefined || this.centers !== undefined);
    const y = supervised ? tf.tidy(() => tf.oneHot(tf.tensor1d(labels.subarray(0, n), 'int32'), this.numClasses).toFloat()) : undefined;
    const cost = this.optimizer.minimize(() => {
      const z = stack(x, this.encoder);
      const noisy = noiseStd > 0 ? tf.add(z, tf.randomNormal([n, bits], 0, noiseStd, 'float32', noiseSeed)) : z;
      const u = tf.sigmoid(noisy);
      const code = tf.sub(tf.mul(u, 2), 1) as tf.Tensor2D;
      const r = tf.mean(tf.square(tf.sub(stack(code, this.decoder), x))) as tf.Scalar;
      let loss: tf.Scalar = r;
      if (balanceWeight > 0) loss = tf.add(loss, tf.mul(tf.mean(tf.square(tf.sub(tf.mean(u, 0), 0.5))), balanceWeight));
      let c: tf.Scalar | undefined;
      if (this.classifier && y) {
        const logits = stack(code, [this.classifier]);
        const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        loss = tf.add(loss, tf.mul(ce, clsWeight));
        c = ce;
        predicted = tf.keep(tf.argMax(logits, 1) as tf.Tensor1D);
      }
      if (this.centers && y) {
        const bce = tf.losses.sigmoidCrossEntropy(tf.matMul(y, this.centers), noisy) as tf.Scalar;
        loss = tf.add(loss, tf.mul(bce, centerWeight));
        c = c ? (tf.add(c, bce) as tf.Scalar) : bce;
        // Without a softmax head, the class of a code is its nearest center.
        predicted ??= tf.keep(tf.argMax(tf.matMul(code, tf.sub(tf.mul(this.centers, 2), 1), false, true), 1) as tf.Tensor1D);
      }
      if (c) cls = tf.keep(c);
      rec = tf.keep(r);
      return loss;
    }, true, vars);
    tf.dispose([x, ...(y ? [y] : [])]);
    const read = (t: tf.Tensor | undefined, fallback: number): number => (t ? (t.dataSync()[0] ?? fallback) : fallback);
    const out: StepResult = { loss: read(cost ?? undefined, NaN), rec: read(rec, NaN), cls: read(cls, 0), correct: 0 };
    if (predicted && labels) {
      const p = predicted.dataSync();
      for (let i = 0; i < n; i++) if (p[i] === labels[i]) out.correct++;
    }
    for (const t of [cost, rec, cls, predicted]) t?.dispose();
    return out;
  }

  async encoderWeights(): Promise<EncoderWeights> {
    return { norm: this.norm, layers: await toWeights(this.encoder) };
  }

  async decoderWeights(): Promise<LayerWeights[]> {
    return toWeights(this.decoder);
  }

  dispose(): void {
    const all = [...this.encoder, ...this.decoder, ...(this.classifier ? [this.classifier] : [])];
    tf.dispose(all.flatMap((l) => [l.w, l.b]));
    tf.dispose([this.mean, this.scale, ...(this.centers ? [this.centers] : [])]);
    this.optimizer.dispose();
  }
}
