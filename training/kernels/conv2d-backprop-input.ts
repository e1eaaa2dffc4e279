/**
 * Conv2DBackpropInput for stride-1 convolutions on the wasm backend. The backend's own kernel is
 * a scalar loop (≈ 1 s per call for conv2 of the small preset at batch 64); for stride 1 the input
 * gradient is a plain convolution of dy with the spatially flipped filter whose in/out channels
 * are swapped, padded by K−1−pad on each side:
 *   dx[b, h, w, ci] = Σ dy[b, h + p − kh, w + p − kw, co] · W[kh, kw, ci, co]
 *                   = conv(dy, W'[kh, kw, co, ci] = W[K−1−kh, K−1−kw, ci, co]) with pad K−1−p.
 * That runs on XNNPACK. Strided convolutions (conv1 of the full AlexNet) keep the original kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { call, release } from './wasm-util.js';

export function makeConv2dBackpropInput(original: KernelFunc): KernelFunc {
  return (args) => {
    const { backend } = args;
    const dy = args.inputs['dy'] as TensorInfo;
    const filter = args.inputs['filter'] as TensorInfo;
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const { top, bottom, left, right } = info.padInfo;
    const kh = info.filterHeight;
    const kw = info.filterWidth;
    const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
    const nhwc = attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC';
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || !nhwc || pads.some((p) => p < 0)) return original(args);
    const flipped = call('Reverse', backend, { x: filter }, { dims: [0, 1] });
    const swapped = call('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] });
    const dx = call('Conv2D', backend, { x: dy, filter: swapped }, {
      strides: [1, 1],
      pad: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined,
    } as unknown as NamedAttrMap);
    release(backend, flipped, swapped);
    return dx;
  };
}
