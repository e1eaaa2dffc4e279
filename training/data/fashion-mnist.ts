/** Fashion-MNIST (Zalando Research, MIT license) from its original IDX files. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readIdx } from './idx.js';
import { resizeRawSquares } from './resize.js';
import type { SquareDataset } from './dataset.js';

export const FASHION_MNIST_LABELS = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Debian's `dataset-fashion-mnist` package installs the files here. */
export const DEFAULT_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export class DatasetMissingError extends Error {
  override readonly name = 'DatasetMissingError';
}

function locate(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new DatasetMissingError(
    `Fashion-MNIST file '${stem}(.gz)' not found in '${dir}'. Install it with ` +
      '`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in /usr/share/datasets/fashion-mnist) ' +
      'or download the four IDX files from the Fashion-MNIST project and pass --data DIR.',
  );
}

export interface LoadOptions {
  dir?: string;
  /** Side of the stored squares (the model's resizeSize). */
  size: number;
  /** Keep only the first `limit` images of the split. */
  limit?: number;
}

export async function loadFashionMnist(split: 'train' | 'test', opts: LoadOptions): Promise<SquareDataset> {
  const dir = opts.dir ?? DEFAULT_FASHION_MNIST_DIR;
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = await readIdx(locate(dir, `${prefix}-images-idx3-ubyte`));
  const labels = await readIdx(locate(dir, `${prefix}-labels-idx1-ubyte`));
  const [count, rows, cols] = images.dims as [number, number, number];
  if (rows !== cols) throw new Error(`Fashion-MNIST images must be square, got ${rows}×${cols}`);
  if (labels.dims[0] !== count) throw new Error(`Fashion-MNIST ${split}: ${count} images but ${labels.dims[0]} labels`);
  const n = Math.min(count, opts.limit ?? count);
  const pixels = await resizeRawSquares(images.data.subarray(0, n * rows * cols), n, rows, 1, opts.size);
  return {
    n,
    size: opts.size,
    channels: 1,
    pixels,
    labels: Int32Array.from(labels.data.subarray(0, n)),
    classNames: [...FASHION_MNIST_LABELS],
  };
}
