/**
 * The paper's augmentations: crop geometry (center vs random), horizontal flips, normalization,
 * PCA colour shifts, determinism from a seed; and the 3×3 eigen-decomposition behind the PCA.
 * Geometry is checked on a synthetic square whose pixel values encode their own (y, x), so every
 * output pixel tells where it was cut from.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fillBatch, type Normalization } from '../../training/augment.js';
import type { SquareDataset } from '../../training/data/dataset.js';
import { mulberry32 } from '../../training/network.js';
import { rgbCovariance, symmetricEigen3 } from '../../training/pca.js';

const SIDE = 12;
const CROP = 8;
const IDENTITY: Normalization = { scale: 1, mean: [0], std: [1] };

/** n gray images; pixel (y, x) of image i holds y·SIDE + x + i (all < 256). */
function coordinateDataset(n: number): SquareDataset {
  const pixels = new Uint8Array(n * SIDE * SIDE);
  for (let i = 0; i < n; i++) for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) pixels[(i * SIDE + y) * SIDE + x] = y * SIDE + x + i;
  return { n, size: SIDE, channels: 1, pixels, labels: Int32Array.from({ length: n }, (_, i) => i % 2), classNames: ['a', 'b'] };
}

interface Window {
  oy: number;
  ox: number;
  flip: boolean;
}

/** Recovers the crop window of output image `k` (cut from dataset image `src`) and checks every pixel against it. */
function windowOf(out: Float32Array, k: number, src: number): Window {
  const at = (y: number, x: number) => (out[(k * CROP + y) * CROP + x] as number) - src;
  const first = at(0, 0);
  const second = at(0, 1);
  const flip = second < first;
  const oy = Math.floor(first / SIDE);
  const ox = (first % SIDE) - (flip ? CROP - 1 : 0);
  for (let y = 0; y < CROP; y++) {
    for (let x = 0; x < CROP; x++) {
      const sx = ox + (flip ? CROP - 1 - x : x);
      assert.equal(at(y, x), (oy + y) * SIDE + sx, `image ${k} pixel (${y}, ${x}) is not from window (${oy}, ${ox}, flip ${flip})`);
    }
  }
  return { oy, ox, flip };
}

describe('fillBatch geometry', () => {
  const ds = coordinateDataset(3);

  it('the center crop starts at (room / 2, room / 2), unflipped, for every image', () => {
    const out = new Float32Array(3 * CROP * CROP);
    const n = fillBatch(ds, { indices: [2, 0, 1], inputSize: CROP, augment: false, rand: mulberry32(1) }, IDENTITY, out);
    assert.equal(n, 3);
    [2, 0, 1].forEach((src, k) => assert.deepEqual(windowOf(out, k, src), { oy: 2, ox: 2, flip: false }));
  });

  it('random crops stay inside the square and cover every offset and both flips', () => {
    const count = 400;
    const out = new Float32Array(count * CROP * CROP);
    const indices = Array.from({ length: count }, (_, i) => i % 3);
    fillBatch(ds, { indices, inputSize: CROP, augment: true, rand: mulberry32(7) }, IDENTITY, out);
    const offsets = new Set<string>();
    let flips = 0;
    indices.forEach((src, k) => {
      const w = windowOf(out, k, src);
      assert.ok(w.oy >= 0 && w.oy <= SIDE - CROP && w.ox >= 0 && w.ox <= SIDE - CROP, `window (${w.oy}, ${w.ox}) out of range`);
      offsets.add(`${w.oy},${w.ox}`);
      flips += w.flip ? 1 : 0;
    });
    assert.equal(offsets.size, (SIDE - CROP + 1) ** 2, 'all 25 offsets appear');
    assert.ok(flips > count * 0.4 && flips < count * 0.6, `about half are flipped, got ${flips}/${count}`);
  });

  it('a crop as large as the square is the whole image', () => {
    const out = new Float32Array(SIDE * SIDE);
    fillBatch(ds, { indices: [1], inputSize: SIDE, augment: false, rand: mulberry32(1) }, IDENTITY, out);
    assert.deepEqual(Array.from(out), Array.from(ds.pixels.subarray(SIDE * SIDE, 2 * SIDE * SIDE)));
  });
});

