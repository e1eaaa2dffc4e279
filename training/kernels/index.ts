/**
 * Training kernels for the wasm backend, registered once per thread after the backend is ready:
 * the missing Conv2DBackpropFilter, and faster replacements where the backend's own kernels are
 * scalar loops on the backward path (see each file for the measured reason).
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { makeConv2dBackpropInput } from './conv2d-backprop-input.js';
import { makeBatchMatMul } from './batch-matmul.js';
import { makeTranspose } from './transpose.js';
import { makeMaxPoolGrad } from './max-pool-grad.js';
import { makeLrn, makeLrnGrad } from './lrn.js';
import { makeIdentity } from './identity.js';
import { overrideWasmKernel, wasmKernel, wrapRegisteredKernel } from './wasm-util.js';
import { makeNativeBatchMatMul, makeNativeConv2D, makeNativeConv2DBackpropFilter, makeNativeConv2DBackpropInput } from './native-conv.js';

let registered = false;

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  // Capture the originals first: replacements delegate to them and call them by name.
  for (const name of ['Conv2D', 'Transpose', 'BatchMatMul', 'Conv2DBackpropInput', 'Reverse', 'PadV2', 'Slice', 'MaxPoolGrad', 'LRN', 'LRNGrad', 'Identity']) wasmKernel(name);
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) tf.registerKernel(conv2dBackpropFilterConfig);
  overrideWasmKernel('Transpose', makeTranspose);
  overrideWasmKernel('BatchMatMul', makeBatchMatMul);
  overrideWasmKernel('Conv2DBackpropInput', makeConv2dBackpropInput);
  overrideWasmKernel('MaxPoolGrad', makeMaxPoolGrad);
  overrideWasmKernel('LRN', makeLrn);
  overrideWasmKernel('LRNGrad', makeLrnGrad);
  overrideWasmKernel('Identity', makeIdentity);
  // Stride-1 convolutions on onnxruntime's native kernels, the wasm ones above as their fallback.
  wrapRegisteredKernel('Conv2D', makeNativeConv2D);
  wrapRegisteredKernel('Conv2DBackpropInput', makeNativeConv2DBackpropInput);
  wrapRegisteredKernel('Conv2DBackpropFilter', makeNativeConv2DBackpropFilter);
  wrapRegisteredKernel('BatchMatMul', makeNativeBatchMatMul);
}
