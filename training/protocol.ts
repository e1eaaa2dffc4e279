/** Messages between the trainer (main thread) and its worker threads. */
import type { ParamLayout } from './params.js';

export interface PresetSpec {
  name: string;
  numClasses: number;
  channels: number;
  inputSize: number;
}

export interface InitMessage {
  type: 'init';
  workerIndex: number;
  preset: PresetSpec;
  layout: ParamLayout;
  params: Float32Array;
  velocity: Float32Array;
  /** One gradient slot per worker; this worker writes slot[workerIndex] and reads all of them. */
  gradSlots: Float32Array[];
  /** Two batch buffers (double buffering: the main thread fills one while workers read the other). */
  batches: Float32Array[];
  labels: Int32Array[];
  backend: 'wasm' | 'cpu';
  /** Stride-1 convolutions and matrix products on onnxruntime's native kernels (training/kernels/native-conv.ts). */
  native: boolean;
}

export interface StepMessage {
  type: 'step';
  buffer: number;
  offset: number;
  count: number;
  dropoutSeed: number;
}

export interface UpdateMessage {
  type: 'update';
  start: number;
  end: number;
  lr: number;
  momentum: number;
  weightDecay: number;
}

export interface EvalMessage {
  type: 'eval';
  buffer: number;
  offset: number;
  count: number;
}

/** Where a worker's step went, in milliseconds (the train bench's breakdown). */
// A type, not an interface: replies pass through tf.tidy, whose containers need an index signature.
export type WorkerStepTimes = {
  /** Shared weights → fresh tensors in the wasm heap. */
  upload: number;
  /** Forward + backward (tfjs kernels). */
  compute: number;
  /** Gradients → the worker's shared slot. */
  copyOut: number;
  /** Loss and accuracy read back, tensors disposed. */
  finish: number;
};

export type ToWorker = InitMessage | StepMessage | UpdateMessage | EvalMessage | { type: 'exit' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'stepped'; loss: number; correct: number; ms: WorkerStepTimes }
  | { type: 'updated'; ms: number }
  | { type: 'evaluated'; loss: number; predictions: Int32Array }
  | { type: 'error'; message: string; stack?: string };
