/**
 * TensorFlow.js backend selection for Node without tfjs-node (which cannot install here: it
 * downloads libtensorflow). `wasm` is XNNPACK compiled to WebAssembly SIMD, ~100× faster than the
 * pure-JS `cpu` backend; it lacks a few gradient kernels, which training/kernels registers.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { registerWasmTrainingKernels } from './kernels/index.js';

export type BackendName = 'wasm' | 'cpu';

let wasmPathsSet = false;

/** Absolute folder of the .wasm binaries shipped inside the npm package (no network needed). */
function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`;
}

/** Selects and initializes a backend once per thread; returns the name actually active. */
export async function useBackend(name: BackendName = 'wasm'): Promise<BackendName> {
  if (name === 'wasm' && !wasmPathsSet) {
    // usePlatformFetch=false: Node reads the files from disk instead of fetch()ing a URL.
    setWasmPaths(wasmDir(), false);
    wasmPathsSet = true;
  }
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`tfjs backend '${name}' failed to initialize`);
    await tf.ready();
  }
  if (name === 'wasm') registerWasmTrainingKernels();
  return name;
}