describe('fillBatch normalization and colour', () => {
  /** One RGB image: every pixel (R, G, B) = (200, 100, 50). */
  const flat: SquareDataset = {
    n: 1, size: 4, channels: 3, pixels: new Uint8Array(4 * 4 * 3).map((_, i) => [200, 100, 50][i % 3] as number),
    labels: Int32Array.of(0), classNames: ['x', 'y'],
  };
  const norm: Normalization = { scale: 1 / 255, mean: [0.5, 0.25, 0.125], std: [0.25, 0.5, 0.125] };
  const expected = [(200 / 255 - 0.5) / 0.25, (100 / 255 - 0.25) / 0.5, (50 / 255 - 0.125) / 0.125];

  it('applies (value · scale − mean) / std per channel, in HWC order', () => {
    const out = new Float32Array(2 * 2 * 3);
    fillBatch(flat, { indices: [0], inputSize: 2, augment: false, rand: mulberry32(1) }, norm, out);
    for (let i = 0; i < out.length; i++) {
      const e = expected[i % 3] as number;
      assert.ok(Math.abs((out[i] as number) - e) < 1e-6, `value ${i}: ${out[i]} vs ${e}`);
    }
  });

  it('PCA shifts each image by Σ pᵢ·αᵢ·λᵢ with αᵢ ~ N(0, σ), uniformly over its pixels', () => {
    // Eigenvectors = the axes and λ = (20, 0, 0): only red moves, by α₁·20 pixel units.
    const pca = { vectors: [1, 0, 0, 0, 1, 0, 0, 0, 1], values: [20, 0, 0] };
    const count = 500;
    const per = 2 * 2 * 3;
    const out = new Float32Array(count * per);
    fillBatch(flat, { indices: new Array<number>(count).fill(0), inputSize: 2, augment: true, rand: mulberry32(3), pca, pcaStd: 0.1 }, norm, out);
    const shifts: number[] = [];
    for (let k = 0; k < count; k++) {
      const img = out.subarray(k * per, (k + 1) * per);
      for (let p = 0; p < 4; p++) {
        assert.ok(Math.abs((img[p * 3] as number) - (img[0] as number)) < 1e-6, 'the shift is the same for every pixel');
        assert.ok(Math.abs((img[p * 3 + 1] as number) - (expected[1] as number)) < 1e-6, 'green is untouched');
        assert.ok(Math.abs((img[p * 3 + 2] as number) - (expected[2] as number)) < 1e-6, 'blue is untouched');
      }
      // Back to pixel units: normalized shift · std / scale.
      shifts.push((((img[0] as number) - (expected[0] as number)) * 0.25) * 255);
    }
    const mean = shifts.reduce((a, b) => a + b, 0) / count;
    const sd = Math.sqrt(shifts.reduce((a, b) => a + (b - mean) ** 2, 0) / count);
    // α·λ has σ = 0.1 · 20 = 2 pixel units.
    assert.ok(Math.abs(mean) < 0.3, `mean shift ${mean}`);
    assert.ok(sd > 1.7 && sd < 2.3, `shift σ ${sd}, expected ≈ 2`);
  });

  it('gray data ignores the PCA', () => {
    const ds = coordinateDataset(1);
    const a = new Float32Array(CROP * CROP);
    const b = new Float32Array(CROP * CROP);
    const pca = { vectors: [1, 0, 0, 0, 1, 0, 0, 0, 1], values: [50, 50, 50] };
    fillBatch(ds, { indices: [0], inputSize: CROP, augment: true, rand: mulberry32(9), pca, pcaStd: 1 }, IDENTITY, a);
    fillBatch(ds, { indices: [0], inputSize: CROP, augment: true, rand: mulberry32(9) }, IDENTITY, b);
    assert.deepEqual(a, b);
  });
});

describe('fillBatch determinism', () => {
  const ds = coordinateDataset(3);
  const run = (seed: number): Float32Array => {
    const out = new Float32Array(20 * CROP * CROP);
    fillBatch(ds, { indices: Array.from({ length: 20 }, (_, i) => i % 3), inputSize: CROP, augment: true, rand: mulberry32(seed) }, IDENTITY, out);
    return out;
  };

  it('the same seed gives the same batch; another seed another batch', () => {
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42), run(43));
  });
});

