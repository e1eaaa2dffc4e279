/**
 * fc7 embeddings and class probabilities of a whole SquareDataset through the onnxruntime session,
 * with the same crops and averaging the server applies to one upload (model/classify.ts): mean fc7
 * over the crops, mean softmax over the crops.
 */
import { averageSoftmax, batchLength, makeCrops, type CropCount } from '../../model/index.js';
import type { DecodedSquare, ModelSession } from '../../model/index.js';
import type { SquareDataset } from '../data/dataset.js';

export interface DatasetEmbeddings {
  n: number;
  dim: number;
  /** Number of classes of the model (columns of `probabilities`). */
  k: number;
  crops: CropCount;
  /** n × dim mean fc7. */
  embeddings: Float32Array;
  /** n × k mean softmax. */
  probabilities: Float32Array;
}

export function squareAt(ds: SquareDataset, i: number, order: DecodedSquare['order']): DecodedSquare {
  const per = ds.size * ds.size * ds.channels;
  return { data: ds.pixels.subarray(i * per, (i + 1) * per), size: ds.size, channels: ds.channels, order, width: ds.size, height: ds.size, format: 'png' };
}

/** ~64 crops per onnxruntime run: big enough to amortize the call, small enough to stay in cache. */
const CROPS_PER_RUN = 64;

export async function embedDataset(
  session: ModelSession,
  ds: SquareDataset,
  crops: CropCount,
  onProgress?: (done: number, total: number) => void,
): Promise<DatasetEmbeddings> {
  const { preprocess: pre, embeddingDim: dim, labels } = session.contract;
  const k = labels.length;
  const perImage = Math.max(1, Math.floor(CROPS_PER_RUN / crops));
  const per = batchLength(pre, crops);
  const batch = new Float32Array(per * perImage);
  const embeddings = new Float32Array(ds.n * dim);
  const probabilities = new Float32Array(ds.n * k);
  for (let start = 0; start < ds.n; start += perImage) {
    const count = Math.min(perImage, ds.n - start);
    for (let j = 0; j < count; j++) makeCrops(squareAt(ds, start + j, pre.channels), pre, crops, batch.subarray(j * per, (j + 1) * per));
    const out = await session.run(batch, count * crops);
    for (let j = 0; j < count; j++) {
      const row = (start + j) * dim;
      for (let c = 0; c < crops; c++) {
        const src = (j * crops + c) * dim;
        for (let d = 0; d < dim; d++) embeddings[row + d] = (embeddings[row + d] as number) + (out.embedding[src + d] as number) / crops;
      }
      probabilities.set(averageSoftmax(out.logits.subarray(j * crops * k, (j + 1) * crops * k), crops, k), (start + j) * k);
    }
    onProgress?.(start + count, ds.n);
  }
  return { n: ds.n, dim, k, crops, embeddings, probabilities };
}
