/**
 * BatchMatMul for the wasm backend without its slow transposed path. The backend hands
 * untransposed single-batch products to XNNPACK (≈ 20 GFLOP/s here) but computes any product
 * with transposeA/transposeB in a scalar loop (0.4–2.8 GFLOP/s). Backprop through a dense layer
 * needs exactly those two products (dX = dY·Wᵀ, dW = Xᵀ·dY), so we materialize the transposed
 * operand with a fast blocked transpose and take XNNPACK's path.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { transpose2d } from './transpose.js';
import { release } from './wasm-util.js';

function batchOf(t: TensorInfo): number {
  return t.shape.slice(0, -2).reduce((a, b) => a * b, 1);
}

/**
 * Chooses between transposing the operand named by the flag, or using (Bᵀ·Aᵀ)ᵀ = A·B with the
 * other operand transposed plus a transpose of the output — whichever moves fewer elements.
 * For dX = dY·Wᵀ with W 4096×4096 and dY 64×4096 the second form avoids touching W at all.
 */
export function makeBatchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const { backend } = args;
    const a = args.inputs['a'] as TensorInfo;
    const b = args.inputs['b'] as TensorInfo;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if ((!transposeA && !transposeB) || batchOf(a) !== 1 || batchOf(b) !== 1 || a.shape.length !== 2 || b.shape.length !== 2) {
      return original(args);
    }
    const [ar, ac] = a.shape as [number, number];
    const [br, bc] = b.shape as [number, number];
    const plain = (x: TensorInfo, y: TensorInfo) =>
      original({ backend, inputs: { a: x, b: y }, attrs: { ...args.attrs, transposeA: false, transposeB: false } }) as TensorInfo;
    // Output is M×N with M = rows of op(A), N = cols of op(B).
    const m = transposeA ? ac : ar;
    const n = transposeB ? br : bc;
    const direct = (transposeA ? ar * ac : 0) + (transposeB ? br * bc : 0);
    // Swapped form: C = (op(B)ᵀ · op(A)ᵀ)ᵀ; op(B)ᵀ needs a transpose only when B was not flagged.
    const swapped = (transposeB ? 0 : br * bc) + (transposeA ? 0 : ar * ac) + m * n;
    if (direct <= swapped) {
      const at = transposeA ? transpose2d(backend, a, ar, ac) : a;
      const bt = transposeB ? transpose2d(backend, b, br, bc) : b;
      const out = plain(at, bt);
      if (at !== a) release(backend, at);
      if (bt !== b) release(backend, bt);
      return out;
    }
    const left = transposeB ? b : transpose2d(backend, b, br, bc); // op(B)ᵀ
    const right = transposeA ? a : transpose2d(backend, a, ar, ac); // op(A)ᵀ
    const ct = plain(left, right); // N×M
    const out = transpose2d(backend, ct, n, m);
    if (left !== b) release(backend, left);
    if (right !== a) release(backend, right);
    release(backend, ct);
    return out;
  };
}
