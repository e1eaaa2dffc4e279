/**
 * Random erasing (training/erasing.ts) through fillBatch, with a seeded generator: how often an
 * image is erased, that the erased part is one rectangle whose area (2–40 % of the crop) and aspect
 * ratio (0.3–3.3) are the paper's up to rounding to whole pixels, that it holds random pixel values
 * and nothing else changes; and that p = 0 leaves the batch and the random stream untouched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fillBatch, type Normalization } from '../../training/augment.js';
import type { SquareDataset } from '../../training/data/dataset.js';
import { ERASE_MAX_AREA, ERASE_MIN_AREA, ERASE_MIN_ASPECT } from '../../training/erasing.js';
import { mulberry32 } from '../../training/network.js';

const SIDE = 40;
const VALUE = 100;
const IDENTITY: Normalization = { scale: 1, mean: [0], std: [1] };

/** One gray image, every pixel VALUE: anything else in the output was written by the erasure. */
const flat: SquareDataset = {
  n: 1, size: SIDE, channels: 1, pixels: new Uint8Array(SIDE * SIDE).fill(VALUE), labels: Int32Array.of(0), classNames: ['a', 'b'],
};

interface Rect {
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/** The erased rectangle of image k, or undefined; asserts that the changed pixels form exactly one rectangle of values in [0, 255]. */
function erasedRect(out: Float32Array, k: number): Rect | undefined {
  const img = out.subarray(k * SIDE * SIDE, (k + 1) * SIDE * SIDE);
  let y0 = SIDE;
  let x0 = SIDE;
  let y1 = -1;
  let x1 = -1;
  let changed = 0;
  img.forEach((v, i) => {
    if (v === VALUE) return;
    assert.ok(v >= 0 && v < 255, `erased value ${v} is a pixel value in [0, 255)`);
    const y = Math.floor(i / SIDE);
    const x = i % SIDE;
    y0 = Math.min(y0, y);
    x0 = Math.min(x0, x);
    y1 = Math.max(y1, y);
    x1 = Math.max(x1, x);
    changed++;
  });
  if (changed === 0) return undefined;
  const rect = { y0, x0, h: y1 - y0 + 1, w: x1 - x0 + 1 };
  assert.equal(changed, rect.h * rect.w, `image ${k}: the changed pixels fill their bounding box (one rectangle)`);
  return rect;
}

/** Whether some real h′, w′ that round to (h, w) have an area and aspect ratio inside the paper's ranges. */
function roundsFromPaperRanges(r: Rect): boolean {
  const area = SIDE * SIDE;
  const [hLo, hHi, wLo, wHi] = [r.h - 0.5, r.h + 0.5, r.w - 0.5, r.w + 0.5];
  const areaOk = hHi * wHi >= ERASE_MIN_AREA * area && hLo * wLo <= ERASE_MAX_AREA * area;
  const aspectOk = hHi / wLo >= ERASE_MIN_ASPECT && hLo / wHi <= 1 / ERASE_MIN_ASPECT;
  return areaOk && aspectOk;
}

describe('random erasing', () => {
  it('erases about p of the images, one rectangle each, with the paper\'s area and aspect ranges', () => {
    const count = 1500;
    const out = new Float32Array(count * SIDE * SIDE);
    fillBatch(flat, { indices: new Array<number>(count).fill(0), inputSize: SIDE, augment: true, rand: mulberry32(11), erasing: 0.5 }, IDENTITY, out);
    const rects: Rect[] = [];
    for (let k = 0; k < count; k++) {
      const r = erasedRect(out, k);
      if (!r) continue;
      assert.ok(r.y0 + r.h <= SIDE && r.x0 + r.w <= SIDE, 'inside the crop');
      assert.ok(roundsFromPaperRanges(r), `rectangle ${r.h}×${r.w} is not a rounded draw of area 2–40 % and aspect 0.3–3.3`);
      rects.push(r);
    }
    const share = rects.length / count;
    assert.ok(share > 0.45 && share < 0.55, `erased share ${share}, p = 0.5`);
    const fractions = rects.map((r) => (r.h * r.w) / (SIDE * SIDE));
    const aspects = rects.map((r) => r.h / r.w);
    const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
    // Area uniform in [0.02, 0.4] has mean 0.21; large, elongated draws that do not fit are redrawn.
    assert.ok(mean > 0.15 && mean < 0.24, `mean erased fraction ${mean}`);
    assert.ok(Math.min(...fractions) < 0.04 && Math.max(...fractions) > 0.36, 'the whole area range occurs');
    assert.ok(Math.min(...aspects) < 0.45 && Math.max(...aspects) > 2.2, 'tall and wide rectangles both occur');
    const corners = new Set(rects.map((r) => `${r.y0 === 0},${r.x0 === 0},${r.y0 + r.h === SIDE},${r.x0 + r.w === SIDE}`));
    assert.ok(corners.size >= 4, 'rectangles are placed all over the crop');
  });

  it('p = 1 erases every image; the values are normalized like the pixels', () => {
    const count = 50;
    const norm: Normalization = { scale: 1 / 255, mean: [0.5], std: [0.25] };
    const out = new Float32Array(count * SIDE * SIDE);
    fillBatch(flat, { indices: new Array<number>(count).fill(0), inputSize: SIDE, augment: true, rand: mulberry32(5), erasing: 1 }, norm, out);
    const whole = (VALUE / 255 - 0.5) / 0.25;
    for (let k = 0; k < count; k++) {
      const img = out.subarray(k * SIDE * SIDE, (k + 1) * SIDE * SIDE);
      const erased = img.filter((v) => Math.abs(v - whole) > 1e-6);
      assert.ok(erased.length >= 0.015 * SIDE * SIDE, `image ${k} is erased`);
      for (const v of erased) assert.ok(v >= -2 - 1e-6 && v <= 2 + 1e-6, `${v} is (u − 0.5) / 0.25 for some u in [0, 1]`);
    }
  });

  it('p = 0 leaves the batch and the random stream exactly as without the option; evaluation crops are never erased', () => {
    const ds: SquareDataset = { ...flat, pixels: Uint8Array.from({ length: SIDE * SIDE }, (_, i) => (i * 7) % 256) };
    const fill = (erasing: number | undefined, augment: boolean): [Float32Array, number] => {
      const out = new Float32Array(20 * 32 * 32);
      const rand = mulberry32(3);
      fillBatch(ds, { indices: new Array<number>(20).fill(0), inputSize: 32, augment, rand, ...(erasing === undefined ? {} : { erasing }) }, IDENTITY, out);
      return [out, rand()];
    };
    assert.deepEqual(fill(0, true), fill(undefined, true));
    assert.deepEqual(fill(1, false), fill(undefined, false));
    assert.notDeepEqual(fill(1, true)[0], fill(undefined, true)[0]);
  });
});
