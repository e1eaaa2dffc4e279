/**
 * The data-independent code used until a codes model exists for the served image model: bit i =
 * sign(rᵢ · x) with rᵢ a seeded Gaussian vector (Charikar's SimHash of the raw embedding). It needs
 * no training and no labels, so any model (an imported torchvision export, a model trained on an
 * unlabelled folder) can be served at once; the search's sketch pool and exact re-rank then order
 * the candidates by embedding distance. No centering: the mean of the collection is not known in
 * advance, and centering on a guess would make the code depend on data after all.
 *
 * The catalog records it by name in place of a codes-model hash (`FALLBACK_PREFIX` + bits + seed),
 * so a catalog made with it reopens with the same code and `reindex --codes FILE` switches it over
 * to a trained codes model (see `fallbackCodesName`, `parseFallbackName`).
 */
// The one import of index/ from model/ (a deep one on purpose: the projection must be exactly the
// catalog's, and index/'s surface would load SQLite and hnswlib into every model/ user).
// eslint-disable-next-line no-restricted-imports
import { SketchProjection } from '../index/sketch.js';
import { packRows } from './codes.js';
import type { CodesMeta, CodesSession, EncodedCodes } from './codes.js';

export const FALLBACK_PREFIX = 'random-projection:';
export const FALLBACK_BITS = 128;
export const FALLBACK_SEED = 1;

export function fallbackCodesName(bits = FALLBACK_BITS, seed = FALLBACK_SEED): string {
  return `${FALLBACK_PREFIX}${bits}:${seed}`;
}

/** Bits and seed of a recorded fallback name, or undefined for anything else (a codes-model hash). */
export function parseFallbackName(name: string): { bits: number; seed: number } | undefined {
  const m = /^random-projection:(\d+):(\d+)$/.exec(name);
  return m ? { bits: Number(m[1]), seed: Number(m[2]) } : undefined;
}

/** A CodesSession (same interface as an ONNX codes model) computing the fallback code in JS. */
export function fallbackCodes(modelHash: string, embeddingDim: number, bits = FALLBACK_BITS, seed = FALLBACK_SEED): CodesSession {
  // SketchProjection is a seeded Gaussian projection; its 1/√dim scale does not change signs.
  const projection = new SketchProjection(embeddingDim, bits, seed);
  const name = fallbackCodesName(bits, seed);
  const meta: CodesMeta = {
    version: 1, bits, embeddingDim, modelHash, model: { name: 'any', version: '-' }, cropPolicy: 'center',
    normalization: 'none (sign of seeded Gaussian projections of the raw embedding)', hidden: [], classes: [], metrics: {},
    training: { kind: 'random-projection', seed },
  };
  const encodeDetailed = (embeddings: Float32Array, n = Math.floor(embeddings.length / embeddingDim)): Promise<EncodedCodes> => {
    const bytes = bits >>> 3;
    const codes = new Uint8Array(n * bytes);
    const logits = new Float32Array(n * bits);
    for (let i = 0; i < n; i++) {
      const p = projection.project(embeddings.subarray(i * embeddingDim, (i + 1) * embeddingDim), logits.subarray(i * bits, (i + 1) * bits));
      packRows(p, 1, bits, codes.subarray(i * bytes, (i + 1) * bytes));
    }
    return Promise.resolve({ codes, logits });
  };
  return {
    path: name, bits, embeddingDim, modelHash, cropPolicy: 'center', crops: 1, meta,
    encodeDetailed,
    encode: async (embeddings, n) => (await encodeDetailed(embeddings, n)).codes,
    close: () => Promise.resolve(),
  };
}
