/**
 * Builds an ImageFolder (ROOT/<class>/<image>.png) of Fashion-MNIST regrouped into 4 super-classes,
 * for measuring fine-tuning (`sightline train --from`) on a task the bundled model was not trained for:
 *   npx tsx scripts/fmnist-folder.ts OUT_DIR PER_CLASS [train|test] [--data DIR] [--skip N]
 * Images are taken in file order, round-robin over each super-class's garment classes, skipping
 * the first N of each garment class (so a held-out folder can avoid a training folder's images).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { readIdx } from '../training/data/idx.js';

const SUPER: Record<string, number[]> = {
  top: [0, 2, 4, 6], // T-shirt/top, Pullover, Coat, Shirt
  'trouser-dress': [1, 3],
  shoe: [5, 7, 9], // Sandal, Sneaker, Ankle boot
  bag: [8],
};

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const dataDir = flag('--data') ?? '/usr/share/datasets/fashion-mnist';
const skip = Number(flag('--skip') ?? '0');
const [out, perRaw, split = 'train'] = args;
const per = Number(perRaw);
if (!out || !Number.isInteger(per) || per < 1 || (split !== 'train' && split !== 't10k' && split !== 'test')) {
  console.error('usage: npx tsx scripts/fmnist-folder.ts OUT_DIR PER_CLASS [train|test] [--data DIR] [--skip N]');
  process.exit(2);
}
const prefix = split === 'train' ? 'train' : 't10k';
const images = await readIdx(join(dataDir, `${prefix}-images-idx3-ubyte.gz`));
const labels = await readIdx(join(dataDir, `${prefix}-labels-idx1-ubyte.gz`));
const side = images.dims[1] ?? 28;
const byClass = new Map<number, number[]>();
labels.data.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
for (const [name, classes] of Object.entries(SUPER)) {
  mkdirSync(join(out, name), { recursive: true });
  const queues = classes.map((c) => (byClass.get(c) ?? []).slice(skip));
  for (let k = 0; k < per; k++) {
    const q = queues[k % queues.length] as number[];
    const i = q.shift();
    if (i === undefined) throw new Error(`not enough images of ${name}`);
    const px = images.data.subarray(i * side * side, (i + 1) * side * side);
    writeFileSync(join(out, name, `${prefix}-${i}.png`), await sharp(px, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer());
  }
}
console.log(`wrote ${per} images per class × ${Object.keys(SUPER).length} classes to ${out}`);
