/**
 * The wasm training kernels (training/kernels) against the cpu backend's own kernels: the same op
 * with the same inputs on both backends must agree to ~1e-5 relative (max |Δ| / max |cpu|).
 * Shapes are small but cover every branch: explicit / 'same' / 'valid' padding, strides 1, 2 and 4,
 * the slice of unreachable filter rows, each fallback to the backend's original kernel, and both
 * forms of the transposed matrix product.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, NamedTensorMap, TensorInfo } from '@tensorflow/tfjs';
import { useBackend } from '../../training/backend.js';
import { denseViaTransposed, mulberry32 } from '../../training/network.js';
import { wasmKernel } from '../../training/kernels/wasm-util.js';
import { setNativeConvolutions } from '../../training/kernels/native-conv.js';
import { transpose2dInto } from '../../training/kernels/transpose.js';
import { conv2dBackpropFilterWasm } from '../../training/kernels/conv2d-backprop-filter.js';
import { relativeError } from '../model/onnx-checker.js';

const TOL = 1e-5;

interface Input {
  shape: number[];
  data: Float32Array;
  dtype?: 'float32' | 'int32';
}

function rand(shape: number[], seed: number): Input {
  const r = mulberry32(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => r() * 2 - 1);
  return { shape, data };
}

interface Result {
  shape: number[];
  data: Float32Array;
}

/** Runs `name` through the engine (so the registered kernel is the one used) on one backend. */
async function runOn(backend: 'cpu' | 'wasm', name: string, inputs: Record<string, Input>, attrs: object): Promise<Result> {
  await useBackend(backend);
  const tensors: NamedTensorMap = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.dtype === 'int32' ? Int32Array.from(v.data) : v.data, v.shape, v.dtype ?? 'float32');
  const out = tf.engine().runKernel(name, tensors, attrs as NamedAttrMap) as tf.Tensor;
  const res = { shape: [...out.shape], data: Float32Array.from(await out.data()) };
  tf.dispose([out, ...Object.values(tensors)]);
  return res;
}

/** Calls a wasm kernel function directly (not through the registry) on wasm tensors. */
async function runDirect(fn: KernelFunc, inputs: Record<string, Input>, attrs: object): Promise<Result> {
  await useBackend('wasm');
  const tensors: NamedTensorMap = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.data, v.shape);
  const info = fn({ inputs: tensors, backend: tf.backend(), attrs: attrs as NamedAttrMap }) as TensorInfo;
  const data = Float32Array.from(tf.backend().readSync(info.dataId) as Float32Array);
  tf.backend().disposeData(info.dataId);
  tf.dispose(Object.values(tensors));
  return { shape: [...info.shape], data };
}

/** Gradients of a scalar function of (x, w) on one backend, through the engine (so the registered kernels run). */
async function gradsOn(backend: 'cpu' | 'wasm', f: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor, x: Input, w: Input): Promise<Float32Array[]> {
  await useBackend(backend);
  const xt = tf.tensor(x.data, x.shape);
  const wt = tf.tensor(w.data, w.shape);
  const grads = tf.grads((...t: tf.Tensor[]) => f(t[0] as tf.Tensor, t[1] as tf.Tensor))([xt, wt]);
  const out = await Promise.all(grads.map(async (g) => Float32Array.from(await g.data())));
  tf.dispose([xt, wt, ...grads]);
  return out;
}

async function assertSame(name: string, inputs: Record<string, Input>, attrs: object, label: string): Promise<Result> {
  const want = await runOn('cpu', name, inputs, attrs);
  const got = await runOn('wasm', name, inputs, attrs);
  assert.deepEqual(got.shape, want.shape, `${label}: shape`);
  const err = relativeError(got.data, want.data);
  assert.ok(err <= TOL, `${label}: relative error ${err.toExponential(2)} > ${TOL}`);
  // A kernel that returned zeros would pass against a zero reference: make sure the case is not degenerate.
  assert.ok(want.data.some((v) => Math.abs(v) > 1e-3), `${label}: reference is all zeros`);
  return got;
}

before(async () => {
  await useBackend('wasm');
  // These are the wasm kernels' tests: the native ones that run in front of them by default have theirs (native-conv.test.ts).
  setNativeConvolutions(false);
});

after(() => setNativeConvolutions(true));

