/**
 * The AlexNet forward pass in TensorFlow.js, built from the same preset the ONNX exporter walks.
 * Functional style (explicit weight tensors, no tf.layers) so that training can keep weights in
 * tf.Variables, average gradients across worker threads and apply the paper's own SGD rule.
 *
 * Layouts are tfjs-native: activations NHWC, conv kernels HWIO [k, k, in, out], dense [in, out].
 * The exporter converts them to ONNX's NCHW / OIHW (see model/onnx/export.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { Preset, NamedWeights } from '../model/index.js';
import { groupsOf, kernelShape, layerShapes } from '../model/index.js';

export type InitScheme = 'paper' | 'he';

export interface LayerParams {
  w: tf.Tensor;
  b: tf.Tensor;
  /**
   * Dense layers only, optional: a transposed copy of w ([units, in]), a constant (no gradient).
   * With it the forward product runs with the large weight matrix as XNNPACK's input operand
   * (see denseViaTransposed).
   */
  wT?: tf.Tensor;
}
export type Params = Map<string, LayerParams>;

/** Deterministic PRNG (mulberry32) so that init and augmentation are reproducible from a seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples by Box–Muller from a seeded uniform source. */
export function gaussianFill(out: Float32Array, std: number, rand: () => number): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/**
 * Initial weights as plain arrays (tfjs layout).
 * `paper`: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere.
 * `he`: N(0, sqrt(2 / fan_in)) weights, biases 0 except fc8 — trains much faster on small data.
 */
export function initWeights(preset: Preset, scheme: InitScheme, seed: number): NamedWeights {
  const rand = mulberry32(seed);
  const out: NamedWeights = new Map();
  for (const ls of layerShapes(preset)) {
    const { layer } = ls;
    // Fan-in = every kernel dim but the last (a grouped conv's filter sees only cin / groups channels).
    const shape = kernelShape(ls);
    const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const std = scheme === 'paper' ? 0.01 : Math.sqrt(2 / fanIn);
    const size = shape.reduce((a, b) => a * b, 1);
    const w = gaussianFill(new Float32Array(size), std, rand);
    const units = layer.kind === 'conv' ? layer.filters : layer.units;
    const b = new Float32Array(units).fill(scheme === 'paper' ? layer.biasInit : 0);
    out.set(layer.name, { w, wShape: shape, b });
  }
  return out;
}

export function paramsFromWeights(weights: NamedWeights): Params {
  const params: Params = new Map();
  for (const [name, { w, wShape, b }] of weights) {
    params.set(name, { w: tf.tensor(w, wShape), b: tf.tensor1d(b) });
  }
  return params;
}

export interface ForwardOptions {
  training: boolean;
  /** Seed for this step's dropout masks (training only). */
  dropoutSeed?: number;
}

export interface ForwardResult {
  logits: tf.Tensor2D;
  /** fc7 after ReLU (dropout is not applied to what we return). */
  embedding: tf.Tensor2D;
}

/**
 * A grouped convolution from dense ones (tfjs conv2d has no groups): the input's channels and the
 * HWIO kernel's output filters are split into `groups` slices, slice g convolves with slice g, and
 * the results are concatenated along channels, giving filters in the same order as ONNX `group`.
 * split/concat/conv2d all have gradients, so training backpropagates through it unchanged.
 */
export function groupedConv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, groups: number): tf.Tensor4D {
  const padding = pad === 0 ? 'valid' : ([[0, 0], [pad, pad], [pad, pad], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]);
  if (groups === 1) return tf.conv2d(x, w, stride, padding);
  const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
  const ws = tf.split(w, groups, 3) as tf.Tensor4D[];
  return tf.concat4d(
    xs.map((xg, g) => tf.conv2d(xg, ws[g] as tf.Tensor4D, stride, padding)),
    3,
  );
}

/**
 * x·W for a dense layer, given also Wᵀ. XNNPACK multiplies an input matrix by a "weights" matrix
 * that it first packs, and walks the packed weights once per few input rows. For x·W that is the
 * 4096×4096 W (64 MB: packed afresh every step, since the weights are new tensors each step, and
 * streamed from memory about batch/4 times) for a 64-row x. Computing (Wᵀ·xᵀ)ᵀ instead makes W the
 * input, read once, and the small xᵀ the packed operand: measured 2–3× less time for fc7's forward.
 * The gradients are the ones tfjs derives for x·W (dx = dy·Wᵀ, dW = xᵀ·dy), so training is unchanged.
 */
export function denseViaTransposed(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad<tf.Tensor2D>((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([xi, wi]);
    // transposeB on Wᵀ: the BatchMatMul kernel (training/kernels/batch-matmul.ts) takes the
    // swapped form (Wᵀ·xᵀ)ᵀ, which only transposes the small x and output.
    return {
      value: tf.matMul(xi, wT, false, true),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(dy, ws, false, true), tf.matMul(xs, dy, true, false)];
      },
    };
  });
  return f(x, w);
}

/** x: NHWC float32, already normalized per the preprocessing contract. */
export function forward(preset: Preset, params: Params, x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
  let h: tf.Tensor = x;
  let embedding: tf.Tensor2D | undefined;
  let dropIndex = 0;
  for (const layer of preset.layers) {
    const p = params.get(layer.name);
    if (!p) throw new Error(`missing parameters for layer '${layer.name}'`);
    if (layer.kind === 'conv') {
      h = groupedConv2d(h as tf.Tensor4D, p.w as tf.Tensor4D, layer.stride, layer.pad, groupsOf(layer));
      h = tf.relu(tf.add(h, p.b));
      if (layer.lrn) {
        // tfjs LRN: x / (bias + alpha * sum_{c-r..c+r} x²)^beta — alpha is not divided by the
        // window, exactly the paper's formula with k=2, n=5 (radius 2), α=1e-4, β=0.75.
        const { size, bias, alpha, beta } = preset.lrn;
        h = tf.localResponseNormalization(h as tf.Tensor4D, (size - 1) / 2, bias, alpha, beta);
      }
      if (layer.pool) h = tf.maxPool(h as tf.Tensor4D, preset.pool.size, preset.pool.stride, 'valid');
    } else {
      if (h.rank !== 2) h = tf.reshape(h, [h.shape[0] ?? -1, -1]);
      const product = p.wT
        ? denseViaTransposed(h as tf.Tensor2D, p.w as tf.Tensor2D, p.wT as tf.Tensor2D)
        : tf.matMul(h as tf.Tensor2D, p.w as tf.Tensor2D);
      h = tf.add(product, p.b);
      if (layer.hidden) {
        h = tf.relu(h);
        if (layer.name === 'fc7') embedding = h as tf.Tensor2D;
        if (opts.training && preset.dropout > 0) {
          const seed = opts.dropoutSeed === undefined ? undefined : opts.dropoutSeed * 31 + dropIndex;
          h = tf.dropout(h, preset.dropout, undefined, seed);
        }
        dropIndex++;
      }
    }
  }
  if (!embedding) throw new Error(`preset '${preset.name}' has no fc7 layer`);
  return { logits: h as tf.Tensor2D, embedding };
}
