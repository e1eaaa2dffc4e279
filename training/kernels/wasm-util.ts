/**
 * Helpers for kernels written on top of the wasm backend: call its own kernels directly (no tape,
 * no engine bookkeeping) and read/write tensors in place in the WebAssembly heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

export type KernelArgs = Parameters<KernelFunc>[0];
export type Backend = KernelArgs['backend'];

/** The parts of BackendWasm we rely on (its class is not exported with types we can import). */
interface WasmBackend {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPF32: Float32Array };
}

const originals = new Map<string, KernelFunc>();

/** The wasm backend's own implementation of `name`, captured before any override of ours. */
export function wasmKernel(name: string): KernelFunc {
  const saved = originals.get(name);
  if (saved) return saved;
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel '${name}' is not registered`);
  originals.set(name, k.kernelFunc);
  return k.kernelFunc;
}

export function call(name: string, backend: Backend, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
  const out = wasmKernel(name)({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel '${name}' returned several outputs`);
  return out;
}

export function release(backend: Backend, ...infos: TensorInfo[]): void {
  for (const t of infos) (backend as unknown as WasmBackend).disposeData(t.dataId);
}

export function makeOutput(backend: Backend, shape: number[]): TensorInfo {
  return (backend as unknown as WasmBackend).makeOutput(shape, 'float32');
}

/** A float32 view of the tensor's bytes inside the wasm heap (valid until the heap grows). */
export function heapView(backend: Backend, t: TensorInfo): Float32Array {
  const b = backend as unknown as WasmBackend;
  const entry = b.dataIdMap.get(t.dataId);
  if (!entry) throw new Error('tensor is not on the wasm backend');
  const size = t.shape.reduce((a, c) => a * c, 1);
  return b.wasm.HEAPF32.subarray(entry.memoryOffset >>> 2, (entry.memoryOffset >>> 2) + size);
}

/**
 * Replaces a wasm kernel with `make(original)`. The original stays reachable through
 * wasmKernel(name) so the replacement can delegate the cases it does not improve.
 */
export function overrideWasmKernel(name: string, make: (original: KernelFunc) => KernelFunc): void {
  const original = wasmKernel(name);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: make(original) });
}

/** Replaces whatever is registered for `name` on wasm now (ours or the backend's) with `make(current)`. */
export function wrapRegisteredKernel(name: string, make: (current: KernelFunc) => KernelFunc): void {
  const current = tf.getKernel(name, 'wasm');
  if (!current) throw new Error(`wasm kernel '${name}' is not registered`);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...current, kernelFunc: make(current.kernelFunc) });
}
