/**
 * Training data: the IDX container, Fashion-MNIST from the fixture (first 600 train / 200 test
 * images of the real set), the error when the files are missing, ImageFolder loading from real
 * PNGs written with sharp, and the seeded train/validation split.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import type { PreprocessContract } from '../../model/contract.js';
import { decodeImage } from '../../model/image/decode.js';
import { channelStats, subset, type SquareDataset } from '../../training/data/dataset.js';
import { DatasetMissingError, FASHION_MNIST_LABELS, loadFashionMnist } from '../../training/data/fashion-mnist.js';
import { parseIdx, readIdx } from '../../training/data/idx.js';
import { loadImageFolder, splitIndices } from '../../training/data/image-folder.js';

const FIXTURE = new URL('../fixtures/fashion-mnist', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'sightline-training-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An IDX buffer: magic 00 00 <type> <rank>, big-endian uint32 dims, then the data bytes. */
function idx(dims: number[], data: ArrayLike<number>, type = 0x08): Uint8Array {
  const buf = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(buf.buffer);
  view.setUint8(2, type);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  buf.set(Array.from(data), 4 + 4 * dims.length);
  return buf;
}

describe('IDX parsing', () => {
  it('reads the dims (big-endian) and the data', () => {
    const data = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const parsed = parseIdx(idx([2, 3, 4], data));
    assert.deepEqual(parsed.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(parsed.data), data);
    // A dimension above 255 needs more than the low byte.
    assert.deepEqual(parseIdx(idx([300], new Array<number>(300).fill(7))).dims, [300]);
  });

  it('ignores bytes after the declared data', () => {
    const buf = new Uint8Array([...idx([3], [1, 2, 3]), 99, 98]);
    assert.deepEqual(Array.from(parseIdx(buf).data), [1, 2, 3]);
  });

  it('rejects a truncated file, naming the sizes', () => {
    const full = idx([2, 5], new Array<number>(10).fill(1));
    assert.throws(() => parseIdx(full.subarray(0, full.length - 3), 'x.idx'), /x\.idx: truncated \(expected 10 bytes of data, found 7\)/);
  });

  it('rejects a header cut inside its dims as truncated', () => {
    const full = idx([2, 5, 5], []);
    assert.throws(() => parseIdx(full.subarray(0, 9), 'h.idx'), /h\.idx: truncated/);
  });

  it('rejects a bad magic, a too-short buffer and a non-uint8 type', () => {
    const bad = idx([1], [0]);
    bad[0] = 0x1f;
    assert.throws(() => parseIdx(bad, 'a.gz'), /a\.gz: not an IDX file \(bad magic\)/);
    assert.throws(() => parseIdx(Uint8Array.of(0, 0), 'b'), /b: not an IDX file/);
    assert.throws(() => parseIdx(idx([1], [0, 0, 0, 0], 0x0d), 'c'), /only unsigned-byte IDX data is supported, got type 0xd/);
  });

  it('readIdx reads plain and gzip-compressed files', async () => {
    const buf = idx([2, 2], [1, 2, 3, 4]);
    writeFileSync(join(tmp, 'plain-idx1-ubyte'), buf);
    writeFileSync(join(tmp, 'packed-idx1-ubyte.gz'), gzipSync(buf));
    for (const f of ['plain-idx1-ubyte', 'packed-idx1-ubyte.gz']) {
      const r = await readIdx(join(tmp, f));
      assert.deepEqual({ dims: r.dims, data: Array.from(r.data) }, { dims: [2, 2], data: [1, 2, 3, 4] }, f);
    }
  });
});

