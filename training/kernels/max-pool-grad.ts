/**
 * MaxPoolGrad for the wasm backend. The backend's own kernel walks every input pixel and re-derives
 * which windows it won (≈ 33 ns per element here: 105 ms of a 2.4 s step for conv1's 64×28×28×64
 * at batch 64). Here each output window finds its winner once, as the first pixel equal to the
 * pool's output (tfjs passes the forward output in), and adds its dy there: one pass over the windows.
 *
 * The winner is the FIRST strictly greatest value in row-major window order, as in the cpu
 * backend's maxPoolPositions: after ReLU whole windows are 0, and ties must all go to one pixel.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { heapView, makeOutput } from './wasm-util.js';

export interface PoolGeometry {
  batch: number;
  inH: number;
  inW: number;
  channels: number;
  outH: number;
  outW: number;
  filterH: number;
  filterW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
}

/**
 * dx (zeroed here) of a max pool over NHWC x, given the pool's output y and dy. Each window's winner
 * per channel is the first pixel equal to y (y is an exact selection of x, so equality is exact):
 * a scan with one unpredictable exit per window and channel, where a running maximum would
 * mispredict at every new maximum.
 */
export function maxPoolGradInto(x: Float32Array, y: Float32Array, dy: Float32Array, g: PoolGeometry, dx: Float32Array): void {
  const C = g.channels;
  const rowStride = g.inW * C;
  dx.fill(0);
  for (let b = 0; b < g.batch; b++) {
    const xb = b * g.inH * rowStride;
    for (let oh = 0; oh < g.outH; oh++) {
      const h0 = Math.max(0, oh * g.strideH - g.padTop);
      const h1 = Math.min(g.inH, oh * g.strideH - g.padTop + g.filterH);
      for (let ow = 0; ow < g.outW; ow++) {
        const w0 = Math.max(0, ow * g.strideW - g.padLeft);
        const w1 = Math.min(g.inW, ow * g.strideW - g.padLeft + g.filterW);
        const o = ((b * g.outH + oh) * g.outW + ow) * C;
        const first = xb + h0 * rowStride + w0 * C;
        for (let c = 0; c < C; c++) {
          const max = y[o + c] as number;
          let at = -1;
          scan: for (let h = h0, row = first + c; h < h1; h++, row += rowStride) {
            for (let w = w0, i = row; w < w1; w++, i += C) {
              if (x[i] === max) {
                at = i;
                break scan;
              }
            }
          }
          if (at >= 0) dx[at] = (dx[at] as number) + (dy[o + c] as number);
        }
      }
    }
  }
}

export function makeMaxPoolGrad(original: KernelFunc): KernelFunc {
  return (args) => {
    const { backend } = args;
    const dy = args.inputs['dy'] as TensorInfo;
    const x = args.inputs['input'] as TensorInfo;
    const y = args.inputs['output'] as TensorInfo | undefined;
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    if (x.dtype !== 'float32' || dy.dtype !== 'float32' || y?.dtype !== 'float32') return original(args);
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
    );
    const dx = makeOutput(backend, [...x.shape]);
    // Views are taken after makeOutput: allocating may grow (and so replace) the heap buffer.
    maxPoolGradInto(heapView(backend, x), heapView(backend, y), heapView(backend, dy), {
      batch: info.batchSize, inH: info.inHeight, inW: info.inWidth, channels: info.inChannels,
      outH: info.outHeight, outW: info.outWidth, filterH: info.filterHeight, filterW: info.filterWidth,
      strideH: info.strideHeight, strideW: info.strideWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left,
    }, heapView(backend, dx));
    return dx;
  };
}
