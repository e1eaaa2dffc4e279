/**
 * The second-stage key that ranks images inside a shared code: a seeded Gaussian random projection
 * of the embedding to `dim` values (Johnson–Lindenstrauss: Euclidean distances are kept up to a
 * relative error of about √(2/dim)), quantized to int8 with one float32 scale per image.
 *
 * Why: the codes model pulls a class onto one hash center, so thousands of images share a code
 * and the Hamming distance cannot tell them apart; cutting the candidate list inside such a tie
 * kept the lowest ids and lost the query's own near-copies. Stage 1 now takes every image at the
 * cut-off distance and ranks that pool by this key, which tracks fc7 distance, before the exact
 * float16 re-rank. 68 bytes per image (stored in SQLite beside the code and kept in memory), from
 * any embedding model and without training; the seed and size are recorded in the catalog's meta.
 *
 * Blob layout: float32 little-endian scale, then `dim` int8 values; value i ≈ scale × int8[i].
 */
import { IndexParamError } from './errors.js';

export const DEFAULT_SKETCH_DIM = 64;
export const DEFAULT_SKETCH_SEED = 0x5eed;

/** Bytes of one stored sketch. */
export function sketchBytes(dim: number): number {
  return 4 + dim;
}

/** Small seeded PRNG (mulberry32) so a catalog's projection is the same in every process. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SketchProjection {
  /** [dim, inputDim] rows, N(0, 1/dim) entries. */
  private readonly rows: Float32Array;

  constructor(
    readonly inputDim: number,
    readonly dim: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(dim) || dim < 8 || dim > 1024) throw new IndexParamError('sketchDim', dim, 'an integer in [8, 1024]');
    if (!Number.isInteger(inputDim) || inputDim < 1) throw new IndexParamError('embeddingDim', inputDim, 'a positive integer');
    const rand = mulberry32(seed);
    const rows = new Float32Array(dim * inputDim);
    const sd = 1 / Math.sqrt(dim);
    // Box–Muller, two normals per pair of uniforms.
    for (let i = 0; i < rows.length; i += 2) {
      const u = Math.max(rand(), 1e-12);
      const r = Math.sqrt(-2 * Math.log(u)) * sd;
      const t = 2 * Math.PI * rand();
      rows[i] = r * Math.cos(t);
      if (i + 1 < rows.length) rows[i + 1] = r * Math.sin(t);
    }
    this.rows = rows;
  }

  /** The projection of `e` (inputDim values) into `out` (dim floats). */
  project(e: ArrayLike<number>, out = new Float32Array(this.dim)): Float32Array {
    const { rows, inputDim } = this;
    for (let j = 0; j < this.dim; j++) {
      let s = 0;
      const o = j * inputDim;
      for (let i = 0; i < inputDim; i++) s += (rows[o + i] as number) * (e[i] as number);
      out[j] = s;
    }
    return out;
  }

  /** The stored form of `e`'s projection (see the layout above). */
  encode(e: ArrayLike<number>): Buffer {
    return quantize(this.project(e));
  }
}

export function quantize(p: Float32Array): Buffer {
  let max = 0;
  for (let i = 0; i < p.length; i++) max = Math.max(max, Math.abs(p[i] as number));
  const scale = max > 0 ? max / 127 : 1;
  const out = Buffer.alloc(sketchBytes(p.length));
  out.writeFloatLE(scale, 0);
  for (let i = 0; i < p.length; i++) out.writeInt8(Math.round((p[i] as number) / scale), 4 + i);
  return out;
}
