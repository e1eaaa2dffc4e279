/**
 * The paper's two data augmentations, generated on the fly (never stored):
 *  1. random crops of the network's input size from the resized square, with horizontal
 *     reflections (the paper's 224 patches from 256 images; here e.g. 28 from 32);
 *  2. for RGB data, PCA color augmentation: add Σ pᵢ·αᵢ·λᵢ to every pixel, with pᵢ, λᵢ the
 *     eigenvectors/eigenvalues of the RGB covariance over the training set and αᵢ ~ N(0, 0.1)
 *     drawn once per image per presentation;
 *  3. optionally, random erasing (Zhong et al.; training/erasing.ts) with probability `erasing`.
 * Output is NHWC float32, normalized as the preprocessing contract says.
 */
import type { SquareDataset } from './data/dataset.js';
import type { ColorPca } from './pca.js';
import { drawErasure, eraseInto } from './erasing.js';

export interface Normalization {
  scale: number;
  mean: number[];
  std: number[];
}

export interface BatchSpec {
  /** Dataset indices of the batch's images. */
  indices: ArrayLike<number>;
  inputSize: number;
  /** Random crops + flips (training) or the center crop (evaluation). */
  augment: boolean;
  rand: () => number;
  pca?: ColorPca;
  pcaStd?: number;
  /** Random-erasing probability per image (training crops only; 0 or absent: off). */
  erasing?: number;
}

function gauss(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Fills `out` (N × inputSize × inputSize × C) and returns the number of images written. */
export function fillBatch(ds: SquareDataset, spec: BatchSpec, norm: Normalization, out: Float32Array): number {
  const { inputSize: s, rand } = spec;
  const c = ds.channels;
  const side = ds.size;
  const per = side * side * c;
  const room = side - s;
  const mul = norm.std.map((d) => norm.scale / d);
  const add = norm.mean.map((m, k) => -m / (norm.std[k] as number));
  for (let i = 0; i < spec.indices.length; i++) {
    const src = (spec.indices[i] as number) * per;
    const oy = spec.augment ? Math.floor(rand() * (room + 1)) : room >> 1;
    const ox = spec.augment ? Math.floor(rand() * (room + 1)) : room >> 1;
    const flip = spec.augment && rand() < 0.5;
    const shift = [0, 0, 0];
    if (spec.augment && spec.pca && c === 3) {
      const a = [gauss(rand), gauss(rand), gauss(rand)].map((g) => g * (spec.pcaStd ?? 0.1));
      for (let k = 0; k < 3; k++) {
        let v = 0;
        for (let j = 0; j < 3; j++) v += (spec.pca.vectors[k * 3 + j] as number) * (a[j] as number) * (spec.pca.values[j] as number);
        // The eigen-decomposition is in 0–255 pixel units; convert the shift to normalized units.
        shift[k] = v * (mul[k] as number);
      }
    }
    const start = i * s * s * c;
    let o = start;
    for (let y = 0; y < s; y++) {
      const row = src + ((oy + y) * side + ox) * c;
      for (let x = 0; x < s; x++) {
        const px = row + (flip ? s - 1 - x : x) * c;
        for (let k = 0; k < c; k++) {
          out[o++] = (ds.pixels[px + k] as number) * (mul[k] as number) + (add[k] as number) + (shift[k] as number);
        }
      }
    }
    const rect = spec.augment ? drawErasure(s, spec.erasing ?? 0, rand) : undefined;
    if (rect) eraseInto(out, start, s, c, rect, mul, add, rand);
  }
  return spec.indices.length;
}
