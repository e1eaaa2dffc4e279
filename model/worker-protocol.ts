/** Messages between model/worker-session.ts (main thread) and model/session-worker.ts. */
import type { ModelContract } from './contract.js';
import type { DeviceRequest, Provider } from './session-types.js';

export interface SessionWorkerData {
  modelPath: string;
  device: DeviceRequest;
  threads: number;
  spin: boolean;
}
import type { ModelErrorKind } from './errors.js';

/** An error thrown in the worker, with the typed fields (kind, code) the HTTP mapping reads. */
export interface WorkerErrorInfo {
  name: string;
  message: string;
  code?: string;
  kind?: ModelErrorKind;
}

/**
 * Inputs travel through shared input slots (worker-session.ts): `slot` hands the worker a slot once,
 * `drop` retires one, and a `run` names the slot its crops were written to.
 */
export type ToSessionWorker =
  | { type: 'slot'; slot: number; buffer: SharedArrayBuffer }
  | { type: 'drop'; slot: number }
  | { type: 'run'; id: number; slot: number; n: number }
  | { type: 'close' };

export type FromSessionWorker =
  | { type: 'ready'; contract: ModelContract; provider: Provider }
  | { type: 'init-error'; error: WorkerErrorInfo }
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg: string }
  | { type: 'result'; id: number; logits: Float32Array; embedding: Float32Array }
  | { type: 'run-error'; id: number; error: WorkerErrorInfo }
  | { type: 'closed' };
