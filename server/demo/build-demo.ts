/**
 * Writes the bundled demo gallery once: 30 Fashion-MNIST test images per class as grayscale PNGs,
 * server/demo/<class>/<nn>.png (≈ 300 images, < 300 KB). Test-set images, so a model trained on
 * the training set has not seen them. Run: `npx tsx server/demo/build-demo.ts [DATA_DIR]`.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { DEMO_CLASSES } from './classes.js';

const PER_CLASS = 30;

function readIdx(path: string): Uint8Array {
  const raw = gunzipSync(readFileSync(path));
  const dims = raw[3] ?? 0;
  return new Uint8Array(raw.buffer, raw.byteOffset + 4 + 4 * dims, raw.length - 4 - 4 * dims);
}

async function main(): Promise<void> {
  const dataDir = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
  const images = readIdx(join(dataDir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdx(join(dataDir, 't10k-labels-idx1-ubyte.gz'));
  const out = fileURLToPath(new URL('.', import.meta.url));
  const counts = new Array<number>(DEMO_CLASSES.length).fill(0);
  for (const c of DEMO_CLASSES) {
    rmSync(join(out, c.dir), { recursive: true, force: true });
    mkdirSync(join(out, c.dir));
  }
  let bytes = 0;
  for (let i = 0; i < labels.length && counts.some((n) => n < PER_CLASS); i++) {
    const label = labels[i] ?? 0;
    const n = counts[label] ?? 0;
    const cls = DEMO_CLASSES[label];
    if (!cls || n >= PER_CLASS) continue;
    const pixels = Buffer.from(images.subarray(i * 784, (i + 1) * 784));
    const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .toColourspace('b-w')
      .png({ compressionLevel: 9, palette: false })
      .toFile(join(out, cls.dir, `${String(n).padStart(2, '0')}.png`));
    bytes += png.size;
    counts[label] = n + 1;
  }
  process.stdout.write(`wrote ${counts.reduce((a, b) => a + b, 0)} images, ${bytes} bytes\n`);
}

await main();
