/**
 * groupedConv2d (training/network.ts): the paper's two-tower convolution built from split, conv2d
 * and concat. Its gradients must come out of the wasm backend (with training/kernels registered)
 * exactly as from the cpu backend, and equal the dense convolution with a block-diagonal kernel.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../training/backend.js';
import { groupedConv2d, mulberry32 } from '../../training/network.js';
import { relativeError } from '../model/onnx-checker.js';

const TOL = 1e-5;
// x [2, 7, 7, 6], grouped HWIO kernel [3, 3, 3 (= 6 / 2), 4]: two towers of 3 → 2 channels.
const X_SHAPE = [2, 7, 7, 6] as const;
const W_SHAPE = [3, 3, 3, 4] as const;
const GROUPS = 2;

function random(shape: readonly number[], seed: number): Float32Array {
  const r = mulberry32(seed);
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => r() * 2 - 1);
}

/** Dense kernel [3, 3, 6, 4]: output o of tower g keeps its weights on g's input channels, zeros elsewhere. */
function blockDiagonal(w: Float32Array): Float32Array {
  const [kh, kw, cg, cout] = W_SHAPE;
  const cin = cg * GROUPS;
  const out = new Float32Array(kh * kw * cin * cout);
  for (let s = 0; s < kh * kw; s++)
    for (let i = 0; i < cg; i++)
      for (let o = 0; o < cout; o++) out[(s * cin + Math.floor(o / (cout / GROUPS)) * cg + i) * cout + o] = w[(s * cg + i) * cout + o] ?? 0;
  return out;
}

interface Grads {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

/** Output and gradients of sum(y²) (a loss whose gradient depends on every output value). */
async function run(backend: 'cpu' | 'wasm', f: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D, w: Float32Array, wShape: readonly number[]): Promise<Grads> {
  await useBackend(backend);
  const x = tf.tensor4d(random(X_SHAPE, 1), [...X_SHAPE] as [number, number, number, number]);
  const wt = tf.tensor4d(w, [...wShape] as [number, number, number, number]);
  const y = f(x, wt);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(f(a as tf.Tensor4D, b as tf.Tensor4D))))([x, wt]);
  const out = { y: Float32Array.from(await y.data()), dx: Float32Array.from(await (dx as tf.Tensor).data()), dw: Float32Array.from(await (dw as tf.Tensor).data()) };
  tf.dispose([x, wt, y, dx as tf.Tensor, dw as tf.Tensor]);
  return out;
}

describe('groupedConv2d', () => {
  const w = random(W_SHAPE, 2);
  const grouped = (x: tf.Tensor4D, k: tf.Tensor4D): tf.Tensor4D => groupedConv2d(x, k, 1, 1, GROUPS);

  it('computes and backpropagates on wasm as on cpu', async () => {
    const cpu = await run('cpu', grouped, w, W_SHAPE);
    const wasm = await run('wasm', grouped, w, W_SHAPE);
    assert.deepEqual(wasm.y.length, 2 * 7 * 7 * 4);
    for (const k of ['y', 'dx', 'dw'] as const) {
      assert.ok(cpu[k].some((v) => Math.abs(v) > 1e-3), `${k}: reference is all zeros`);
      const err = relativeError(wasm[k], cpu[k]);
      assert.ok(err <= TOL, `${k}: wasm vs cpu relative error ${err.toExponential(2)}`);
    }
  });

  it('equals a dense convolution with a block-diagonal kernel, gradients included', async () => {
    const g = await run('wasm', grouped, w, W_SHAPE);
    const dense = await run('wasm', (x, k) => tf.conv2d(x, k, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]), blockDiagonal(w), [3, 3, 6, 4]);
    assert.ok(relativeError(g.y, dense.y) <= TOL, 'forward');
    assert.ok(relativeError(g.dx, dense.dx) <= TOL, 'input gradient');
    // The grouped kernel's gradient is the dense one's on the diagonal blocks (off-tower weights do not exist).
    const [kh, kw, cg, cout] = W_SHAPE;
    const onBlocks = new Float32Array(g.dw.length);
    for (let s = 0; s < kh * kw; s++)
      for (let i = 0; i < cg; i++)
        for (let o = 0; o < cout; o++) onBlocks[(s * cg + i) * cout + o] = dense.dw[(s * cg * GROUPS + Math.floor(o / (cout / GROUPS)) * cg + i) * cout + o] ?? 0;
    assert.ok(relativeError(g.dw, onBlocks) <= TOL, 'filter gradient');
  });

  it('is a plain conv2d with one group', async () => {
    await useBackend('wasm');
    const x = tf.tensor4d(random([1, 5, 5, 3], 3), [1, 5, 5, 3]);
    const k = tf.tensor4d(random([3, 3, 3, 2], 4), [3, 3, 3, 2]);
    const a = groupedConv2d(x, k, 2, 0, 1);
    const b = tf.conv2d(x, k, 2, 'valid');
    assert.deepEqual(a.shape, [1, 2, 2, 2]);
    assert.ok(relativeError(await a.data(), await b.data()) === 0);
    tf.dispose([x, k, a, b]);
  });
});