describe('kernel registration', () => {
  it('registers Conv2DBackpropFilter and replaces Transpose, BatchMatMul, Conv2DBackpropInput, MaxPoolGrad, LRN, LRNGrad and Identity on wasm', () => {
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'Conv2DBackpropFilter is registered');
    for (const name of ['Transpose', 'BatchMatMul', 'Conv2DBackpropInput', 'MaxPoolGrad', 'LRN', 'LRNGrad', 'Identity']) {
      assert.notEqual(tf.getKernel(name, 'wasm')?.kernelFunc, wasmKernel(name), `${name} is our replacement, not the original`);
    }
  });
});

describe('Identity (wasm)', () => {
  it('shares the input\'s buffer: each tensor stays readable after the other is disposed, and the buffer is freed after both', async () => {
    await useBackend('wasm');
    const buffers = () => tf.backend().numDataIds();
    const before = buffers();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.engine().runKernel('Identity', { x }) as tf.Tensor;
    assert.equal(buffers() - before, 1, 'one buffer, not two');
    x.dispose();
    assert.deepEqual(Array.from(await y.data()), [1, 2, 3]);
    const z = tf.engine().runKernel('Identity', { x: y }) as tf.Tensor;
    y.dispose();
    assert.deepEqual(Array.from(await z.data()), [1, 2, 3]);
    z.dispose();
    assert.equal(buffers(), before, 'freed once nothing refers to it');
  });

  it('gradients through tf.grads are unchanged (dense layer, cpu reference)', async () => {
    const x = rand([4, 6], 91);
    const w = rand([6, 5], 92);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.relu(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))));
    const want = await gradsOn('cpu', loss, x, w);
    const got = await gradsOn('wasm', loss, x, w);
    for (const k of [0, 1]) assert.ok(relativeError(got[k] as Float32Array, want[k] as Float32Array) <= TOL, `gradient ${k}`);
  });
});

describe('Conv2DBackpropFilter (wasm) vs cpu', () => {
  const cases: { label: string; x: number[]; filter: number[]; strides: number; pad: 'same' | 'valid' | number[][] }[] = [
    { label: 'stride 1, explicit pads 2', x: [2, 9, 9, 3], filter: [5, 5, 3, 4], strides: 1, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
    { label: 'stride 1, asymmetric explicit pads', x: [2, 7, 8, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
    // 35 + 4 − 11 = 28 is a multiple of 4: every padded row meets the filter.
    { label: 'stride 4, 11×11, pad 2 (alexnet conv1 shape)', x: [2, 35, 35, 3], filter: [11, 11, 3, 8], strides: 4, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
    // 37 + 4 − 11 = 30 is not: the last rows never meet the filter and are sliced off.
    { label: 'stride 4, 11×11, pad 2, leftover rows', x: [1, 37, 37, 3], filter: [11, 11, 3, 8], strides: 4, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
    // 'same' with stride 2 on an even side pads 0 before and 1 after.
    { label: "'same', stride 2", x: [2, 10, 10, 3], filter: [3, 3, 3, 5], strides: 2, pad: 'same' },
    { label: "'valid', stride 1", x: [3, 8, 8, 2], filter: [3, 3, 2, 4], strides: 1, pad: 'valid' },
    { label: "'valid', stride 2, leftover column", x: [2, 9, 10, 2], filter: [3, 3, 2, 4], strides: 2, pad: 'valid' },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.label, async () => {
      const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.filter as [number, number, number, number], c.strides, 1, c.pad as 'same');
      const dy = [c.x[0] ?? 1, info.outHeight, info.outWidth, c.filter[3] ?? 1];
      const inputs = { x: rand(c.x, 10 + i), dy: rand(dy, 20 + i) };
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.filter };
      // Through the engine these small shapes take the im2col matrix-product path...
      const got = await assertSame('Conv2DBackpropFilter', inputs, attrs, c.label);
      assert.deepEqual(got.shape, c.filter);
      // ...and with the im2col limit at 0, the dilated-convolution path that large layers take.
      const conv = await runDirect((args) => conv2dBackpropFilterWasm(args, 0), inputs, attrs);
      assert.deepEqual(conv.shape, c.filter);
      const err = relativeError(conv.data, got.data);
      assert.ok(err <= TOL, `${c.label}: convolution path differs from the im2col path by ${err.toExponential(2)}`);
    });
  }

  it('is what tf.grad uses for a strided convolution (filter and input gradients)', async () => {
    const x = rand([2, 23, 23, 3], 31);
    const w = rand([11, 11, 3, 4], 32);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 4, [[0, 0], [2, 2], [2, 2], [0, 0]])));
    const [cdx, cdw] = await gradsOn('cpu', loss, x, w);
    const [wdx, wdw] = await gradsOn('wasm', loss, x, w);
    assert.ok(relativeError(wdw as Float32Array, cdw as Float32Array) <= TOL, 'filter gradient');
    assert.ok(relativeError(wdx as Float32Array, cdx as Float32Array) <= TOL, 'input gradient');
  });

  it('rejects NCHW with a message naming the format', async () => {
    await useBackend('wasm');
    const x = tf.zeros([1, 2, 5, 5]);
    const dy = tf.zeros([1, 2, 3, 3]);
    try {
      assert.throws(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] }), /NHWC only, got dataFormat 'NCHW'/);
    } finally {
      tf.dispose([x, dy]);
    }
  });
});

