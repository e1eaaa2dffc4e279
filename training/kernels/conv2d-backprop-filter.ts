/**
 * Conv2DBackpropFilter for the wasm backend, which does not ship one.
 *
 * The filter gradient is itself a convolution: for stride s,
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} xpad[b, oh·s + kh, ow·s + kw, ci] · dy[b, oh, ow, co].
 * Rename axes so the batch becomes the reduction ("input channel") axis:
 *   X' = xpad transposed to [CI, Hp, Wp, B]     (CI plays the batch role)
 *   F' = dy   transposed to [OH, OW, B, CO]     (a filter of OH×OW taps, B in, CO out)
 * and conv2d(X', F', stride 1, dilation s, 'valid') gives [CI, KH', KW', CO] with KH' ≥ KH.
 * That runs on XNNPACK's optimized convolution instead of a scalar loop: ~100× faster than
 * the cpu backend's kernel for the same gradient.
 *
 * When the patch matrix is small, the transposed im2col matrix [KH·KW·CI, B·OH·OW] times
 * dy [B·OH·OW, CO] is one plain XNNPACK matrix product, and faster: for conv1 of the small preset
 * (25 taps × 1 channel) the convolution above degenerates to a 25-row output with a 28×28×64
 * filter (~4 GFLOP/s). The product's rows are already in HWIO order.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { call, heapView, makeOutput, release, type Backend, type KernelArgs } from './wasm-util.js';
import { transpose2dInto } from './transpose.js';

/**
 * Largest transposed im2col matrix built for the matrix-product path (floats; 32 MB). Measured at
 * batch 64 (conv path / im2col time): conv1 3.7×, conv3 1.29×, conv4 1.15×, conv5 1.15×, but
 * conv2 (17M floats) 0.87×: past a few million rows×columns, writing the matrix costs more than it saves.
 */
const IM2COL_MAX = 8 * 1024 * 1024;

/** `im2colMax`: size limit of the matrix-product path (0 forces the convolution path). */
export function conv2dBackpropFilterWasm(args: KernelArgs, im2colMax = IM2COL_MAX): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`wasm Conv2DBackpropFilter supports NHWC only, got dataFormat '${dataFormat}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const [kh, kw, ci, co] = filterShape;
  const patches = kh * kw * ci * info.batchSize * info.outHeight * info.outWidth;
  if (patches <= im2colMax) return viaIm2col(backend, x, dy, info);
  const { top, bottom, left, right } = info.padInfo;
  // 'SAME' padding may be asymmetric; explicit zero padding keeps one code path for all modes.
  const needsPad = top + bottom + left + right > 0;
  const xp = needsPad
    ? call('PadV2', backend, { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 })
    : x;
  const xt = call('Transpose', backend, { x: xp }, { perm: [3, 1, 2, 0] });
  const dyt = call('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  const g = call('Conv2D', backend, { x: xt, filter: dyt }, {
    strides: [1, 1],
    pad: 'valid',
    dataFormat: 'NHWC',
    dilations: [info.strideHeight, info.strideWidth],
    dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
  // When (Hp − KH) is not a multiple of the stride, the last rows/cols never meet the filter: cut them.
  const gs = g.shape[1] !== kh || g.shape[2] !== kw
    ? call('Slice', backend, { x: g }, { begin: [0, 0, 0, 0], size: [ci ?? -1, kh ?? -1, kw ?? -1, co ?? -1] })
    : g;
  const out = call('Transpose', backend, { x: gs }, { perm: [1, 2, 0, 3] });
  release(backend, xt, dyt, g);
  if (gs !== g) release(backend, gs);
  if (xp !== x) release(backend, xp);
  return out;
}

/** Reused between calls: the channel-major copy of x (a fresh multi-MB array per call would churn the GC). */
let scratch = new Float32Array(0);

/**
 * Row (kh, kw, ci) of the result holds, for every output pixel (b, oh, ow), the input it saw there.
 * x is first copied channel-major ([C, B, H, W], one blocked transpose), so that each row is built
 * from runs along w: sequential reads instead of one cache line per element at stride C (3–4×
 * less time for conv3–5 of the small preset).
 */
export function im2colTransposedInto(x: Float32Array, info: tf.backend_util.Conv2DInfo, out: Float32Array): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const plane = B * H * W;
  let xc = x;
  if (C > 1) {
    if (scratch.length < x.length) scratch = new Float32Array(x.length);
    xc = scratch;
    transpose2dInto(x, plane, C, xc);
  }
  const cols = B * OH * OW;
  let row = 0;
  for (let kh = 0; kh < info.filterHeight; kh++) {
    for (let kw = 0; kw < info.filterWidth; kw++) {
      // Output columns whose input column w = ow·sw + kw − left lies inside [0, W).
      const owLo = Math.min(OW, Math.max(0, Math.ceil((left - kw) / sw)));
      const owHi = Math.max(owLo, Math.min(OW, Math.floor((W - 1 + left - kw) / sw) + 1));
      for (let c = 0; c < C; c++, row++) {
        let o = row * cols;
        const base = c * plane;
        for (let b = 0; b < B; b++) {
          for (let oh = 0; oh < OH; oh++) {
            const h = oh * sh + kh - top;
            if (h < 0 || h >= H) {
              out.fill(0, o, o + OW);
              o += OW;
              continue;
            }
            let ow = 0;
            for (; ow < owLo; ow++) out[o++] = 0;
            let i = base + (b * H + h) * W + owLo * sw + kw - left;
            for (; ow < owHi; ow++, i += sw) out[o++] = xc[i] as number;
            for (; ow < OW; ow++) out[o++] = 0;
          }
        }
      }
    }
  }
}

function viaIm2col(backend: Backend, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const p = info.batchSize * info.outHeight * info.outWidth;
  const colsT = makeOutput(backend, [1, k, p]);
  im2colTransposedInto(heapView(backend, x), info, heapView(backend, colsT));
  // dy [B, OH, OW, CO] is already the row-major matrix [B·OH·OW, CO]: view it with that shape.
  const dyMatrix: TensorInfo = { dataId: dy.dataId, shape: [1, p, info.outChannels], dtype: dy.dtype };
  const out = call('BatchMatMul', backend, { a: colsT, b: dyMatrix }, { transposeA: false, transposeB: false });
  release(backend, colsT);
  out.shape = [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels];
  return out;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: (args) => conv2dBackpropFilterWasm(args),
};
