/**
 * Identity for the wasm backend without a copy. The backend's own kernel copies the tensor into a
 * new buffer; tfjs's gradient code calls it on every variable's gradient and on many activations
 * (67 calls per training step of the small preset, ≈ 50M floats at a worker's 64 images: every
 * weight gradient, fc7's 16.8M included, copied once more). tfjs tensors are immutable, so the
 * output can share the input's buffer with one more reference, as the cpu backend's Identity does.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

interface RefCounting {
  incRef(dataId: object): void;
}

export function makeIdentity(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs['x'] as TensorInfo;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as RefCounting).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
