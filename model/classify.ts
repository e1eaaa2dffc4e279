/**
 * Classification and embedding of one image: decode once, cut 1 or 10 crops, run them as one
 * batch, average the softmax over the crops (Krizhevsky et al. 2012 average the predictions of the
 * ten patches), and average fc7 over the same crops for the embedding.
 */
import { checkCrops, checkIntOption } from './errors.js';
import { DEFAULT_OOD, oodVerdict } from './ood.js';
import type { ImageFormat } from './image/formats.js';
import { batchLength, makeCrops } from './image/crops.js';
import type { CropCount } from './image/crops.js';
import { decodeImage } from './image/decode.js';
import type { InferenceOutput, ModelSession } from './session.js';

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** Numerically stable softmax of one row, in float64. */
export function softmax(logits: ArrayLike<number>, offset = 0, k = logits.length - offset, out = new Float64Array(k)): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, logits[offset + j] ?? -Infinity);
  let sum = 0;
  for (let j = 0; j < k; j++) {
    const e = Math.exp((logits[offset + j] ?? -Infinity) - max);
    out[j] = e;
    sum += e;
  }
  for (let j = 0; j < k; j++) out[j] = (out[j] ?? 0) / sum;
  return out;
}

/** Mean over the n rows of [n, k] logits of each row's softmax. */
export function averageSoftmax(logits: ArrayLike<number>, n: number, k: number): Float64Array {
  if (logits.length < n * k) throw new RangeError(`'logits' holds ${logits.length} values, [${n}, ${k}] needs ${n * k}`);
  const mean = new Float64Array(k);
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    softmax(logits, i * k, k, row);
    for (let j = 0; j < k; j++) mean[j] = (mean[j] ?? 0) + (row[j] ?? 0) / n;
  }
  return mean;
}

/** Index of the largest value of row i (the lowest index on ties). */
export function rowArgmax(values: ArrayLike<number>, i: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if ((values[i * k + j] ?? -Infinity) > (values[i * k + best] ?? -Infinity)) best = j;
  return best;
}

/** The k most probable classes, most probable first; ties keep the lower index first. k is capped at the class count. */
export function topK(probs: ArrayLike<number>, k: number, labels: readonly string[]): Prediction[] {
  const order = Array.from({ length: probs.length }, (_, i) => i);
  order.sort((a, b) => (probs[b] ?? 0) - (probs[a] ?? 0) || a - b);
  return order.slice(0, Math.max(0, k)).map((index) => ({ label: labels[index] ?? String(index), index, probability: probs[index] ?? 0 }));
}

/** Mean of the n rows of an [n, d] matrix. */
export function meanRows(values: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[j] = (out[j] ?? 0) + (values[i * d + j] ?? 0);
  for (let j = 0; j < d; j++) out[j] = (out[j] ?? 0) / n;
  return out;
}

export function l2Norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] ?? 0) ** 2;
  return Math.sqrt(s);
}

export interface ImageInfo {
  width: number;
  height: number;
  format: ImageFormat;
}

export interface Timings {
  /** Decode, resize and crop/normalize. */
  decode: number;
  infer: number;
  total: number;
}

export interface Classification {
  predictions: Prediction[];
  /** The image looks like none of the labels: its `ood_score` is over the model's threshold (ood.ts). */
  unknown: boolean;
  /** Higher = further from the data the threshold was fitted on. */
  ood_score: number;
  crops: CropCount;
  /** How many of the `crops` crops have, on their own, the averaged top-1 label as their argmax. */
  agreement: number;
  /** Mean fc7 (after ReLU) over the crops. */
  embedding: Float32Array;
  /** Mean logits over the crops (what the out-of-distribution statistics read). */
  meanLogits: Float32Array;
  image: ImageInfo;
  timings_ms: Timings;
}

export interface Embedding {
  embedding: Float32Array;
  norm: number;
  crops: CropCount;
  image: ImageInfo;
  timings_ms: Timings;
}

export interface ImageOptions {
  crops: CropCount;
  maxPixels: number;
}

// Input batches are 6 MB for full AlexNet at 10 crops; recycling them avoids ~1500 page faults per
// image. A pool (not one buffer) because concurrent requests overlap while the runtime reads them.
const pools = new WeakMap<ModelSession, Float32Array[]>();
const POOL_MAX = 4;

function acquire(session: ModelSession, length: number): Float32Array {
  const pool = pools.get(session) ?? [];
  pools.set(session, pool);
  const i = pool.findIndex((b) => b.length >= length);
  // Sized for 10 crops so that a buffer serves both crop counts.
  return i >= 0 ? pool.splice(i, 1)[0]! : new Float32Array(Math.max(length, batchLength(session.contract.preprocess, 10)));
}

function release(session: ModelSession, buf: Float32Array): void {
  const pool = pools.get(session);
  if (pool && pool.length < POOL_MAX) pool.push(buf);
}

async function runImage(session: ModelSession, bytes: Buffer, opts: ImageOptions): Promise<{ out: InferenceOutput; image: ImageInfo; timings_ms: Timings }> {
  const crops = checkCrops(opts.crops);
  const pre = session.contract.preprocess;
  const t0 = performance.now();
  const square = await decodeImage(bytes, pre, { maxPixels: opts.maxPixels });
  const buf = acquire(session, batchLength(pre, crops));
  try {
    const batch = makeCrops(square, pre, crops, buf);
    const t1 = performance.now();
    const out = await session.run(batch, crops);
    const t2 = performance.now();
    const image = { width: square.width, height: square.height, format: square.format };
    return { out, image, timings_ms: { decode: t1 - t0, infer: t2 - t1, total: t2 - t0 } };
  } finally {
    release(session, buf);
  }
}

export async function classifyImage(session: ModelSession, bytes: Buffer, opts: ImageOptions & { topk: number }): Promise<Classification> {
  const topk = checkIntOption('topk', opts.topk, 1, 100);
  const { out, image, timings_ms } = await runImage(session, bytes, opts);
  const { labels, embeddingDim } = session.contract;
  const k = labels.length;
  const predictions = topK(averageSoftmax(out.logits, out.n, k), topk, labels);
  const top = predictions[0]?.index ?? 0;
  let agreement = 0;
  for (let i = 0; i < out.n; i++) if (rowArgmax(out.logits, i, k) === top) agreement++;
  const embedding = meanRows(out.embedding, out.n, embeddingDim);
  const meanLogits = meanRows(out.logits, out.n, k);
  const verdict = oodVerdict(session.contract.ood ?? DEFAULT_OOD, { meanLogits, embedding });
  return { predictions, ...verdict, crops: opts.crops, agreement, embedding, meanLogits, image, timings_ms };
}

export async function embedImage(session: ModelSession, bytes: Buffer, opts: ImageOptions): Promise<Embedding> {
  const { out, image, timings_ms } = await runImage(session, bytes, opts);
  const embedding = meanRows(out.embedding, out.n, session.contract.embeddingDim);
  return { embedding, norm: l2Norm(embedding), crops: opts.crops, image, timings_ms };
}
