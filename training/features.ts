/**
 * Features of frozen layers, computed once: the source ONNX, with the tensor a trainable dense
 * layer reads added as an output, runs every image's crops through onnxruntime. Training the
 * head then costs one small matrix product per cached row instead of a convolution stack per image.
 * Training images give all 10 crops (corners + center, mirrored: the cached augmentation);
 * validation images their center crop, as a 1-crop evaluation sees them.
 */
import * as ort from 'onnxruntime-node';
import type { ModelContract } from '../model/index.js';
import { batchLength, makeCrops, type CropCount, withFeatureOutputs } from '../model/index.js';
import type { SquareDataset } from './data/dataset.js';

export interface FeatureSet {
  /** rows × width, row-major. */
  x: Float32Array;
  labels: Int32Array;
  rows: number;
  width: number;
}

export interface FeatureExtractor {
  features(ds: SquareDataset, crops: CropCount, onProgress?: (done: number, total: number) => void): Promise<FeatureSet>;
  close(): Promise<void>;
}

export async function featureExtractor(source: Uint8Array, contract: ModelContract, tensor: string, width: number, threads: number): Promise<FeatureExtractor> {
  const bytes = withFeatureOutputs(source, [{ name: tensor, width }]);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const pre = contract.preprocess;
  const c = pre.channels === 'gray' ? 1 : 3;
  const h = pre.inputSize;
  return {
    async features(ds, crops, onProgress) {
      const per = ds.size * ds.size * ds.channels;
      const imagesPerRun = Math.max(1, Math.floor(64 / crops));
      const cropLen = batchLength(pre, 1);
      const batch = new Float32Array(cropLen * crops * imagesPerRun);
      const x = new Float32Array(ds.n * crops * width);
      const labels = new Int32Array(ds.n * crops);
      for (let start = 0; start < ds.n; start += imagesPerRun) {
        const count = Math.min(imagesPerRun, ds.n - start);
        for (let j = 0; j < count; j++) {
          const i = start + j;
          const square = { data: ds.pixels.subarray(i * per, (i + 1) * per), size: ds.size, channels: ds.channels, order: pre.channels, width: ds.size, height: ds.size, format: 'png' as const };
          makeCrops(square, pre, crops, batch.subarray(j * crops * cropLen, (j + 1) * crops * cropLen));
          labels.fill(ds.labels[i] as number, i * crops, (i + 1) * crops);
        }
        const n = count * crops;
        const input = new ort.Tensor('float32', batch.subarray(0, n * cropLen), [n, c, h, h]);
        const out = await session.run({ [contract.io.input]: input }, [tensor]);
        const f = out[tensor];
        if (!f) throw new Error(`the model gave no '${tensor}' output`);
        x.set(f.data as Float32Array, start * crops * width);
        onProgress?.(start + count, ds.n);
      }
      return { x, labels, rows: ds.n * crops, width };
    },
    close: () => session.release(),
  };
}