describe('Conv2DBackpropInput (wasm) vs cpu', () => {
  const cases: { label: string; x: number[]; filter: number[]; strides: number; pad: 'same' | 'valid' | number[][] }[] = [
    { label: 'stride 1, padded 2 (5×5 like conv2)', x: [2, 9, 9, 4], filter: [5, 5, 4, 6], strides: 1, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
    { label: "stride 1, 'same' with an even kernel (asymmetric)", x: [2, 7, 7, 3], filter: [4, 4, 3, 2], strides: 1, pad: 'same' },
    { label: "stride 1, 'valid'", x: [2, 8, 8, 3], filter: [3, 3, 3, 5], strides: 1, pad: 'valid' },
    { label: "stride 2, 'same' (fallback to the backend's kernel)", x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
    { label: 'stride 4, 11×11 (fallback)', x: [1, 23, 23, 3], filter: [11, 11, 3, 4], strides: 4, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
    // pad 3 > K − 1 = 2 would need a negative pad on the flipped convolution: fallback.
    { label: 'stride 1, pad wider than the kernel (fallback)', x: [1, 6, 6, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.label, async () => {
      const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.filter as [number, number, number, number], c.strides, 1, c.pad as 'same');
      const dy = [c.x[0] ?? 1, info.outHeight, info.outWidth, c.filter[3] ?? 1];
      const got = await assertSame('Conv2DBackpropInput', { dy: rand(dy, 40 + i), filter: rand(c.filter, 50 + i) },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x }, c.label);
      assert.deepEqual(got.shape, c.x);
    });
  }
});

describe('BatchMatMul (wasm) vs cpu', () => {
  // [a shape, b shape, transposeA, transposeB, what the kernel does with it]
  const cases: [number[], number[], boolean, boolean, string][] = [
    [[5, 7], [7, 3], false, false, 'neither (original kernel)'],
    [[7, 5], [7, 3], true, false, 'transposeA, direct'],
    [[5, 7], [3, 7], false, true, 'transposeB, direct'],
    [[7, 5], [3, 7], true, true, 'both, direct'],
    // dX = dY·Wᵀ: direct moves K² = 65536 elements, swapped 2·64·K = 32768: the swapped form.
    [[64, 256], [256, 256], false, true, 'transposeB, swapped (small [64,K] × big [K,K]ᵀ)'],
    // dW = Xᵀ·dY: direct moves 64·300 = 19200, swapped 64·40 + 300·40 = 14560: swapped.
    [[64, 300], [64, 40], true, false, 'transposeA, swapped'],
    // dW = Xᵀ·dY with a wide dY: direct 64·30 = 1920 < swapped 64·200 + 30·200: direct.
    [[64, 30], [64, 200], true, false, 'transposeA, direct (wide B)'],
    // Both flagged with a long K: direct 2·100·4 = 800, swapped only the 4×4 output: swapped.
    [[100, 4], [4, 100], true, true, 'both, swapped'],
    [[2, 5, 7], [2, 3, 7], false, true, 'batched (original kernel)'],
    [[1, 7, 5], [1, 7, 3], true, false, 'rank 3 with batch 1 (original kernel)'],
  ];
  for (const [i, [as, bs, ta, tb, label]] of cases.entries()) {
    it(label, async () => {
      await assertSame('BatchMatMul', { a: rand(as, 60 + i), b: rand(bs, 70 + i) }, { transposeA: ta, transposeB: tb }, label);
    });
  }

  it('tf.grad of a dense layer (which needs both transposed products) matches cpu', async () => {
    const x = rand([16, 96], 81);
    const w = rand([96, 200], 82);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)));
    const [cdx, cdw] = await gradsOn('cpu', loss, x, w);
    const [wdx, wdw] = await gradsOn('wasm', loss, x, w);
    assert.ok(relativeError(wdx as Float32Array, cdx as Float32Array) <= TOL, 'dX');
    assert.ok(relativeError(wdw as Float32Array, cdw as Float32Array) <= TOL, 'dW');
  });

  it('a dense layer computed from Wᵀ (denseViaTransposed) has x·W\'s value and gradients; Wᵀ gets none', async () => {
    const x = rand([16, 96], 83);
    const w = rand([96, 200], 84);
    const plain = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)));
    const viaT = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(denseViaTransposed(a as tf.Tensor2D, b as tf.Tensor2D, tf.transpose(b) as tf.Tensor2D)));
    const want = await gradsOn('cpu', plain, x, w);
    const got = await gradsOn('wasm', viaT, x, w);
    for (const [k, name] of ['dX', 'dW'].entries()) {
      const err = relativeError(got[k] as Float32Array, want[k] as Float32Array);
      assert.ok(err <= TOL, `${name}: relative error ${err.toExponential(2)}`);
    }
    await useBackend('wasm');
    const [xt, wt] = [tf.tensor2d(x.data, x.shape as [number, number]), tf.tensor2d(w.data, w.shape as [number, number])];
    const wT = tf.transpose(wt);
    const ref = tf.matMul(xt, wt);
    const y = denseViaTransposed(xt, wt, wT);
    assert.deepEqual(y.shape, [16, 200]);
    assert.ok(relativeError(y.dataSync() as Float32Array, ref.dataSync() as Float32Array) <= TOL, 'value');
    // Wᵀ is a constant of the step: tfjs finds no path from it to the loss.
    assert.throws(() => tf.grads((t: tf.Tensor) => tf.sum(denseViaTransposed(xt, wt, t as tf.Tensor2D)))([wT]), /Cannot compute gradient/);
    tf.dispose([xt, wt, wT, ref, y]);
  });
});

