/**
 * The arithmetic of classification over crops: softmax, its average over the crops, per-crop
 * argmax, top-k and row means. The image pipeline (pipeline.ts) applies it to model outputs.
 */

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
