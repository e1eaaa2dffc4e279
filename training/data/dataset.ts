/**
 * In-memory training data: every image already resized (shorter side → resizeSize) and
 * center-cropped to a square with the same sharp pipeline the server uses, stored as uint8 HWC.
 * Random crops of the network's input size are cut from these squares on the fly.
 */
export interface SquareDataset {
  /** Number of images. */
  n: number;
  /** Side of every stored square (the preprocessing contract's resizeSize). */
  size: number;
  channels: 1 | 3;
  /** n × size × size × channels, uint8. */
  pixels: Uint8Array;
  labels: Int32Array;
  classNames: string[];
}

export function subset(ds: SquareDataset, indices: ArrayLike<number>): SquareDataset {
  const per = ds.size * ds.size * ds.channels;
  const pixels = new Uint8Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i] as number;
    pixels.set(ds.pixels.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = ds.labels[j] as number;
  }
  return { ...ds, n: indices.length, pixels, labels };
}

/** Per-channel mean and standard deviation of the 0–255 pixel values over the whole set. */
export function channelStats(ds: SquareDataset): { mean: number[]; std: number[] } {
  const c = ds.channels;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < ds.pixels.length; i++) {
    const v = ds.pixels[i] as number;
    const k = i % c;
    sum[k] = (sum[k] as number) + v;
    sq[k] = (sq[k] as number) + v * v;
  }
  const count = ds.pixels.length / c;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / count - (mean[k] as number) ** 2, 1e-6)));
  return { mean, std };
}
