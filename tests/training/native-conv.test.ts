/**
 * The native (onnxruntime) convolutions and matrix products of training/kernels/native-conv.ts
 * against the cpu backend's kernels on small random shapes: forward convolution, input gradient and
 * filter gradient for stride-1 geometries (explicit symmetric and asymmetric pads, 'same', 'valid'),
 * the four transpose cases of the matrix product, a whole tf.grad through conv → ReLU → dense; that
 * the native path is the one taken (sessions are created) and that strided convolutions and the
 * switch set off fall back to the wasm kernels with the same results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { NamedAttrMap, NamedTensorMap } from '@tensorflow/tfjs';
import { useBackend } from '../../training/backend.js';
import { mulberry32 } from '../../training/network.js';
import { nativeSessionCount, setNativeConvolutions } from '../../training/kernels/native-conv.js';
import { relativeError } from '../model/onnx-checker.js';

const TOL = 1e-5;

interface Input {
  shape: number[];
  data: Float32Array;
}

function rand(shape: number[], seed: number): Input {
  const r = mulberry32(seed);
  return { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => r() * 2 - 1) };
}

async function runOn(backend: 'cpu' | 'wasm', name: string, inputs: Record<string, Input>, attrs: object): Promise<Float32Array> {
  await useBackend(backend);
  const tensors: NamedTensorMap = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.data, v.shape);
  const out = tf.engine().runKernel(name, tensors, attrs as NamedAttrMap) as tf.Tensor;
  const data = Float32Array.from(await out.data());
  tf.dispose([out, ...Object.values(tensors)]);
  return data;
}

/** Runs on wasm (native path) and cpu; asserts agreement and that a native session ran. */
async function assertNative(name: string, inputs: Record<string, Input>, attrs: object, label: string): Promise<void> {
  const want = await runOn('cpu', name, inputs, attrs);
  const sessions = nativeSessionCount();
  const got = await runOn('wasm', name, inputs, attrs);
  const again = await runOn('wasm', name, inputs, attrs);
  assert.equal(nativeSessionCount(), sessions + 1, `${label}: one native session built, then reused`);
  assert.ok(want.some((v) => Math.abs(v) > 1e-3), `${label}: reference is not all zeros`);
  const err = relativeError(got, want);
  assert.ok(err <= TOL, `${label}: relative error ${err.toExponential(2)} > ${TOL}`);
  assert.deepEqual(again, got, `${label}: a cached session gives the same result`);
}

type Pad = 'same' | 'valid' | number[][];

const geometries: { label: string; x: number[]; filter: number[]; pad: Pad }[] = [
  { label: 'explicit pads 2 (conv2 of the small preset, scaled down)', x: [3, 9, 9, 4], filter: [5, 5, 4, 6], pad: [[0, 0], [2, 2], [2, 2], [0, 0]] },
  { label: 'asymmetric explicit pads', x: [2, 7, 8, 2], filter: [3, 3, 2, 3], pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
  { label: "'same', even kernel", x: [2, 6, 6, 3], filter: [4, 4, 3, 5], pad: 'same' },
  { label: "'valid', one input channel", x: [2, 10, 10, 1], filter: [3, 3, 1, 4], pad: 'valid' },
];

before(async () => {
  await useBackend('wasm');
  setNativeConvolutions(true);
});

after(() => setNativeConvolutions(true));

describe('native convolutions (onnxruntime) vs cpu', () => {
  for (const [i, g] of geometries.entries()) {
    const info = tf.backend_util.computeConv2DInfo(g.x as [number, number, number, number], g.filter as [number, number, number, number], 1, 1, g.pad as 'same');
    const dyShape = [g.x[0] ?? 1, info.outHeight, info.outWidth, g.filter[3] ?? 1];
    it(`forward, ${g.label}`, async () => {
      await assertNative('Conv2D', { x: rand(g.x, 10 + i), filter: rand(g.filter, 20 + i) }, { strides: 1, pad: g.pad, dataFormat: 'NHWC', dilations: 1 }, `forward ${g.label}`);
    });
    it(`input gradient, ${g.label}`, async () => {
      await assertNative('Conv2DBackpropInput', { dy: rand(dyShape, 30 + i), filter: rand(g.filter, 40 + i) }, { strides: 1, pad: g.pad, dataFormat: 'NHWC', inputShape: g.x }, `input gradient ${g.label}`);
    });
    it(`filter gradient, ${g.label}`, async () => {
      await assertNative('Conv2DBackpropFilter', { x: rand(g.x, 50 + i), dy: rand(dyShape, 60 + i) }, { strides: 1, pad: g.pad, dataFormat: 'NHWC', filterShape: g.filter }, `filter gradient ${g.label}`);
    });
  }

  it('strided convolutions and the switch set off stay on the wasm kernels, with the same results', async () => {
    const x = rand([2, 9, 9, 3], 70);
    const filter = rand([3, 3, 3, 4], 71);
    const strided = { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    const sessions = nativeSessionCount();
    const want = await runOn('cpu', 'Conv2D', { x, filter }, strided);
    assert.ok(relativeError(await runOn('wasm', 'Conv2D', { x, filter }, strided), want) <= TOL);
    assert.equal(nativeSessionCount(), sessions, 'stride 2: no native session');
    const plain = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    setNativeConvolutions(false);
    try {
      const wasm = await runOn('wasm', 'Conv2D', { x, filter }, plain);
      assert.equal(nativeSessionCount(), sessions, 'switched off: no native session');
      setNativeConvolutions(true);
      assert.ok(relativeError(await runOn('wasm', 'Conv2D', { x, filter }, plain), wasm) <= TOL, 'native and wasm agree');
    } finally {
      setNativeConvolutions(true);
    }
  });
});

describe('native matrix products (onnxruntime Gemm) vs cpu', () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[7, 5], [5, 9], false, false],
    [[5, 7], [5, 9], true, false],
    [[7, 5], [9, 5], false, true],
    [[5, 7], [9, 5], true, true],
    [[1, 6, 4], [1, 4, 3], false, false],
  ];
  for (const [i, [a, b, ta, tb]] of cases.entries()) {
    it(`${a.join('×')} · ${b.join('×')}, transposeA ${ta}, transposeB ${tb}`, async () => {
      await assertNative('BatchMatMul', { a: rand(a, 80 + i), b: rand(b, 90 + i) }, { transposeA: ta, transposeB: tb }, `matmul ${i}`);
    });
  }

  it('tf.grad through conv → ReLU → dense matches cpu', async () => {
    const grads = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await useBackend(backend);
      const x = tf.tensor4d(rand([2, 6, 6, 2], 100).data, [2, 6, 6, 2]);
      const w = tf.tensor4d(rand([3, 3, 2, 4], 101).data, [3, 3, 2, 4]);
      const d = tf.tensor2d(rand([144, 5], 102).data, [144, 5]);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.square(tf.matMul(tf.reshape(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')), [2, 144]), c as tf.Tensor2D)));
      const gs = tf.grads((...t: tf.Tensor[]) => f(t[0] as tf.Tensor, t[1] as tf.Tensor, t[2] as tf.Tensor))([x, w, d]);
      const out = await Promise.all(gs.map(async (g) => Float32Array.from(await g.data())));
      tf.dispose([x, w, d, ...gs]);
      return out;
    };
    const want = await grads('cpu');
    const got = await grads('wasm');
    for (const k of [0, 1, 2]) {
      const err = relativeError(got[k] as Float32Array, want[k] as Float32Array);
      assert.ok(err <= TOL, `gradient ${k}: relative error ${err.toExponential(2)}`);
    }
  });
});
