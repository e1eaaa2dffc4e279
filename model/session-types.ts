/**
 * What both image-model sessions share (the in-thread one in session.ts and the worker-thread one
 * in worker-session.ts): the options, the session interface and the run() argument checks. Kept
 * apart so that neither session module imports the other's dependents (no import cycle).
 */
import type { ModelContract } from './contract.js';
import { channelCount } from './contract.js';

export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export type DeviceRequest = (typeof DEVICES)[number];
export type Provider = 'cpu' | 'cuda' | 'webgpu';

/** The subset of a pino logger the session uses. */
export interface SessionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SessionOptions {
  device?: DeviceRequest;
  /** intraOpNumThreads of the runtime (default 2). */
  threads?: number;
  /**
   * Let onnxruntime's pool threads spin while waiting for work (default true, onnxruntime's own
   * default). Spinning shaves latency off back-to-back runs on an idle machine, but the spinning
   * threads burn CPU that image decoding and HTTP need when they share a few cores; the server
   * turns it off by default (config `inferenceSpin`).
   */
  spin?: boolean;
  logger?: SessionLogger;
  /**
   * Run the session in a worker thread (default false). onnxruntime-node's `run()` holds its
   * thread for the whole batch; the server sets this so requests keep flowing meanwhile.
   */
  worker?: boolean;
}

export interface InferenceOutput {
  /** [n, K] row-major. */
  logits: Float32Array;
  /** [n, embeddingDim] row-major: fc7 after ReLU. */
  embedding: Float32Array;
  n: number;
}

export interface ModelSession {
  readonly contract: ModelContract;
  readonly modelPath: string;
  /** The execution provider that actually runs the graph (after any fallback). */
  readonly provider: Provider;
  /** [C, H, W] of one crop. */
  readonly inputShape: readonly [number, number, number];
  /** `batch` holds at least n·C·H·W floats, NCHW; extra floats are ignored. */
  run(batch: Float32Array, n: number): Promise<InferenceOutput>;
  close(): Promise<void>;
}

/** [C, H, W] of one crop, from the contract's preprocessing. */
export function cropShape(contract: ModelContract): readonly [number, number, number] {
  const size = contract.preprocess.inputSize;
  return [channelCount(contract.preprocess), size, size];
}

/** Validates run() arguments; returns the floats the n crops occupy. */
export function checkRunArgs(batch: Float32Array, n: number, shape: readonly [number, number, number]): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`'n' must be a positive integer, got ${String(n)}`);
  const need = n * shape[0] * shape[1] * shape[2];
  if (batch.length < need) throw new RangeError(`'batch' holds ${batch.length} floats, ${n} crops of ${shape.join('×')} need ${need}`);
  return need;
}
