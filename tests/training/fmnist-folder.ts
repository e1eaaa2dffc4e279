/**
 * An ImageFolder (ROOT/<class>/<n>.png) cut from the committed Fashion-MNIST fixture, for the tests
 * that train or evaluate on a folder: the first `perClass` images of each chosen class, 28×28 gray PNGs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadFashionMnist } from '../../training/data/fashion-mnist.js';

const FIXTURE = new URL('../fixtures/fashion-mnist', import.meta.url).pathname;

/** Writes the folder; returns how many images each class received, in `classes` key order. */
export async function writeFashionFolder(root: string, split: 'train' | 'test', classes: Record<number, string>, perClass: number): Promise<number[]> {
  const ds = await loadFashionMnist(split, { dir: FIXTURE, size: 28 });
  const counts = new Map<number, number>();
  for (let i = 0; i < ds.n; i++) {
    const label = ds.labels[i] as number;
    const name = classes[label];
    if (name === undefined || (counts.get(label) ?? 0) >= perClass) continue;
    counts.set(label, (counts.get(label) ?? 0) + 1);
    mkdirSync(join(root, name), { recursive: true });
    const png = await sharp(ds.pixels.subarray(i * 784, (i + 1) * 784), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    writeFileSync(join(root, name, `${i}.png`), png);
  }
  return Object.keys(classes).map((k) => counts.get(Number(k)) ?? 0);
}