/** M = V·diag(λ)·Vᵀ from the decomposition (values are √λ). */
function reconstruct(vectors: number[], values: number[]): number[] {
  const m: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let j = 0; j < 3; j++) s += (vectors[r * 3 + j] as number) * (values[j] as number) ** 2 * (vectors[c * 3 + j] as number);
      m.push(s);
    }
  }
  return m;
}

function rotation(a: number, b: number, c: number): number[] {
  const rx = [1, 0, 0, 0, Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a)];
  const ry = [Math.cos(b), 0, Math.sin(b), 0, 1, 0, -Math.sin(b), 0, Math.cos(b)];
  const rz = [Math.cos(c), -Math.sin(c), 0, Math.sin(c), Math.cos(c), 0, 0, 0, 1];
  const mul = (p: number[], q: number[]) => Array.from({ length: 9 }, (_, i) => [0, 1, 2].reduce((s, k) => s + (p[Math.floor(i / 3) * 3 + k] as number) * (q[k * 3 + (i % 3)] as number), 0));
  return mul(mul(rx, ry), rz);
}

describe('symmetricEigen3', () => {
  it('recovers known eigenvalues and reconstructs the matrix', () => {
    const v = rotation(0.3, -1.1, 2.0);
    const lambdas = [900, 120, 4];
    const m = reconstruct(v, lambdas.map(Math.sqrt));
    const { vectors, values } = symmetricEigen3(m);
    const found = values.map((x) => x * x).sort((a, b) => b - a);
    lambdas.forEach((want, i) => assert.ok(Math.abs((found[i] as number) - want) < 1e-9 * 900, `eigenvalue ${i}: ${found[i]}, expected ${want}`));
    const back = reconstruct(vectors, values);
    back.forEach((x, i) => assert.ok(Math.abs(x - (m[i] as number)) < 1e-9 * 900, `entry ${i}: ${x} vs ${m[i]}`));
    // Columns are orthonormal eigenvectors: M·pⱼ = λⱼ·pⱼ.
    for (let j = 0; j < 3; j++) {
      for (let r = 0; r < 3; r++) {
        const mp = [0, 1, 2].reduce((s, k) => s + (m[r * 3 + k] as number) * (vectors[k * 3 + j] as number), 0);
        assert.ok(Math.abs(mp - (values[j] as number) ** 2 * (vectors[r * 3 + j] as number)) < 1e-7, `M·p${j} row ${r}`);
      }
      const norm = [0, 1, 2].reduce((s, k) => s + (vectors[k * 3 + j] as number) ** 2, 0);
      assert.ok(Math.abs(norm - 1) < 1e-12, `|p${j}| = ${norm}`);
    }
  });

  it('a diagonal matrix is already decomposed; a singular one has a zero value', () => {
    assert.deepEqual(symmetricEigen3([4, 0, 0, 0, 9, 0, 0, 0, 1]), { vectors: [1, 0, 0, 0, 1, 0, 0, 0, 1], values: [2, 3, 1] });
    const singular = symmetricEigen3([1, 1, 0, 1, 1, 0, 0, 0, 0]);
    const squared = singular.values.map((x) => x * x).sort((a, b) => a - b);
    [0, 0, 2].forEach((want, i) => assert.ok(Math.abs((squared[i] as number) - want) < 1e-12, `eigenvalue ${i}: ${squared[i]}, expected ${want}`));
  });
});

describe('rgbCovariance', () => {
  it('matches the covariance of known pixel values', () => {
    // Two pixels: (0, 0, 7) and (10, 20, 7): var R = 25, var G = 100, cov RG = 50, blue constant.
    const ds: SquareDataset = { n: 2, size: 1, channels: 3, pixels: Uint8Array.of(0, 0, 7, 10, 20, 7), labels: Int32Array.of(0, 1), classNames: ['a', 'b'] };
    assert.deepEqual(rgbCovariance(ds), [25, 50, 0, 50, 100, 0, 0, 0, 0]);
  });

  it('refuses gray data', () => {
    assert.throws(() => rgbCovariance(coordinateDataset(1)), /needs RGB data/);
  });
});