describe('Transpose (wasm) vs cpu', () => {
  const cases: [number[], number[], string][] = [
    [[70, 130], [1, 0], '2-D across block edges'],
    [[64, 64], [1, 0], '2-D, exactly one block'],
    [[1, 1, 5, 3], [0, 1, 3, 2], 'last two axes with leading 1s'],
    [[2, 3, 4, 5], [0, 2, 1, 3], '4-D perm (strided N-D copy)'],
    [[2, 5, 3], [0, 2, 1], 'last two axes with a batch of 2 (fallback)'],
    [[4, 3, 2], [2, 1, 0], 'full reversal (fallback)'],
  ];
  for (const [i, [shape, perm, label]] of cases.entries()) {
    it(label, async () => {
      const got = await assertSame('Transpose', { x: rand(shape, 90 + i) }, { perm }, label);
      assert.deepEqual(got.shape, perm.map((p) => shape[p]));
    });
  }

  it('int32 tensors go to the fallback and stay exact', async () => {
    const x: Input = { shape: [6, 9], data: Float32Array.from({ length: 54 }, (_, i) => i - 20), dtype: 'int32' };
    const got = await assertSame('Transpose', { x }, { perm: [1, 0] }, 'int32');
    assert.equal(got.data[1], 9 - 20);
  });

  it('transpose2dInto places element (r, c) at (c, r)', () => {
    const rows = 67;
    const cols = 3;
    const src = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const dst = new Float32Array(rows * cols);
    transpose2dInto(src, rows, cols, dst);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) assert.equal(dst[c * rows + r], r * cols + c);
  });
});

/** ReLU-like values: a third are exactly 0, so pooling windows hold ties. */
function reluRand(shape: number[], seed: number): Input {
  const x = rand(shape, seed);
  return { shape, data: x.data.map((v) => (v < -0.33 ? 0 : v + 0.33)) };
}

