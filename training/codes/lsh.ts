/**
 * The random-projection LSH baseline (Charikar's SimHash): bit i = sign(rᵢ · (x − μ)) with rᵢ a
 * standard Gaussian vector and μ the database mean. Hamming distance between such codes estimates
 * the angle between centered embeddings; centering matters because fc7 is non-negative (ReLU), so
 * uncentered vectors all sit in one orthant and most hyperplanes would not separate them.
 */
import { packRows } from '../../model/index.js';
import { gaussianFill, mulberry32 } from '../network.js';
import type { DotSession } from './ort-math.js';

export interface Lsh {
  bits: number;
  dim: number;
  /** [bits, dim] projection rows. */
  planes: Float32Array;
  mean: Float32Array;
}

export function makeLsh(bits: number, dim: number, mean: Float32Array, seed: number): Lsh {
  if (mean.length !== dim) throw new RangeError(`'mean' has ${mean.length} values, dim is ${dim}`);
  return { bits, dim, planes: gaussianFill(new Float32Array(bits * dim), 1, mulberry32(seed)), mean };
}

export function columnMean(x: Float32Array, n: number, dim: number): Float32Array {
  const sum = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) sum[j] = (sum[j] as number) + (x[i * dim + j] as number);
  return Float32Array.from(sum, (s) => s / Math.max(n, 1));
}

/** Packed LSH codes of n embeddings, in chunks so the centered copy stays small. */
export async function lshCodes(lsh: Lsh, dot: DotSession, x: Float32Array, n: number, chunk = 2048): Promise<Uint8Array> {
  const { dim, bits } = lsh;
  const out = new Uint8Array((n * bits) >>> 3);
  const centered = new Float32Array(Math.min(chunk, n) * dim);
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    for (let i = 0; i < m; i++) {
      const src = (start + i) * dim;
      for (let j = 0; j < dim; j++) centered[i * dim + j] = (x[src + j] as number) - (lsh.mean[j] as number);
    }
    const proj = await dot.dot(centered, m, lsh.planes, bits);
    packRows(proj, m, bits, out.subarray((start * bits) >>> 3, ((start + m) * bits) >>> 3));
  }
  return out;
}