describe('Fashion-MNIST', () => {
  it('loads the fixture: counts, label range, squares resized to 32', async () => {
    const train = await loadFashionMnist('train', { dir: FIXTURE, size: 32 });
    const test = await loadFashionMnist('test', { dir: FIXTURE, size: 32 });
    assert.equal(train.n, 600);
    assert.equal(test.n, 200);
    for (const ds of [train, test]) {
      assert.equal(ds.size, 32);
      assert.equal(ds.channels, 1);
      assert.equal(ds.pixels.length, ds.n * 32 * 32);
      assert.equal(ds.labels.length, ds.n);
      assert.ok(ds.labels.every((l) => l >= 0 && l <= 9), 'labels in [0, 9]');
      assert.deepEqual(ds.classNames, FASHION_MNIST_LABELS);
    }
    assert.equal(new Set(train.labels).size, 10, 'the 600 training images cover all ten classes');
    // The first training image of Fashion-MNIST is an ankle boot (9), the first test image too.
    assert.equal(train.labels[0], 9);
    assert.equal(test.labels[0], 9);
  });

  it('resizing keeps each image (same mean brightness, black border) and size 28 keeps the raw pixels', async () => {
    const raw = await loadFashionMnist('train', { dir: FIXTURE, size: 28, limit: 20 });
    const big = await loadFashionMnist('train', { dir: FIXTURE, size: 32, limit: 20 });
    const file = await readIdx(join(FIXTURE, 'train-images-idx3-ubyte.gz'));
    assert.deepEqual(raw.pixels, file.data.subarray(0, 20 * 28 * 28));
    assert.equal(big.n, 20);
    const mean = (a: Uint8Array) => a.reduce((s, v) => s + v, 0) / a.length;
    for (let i = 0; i < 20; i++) {
      const m28 = mean(raw.pixels.subarray(i * 784, (i + 1) * 784));
      const m32 = mean(big.pixels.subarray(i * 1024, (i + 1) * 1024));
      assert.ok(Math.abs(m28 - m32) < 0.05 * m28 + 1, `image ${i}: mean ${m28.toFixed(1)} at 28 px vs ${m32.toFixed(1)} at 32 px`);
    }
  });

  it('training squares are the pixels the server decodes from the same image as a PNG', async () => {
    const n = 5;
    const ds = await loadFashionMnist('test', { dir: FIXTURE, size: 32, limit: n });
    const file = await readIdx(join(FIXTURE, 't10k-images-idx3-ubyte.gz'));
    const pre: PreprocessContract = { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1, mean: [0], std: [1], background: [0, 0, 0] };
    for (let i = 0; i < n; i++) {
      const pngBytes = await sharp(file.data.subarray(i * 784, (i + 1) * 784), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
      const served = await decodeImage(pngBytes, pre, { maxPixels: 1e6 });
      assert.deepEqual(ds.pixels.subarray(i * 1024, (i + 1) * 1024), served.data, `image ${i}`);
    }
  });

  it('limit keeps the first images', async () => {
    const ds = await loadFashionMnist('train', { dir: FIXTURE, size: 28, limit: 7 });
    const all = await loadFashionMnist('train', { dir: FIXTURE, size: 28 });
    assert.equal(ds.n, 7);
    assert.deepEqual(ds.labels, all.labels.subarray(0, 7));
  });

  it('missing files fail with a message that says how to install them', async () => {
    const empty = join(tmp, 'no-fashion');
    mkdirSync(empty);
    await assert.rejects(loadFashionMnist('train', { dir: empty, size: 32 }), (err: unknown) => {
      assert.ok(err instanceof DatasetMissingError);
      assert.match(err.message, /train-images-idx3-ubyte\(\.gz\)' not found in '.*no-fashion'/);
      assert.match(err.message, /apt-get install dataset-fashion-mnist/);
      assert.match(err.message, /--data DIR/);
      return true;
    });
  });
});

describe('ImageFolder', () => {
  const pre: PreprocessContract = { inputSize: 12, resizeSize: 16, channels: 'rgb', scale: 1, mean: [0], std: [1], background: [255, 255, 255] };

  async function png(path: string, width: number, height: number, rgb: [number, number, number]): Promise<void> {
    const buf = await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
    writeFileSync(path, buf);
  }

  it('loads ROOT/<class>/<image> in sorted order, resized to squares, and skips non-images', async () => {
    const root = join(tmp, 'folder');
    mkdirSync(join(root, 'cats'), { recursive: true });
    mkdirSync(join(root, 'dogs'), { recursive: true });
    await png(join(root, 'cats', 'b.png'), 40, 30, [250, 10, 10]);
    await png(join(root, 'cats', 'a.png'), 20, 50, [240, 20, 20]);
    await png(join(root, 'dogs', 'c.png'), 64, 64, [10, 10, 250]);
    writeFileSync(join(root, 'dogs', 'notes.txt'), 'not an image\n');
    const { dataset, skipped } = await loadImageFolder(root, pre);
    assert.deepEqual(dataset.classNames, ['cats', 'dogs']);
    assert.equal(dataset.n, 3);
    assert.deepEqual(Array.from(dataset.labels), [0, 0, 1]);
    assert.deepEqual(skipped, [join(root, 'dogs', 'notes.txt')]);
    assert.equal(dataset.size, 16);
    assert.equal(dataset.channels, 3);
    assert.equal(dataset.pixels.length, 3 * 16 * 16 * 3);
    // Solid colours survive decoding and resizing: a.png (sorted first) is (240, 20, 20).
    const px = (i: number) => Array.from(dataset.pixels.subarray(i * 768 + 300, i * 768 + 303));
    assert.deepEqual(px(0), [240, 20, 20]);
    assert.deepEqual(px(1), [250, 10, 10]);
    assert.deepEqual(px(2), [10, 10, 250]);
    const limited = await loadImageFolder(root, { ...pre, channels: 'gray' }, { limit: 2 });
    assert.equal(limited.dataset.n, 2);
    assert.equal(limited.dataset.channels, 1);
    assert.equal(limited.dataset.pixels.length, 2 * 16 * 16);
  });

  it('a flat folder (no class sub-folders) loads unlabelled when asked (codes), and is refused otherwise', async () => {
    const root = join(tmp, 'flat');
    mkdirSync(root, { recursive: true });
    await png(join(root, 'b.png'), 40, 30, [250, 10, 10]);
    await png(join(root, 'a.png'), 20, 50, [240, 20, 20]);
    const { dataset } = await loadImageFolder(root, pre, { unlabelled: true });
    assert.equal(dataset.n, 2);
    assert.deepEqual(dataset.classNames, []);
    assert.deepEqual(Array.from(dataset.pixels.subarray(300, 303)), [240, 20, 20], 'sorted by name');
    await assert.rejects(loadImageFolder(root, pre), /must contain one sub-folder per class .*found 0/);
  });

  it('needs at least two class folders', async () => {
    const root = join(tmp, 'one-class');
    mkdirSync(join(root, 'only'), { recursive: true });
    await assert.rejects(loadImageFolder(root, pre), /must contain one sub-folder per class .*found 1/);
  });
});

describe('splitIndices', () => {
  it('is a seeded partition: disjoint, complete, sorted, reproducible', () => {
    const a = splitIndices(100, 20, 5);
    assert.equal(a.val.length, 20);
    assert.equal(a.train.length, 80);
    assert.deepEqual([...a.train, ...a.val].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    for (const part of [a.train, a.val]) assert.deepEqual(part, [...part].sort((x, y) => x - y));
    assert.deepEqual(splitIndices(100, 20, 5), a);
    assert.notDeepEqual(splitIndices(100, 20, 6).val, a.val);
    // Not simply the first or last 20 indices.
    assert.notDeepEqual(a.val, Array.from({ length: 20 }, (_, i) => i));
  });

  it('keeps at least one training image and accepts an empty validation set', () => {
    assert.equal(splitIndices(10, 50, 1).train.length, 1);
    assert.deepEqual(splitIndices(10, 0, 1), { val: [], train: Array.from({ length: 10 }, (_, i) => i) });
  });
});

describe('subset and channelStats', () => {
  const ds: SquareDataset = {
    n: 3, size: 1, channels: 3, pixels: Uint8Array.of(0, 10, 20, 30, 40, 50, 60, 70, 80), labels: Int32Array.of(4, 5, 6), classNames: ['a'],
  };

  it('subset copies the chosen images and labels', () => {
    const s = subset(ds, [2, 0]);
    assert.equal(s.n, 2);
    assert.deepEqual(Array.from(s.pixels), [60, 70, 80, 0, 10, 20]);
    assert.deepEqual(Array.from(s.labels), [6, 4]);
    s.pixels[0] = 1;
    assert.equal(ds.pixels[6], 60, 'the source is untouched');
  });

  it('channelStats gives per-channel mean and population std', () => {
    const { mean, std } = channelStats(ds);
    assert.deepEqual(mean, [30, 40, 50]);
    std.forEach((s) => assert.ok(Math.abs(s - Math.sqrt(600)) < 1e-9, `std ${s}`));
  });
});