describe('MaxPoolGrad (wasm) vs cpu', () => {
  const cases: { label: string; x: number[]; filterSize: number; strides: number; pad: 'same' | 'valid' | number }[] = [
    { label: "3×3 stride 2 'valid' (the AlexNet pool), ReLU ties", x: [2, 13, 13, 5], filterSize: 3, strides: 2, pad: 'valid' },
    { label: "3×3 stride 2 'same' (windows cut by the border)", x: [2, 8, 8, 3], filterSize: 3, strides: 2, pad: 'same' },
    { label: '2×2 stride 1, explicit pad 1', x: [1, 6, 7, 4], filterSize: 2, strides: 1, pad: 1 },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.label, async () => {
      const input = reluRand(c.x, 60 + i);
      const attrs = { filterSize: c.filterSize, strides: c.strides, pad: c.pad, dimRoundingMode: undefined };
      const out = await runOn('cpu', 'MaxPool', { x: input }, attrs);
      const dy = rand(out.shape, 70 + i);
      const got = await assertSame('MaxPoolGrad', { dy, input, output: { shape: out.shape, data: out.data } }, attrs, c.label);
      // Each dy lands on exactly one input pixel (the first maximum), so the sums agree exactly.
      const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum(got.data) - sum(dy.data)) < 1e-3, `${c.label}: every window passes its gradient on once`);
    });
  }
  it('an all-zero window sends its gradient to its first pixel only', async () => {
    const zeros: Input = { shape: [1, 3, 3, 1], data: new Float32Array(9) };
    const attrs = { filterSize: 3, strides: 2, pad: 'valid', dimRoundingMode: undefined };
    const got = await runOn('wasm', 'MaxPoolGrad', { dy: { shape: [1, 1, 1, 1], data: Float32Array.of(5) }, input: zeros, output: { shape: [1, 1, 1, 1], data: new Float32Array(1) } }, attrs);
    assert.deepEqual([...got.data], [5, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
  it('a window whose maximum appears three times sends its gradient to the first one only', async () => {
    const input: Input = { shape: [1, 3, 3, 1], data: Float32Array.of(1, 2, 3, 0, 3, 1, 3, 1, 2) };
    const attrs = { filterSize: 3, strides: 2, pad: 'valid', dimRoundingMode: undefined };
    const got = await runOn('wasm', 'MaxPoolGrad', { dy: { shape: [1, 1, 1, 1], data: Float32Array.of(5) }, input, output: { shape: [1, 1, 1, 1], data: Float32Array.of(3) } }, attrs);
    assert.deepEqual([...got.data], [0, 0, 5, 0, 0, 0, 0, 0, 0]);
  });
});

describe('LRN and LRNGrad (wasm) vs cpu', () => {
  const cases: { label: string; x: number[]; attrs: { depthRadius: number; bias: number; alpha: number; beta: number } }[] = [
    { label: "the paper's constants (r 2, k 2, α 1e-4, β 0.75)", x: [2, 5, 5, 16], attrs: { depthRadius: 2, bias: 2, alpha: 1e-4, beta: 0.75 } },
    { label: 'strong normalization (α 0.5) so the cross-channel term matters', x: [1, 4, 4, 9], attrs: { depthRadius: 2, bias: 1, alpha: 0.5, beta: 0.75 } },
    { label: 'β 0.5 and a radius wider than the channels', x: [1, 3, 3, 3], attrs: { depthRadius: 4, bias: 1, alpha: 0.3, beta: 0.5 } },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.label, async () => {
      const x = reluRand(c.x, 80 + i);
      for (let j = 0; j < x.data.length; j++) x.data[j] = (x.data[j] as number) * 3; // values up to ~4: x² is not negligible
      const y = await assertSame('LRN', { x }, c.attrs, `${c.label}: LRN`);
      await assertSame('LRNGrad', { x, y: { shape: y.shape, data: y.data }, dy: rand(c.x, 90 + i) }, c.attrs, `${c.label}: LRNGrad`);
    });
  }
  it('tf.grad through conv → LRN → max pool matches cpu', async () => {
    const x = rand([2, 9, 9, 3], 100);
    const w = rand([3, 3, 3, 8], 101);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.maxPool(tf.localResponseNormalization(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')), 2, 1, 0.2, 0.75), 3, 2, 'valid').square().sum();
    const want = await gradsOn('cpu', f, x, w);
    const got = await gradsOn('wasm', f, x, w);
    for (const k of [0, 1]) {
      const err = relativeError(got[k] as Float32Array, want[k] as Float32Array);
      assert.ok(err <= 1e-4, `gradient ${k}: relative error ${err.toExponential(2)}`);
    }
  });
});
