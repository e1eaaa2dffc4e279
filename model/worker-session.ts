/**
 * A ModelSession whose onnxruntime session lives in a worker thread. Measured: `run()` of
 * onnxruntime-node blocks its thread for the whole batch (a 128-crop batch of the default model
 * held the event loop 4.9 s under load), so in the server's main thread it stalls HTTP intake,
 * image decoding callbacks and crop cutting between batches. Here the main thread keeps working
 * while the worker runs.
 *
 * Inputs go through shared slots (SharedArrayBuffer), handed to the worker once and reused: the
 * caller's crops are copied into a free slot and the run names the slot. Before, each batch's
 * buffer was transferred to the worker and back; every transfer registers the buffer as new
 * external memory in the receiving isolate, and with the full AlexNet's 19 MB per 32-crop batch
 * that started a full mark-compact in the main thread about every 300 ms while serving (38 in
 * 26 s, ~400 ms of pauses, plus concurrent marking). Outputs still move back (0.5 MB per batch).
 * Slots grow to the largest batch seen, so the batcher's maximum is reached once and kept.
 */
import { Worker } from 'node:worker_threads';
import type { ModelContract } from './contract.js';
import { ModelError, ModelLoadError, type ModelErrorKind } from './errors.js';
import { checkRunArgs, cropShape, type InferenceOutput, type ModelSession, type Provider, type SessionLogger } from './session-types.js';
import type { FromSessionWorker, SessionWorkerData, ToSessionWorker, WorkerErrorInfo } from './worker-protocol.js';

/** An error raised inside the worker, keeping its kind and code (ContractError → unavailable, …). */
export class WorkerModelError extends ModelError {
  override readonly name: string;
  readonly kind: ModelErrorKind;
  readonly code: string;
  constructor(e: WorkerErrorInfo) {
    super(e.message);
    this.name = e.name;
    this.kind = e.kind ?? 'internal';
    this.code = e.code ?? 'model_error';
  }
}

/** `.ts` under tsx (tests, bench), `.js` from dist/; under tsx a bootstrap loads the source (see training/pool.ts). */
function startWorker(data: SessionWorkerData): Worker {
  const url = new URL(`./session-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: data });
  const src = `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(src, { eval: true, workerData: data });
}

/** Free input slots kept: as many as batches that can be in flight at once. */
const SPARE_SLOTS = 4;

/** Shared memory the main thread writes a batch into and the worker reads it from. */
interface Slot {
  readonly id: number;
  readonly data: Float32Array;
}

type Pending = { resolve: (o: InferenceOutput) => void; reject: (e: Error) => void; n: number; slot: Slot };

class WorkerModelSession implements ModelSession {
  readonly inputShape: readonly [number, number, number];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  /** Slots not in flight, each as large as the largest batch seen when it was made. */
  private readonly free: Slot[] = [];
  private nextSlot = 1;
  private largest = 0;

  constructor(
    private readonly worker: Worker,
    readonly contract: ModelContract,
    readonly modelPath: string,
    readonly provider: Provider,
  ) {
    this.inputShape = cropShape(contract);
    worker.on('message', (m: FromSessionWorker) => {
      if (m.type !== 'result' && m.type !== 'run-error') return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (p) this.release(p.slot);
      if (m.type === 'result') p?.resolve({ logits: m.logits, embedding: m.embedding, n: p.n });
      else p?.reject(new WorkerModelError(m.error));
    });
    worker.on('error', (e) => this.fail(new ModelLoadError(`inference worker for '${modelPath}' failed: ${e.message}`)));
    worker.on('exit', (code) => this.fail(new ModelLoadError(`inference worker for '${modelPath}' exited (code ${code})`)));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async run(batch: Float32Array, n: number): Promise<InferenceOutput> {
    if (this.closing || this.failure) throw this.failure ?? new ModelLoadError(`model session for '${this.modelPath}' is closed`);
    const need = checkRunArgs(batch, n, this.inputShape);
    const id = this.nextId++;
    // Copied into a slot: the caller may refill its buffer as soon as this returns.
    const slot = this.take(need);
    slot.data.set(batch.subarray(0, need));
    return new Promise<InferenceOutput>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, n, slot });
      this.worker.postMessage({ type: 'run', id, slot: slot.id, n } satisfies ToSessionWorker);
    });
  }

  /** A free slot that holds `need` floats, or a new one as large as the largest batch seen (the worker gets it once). */
  private take(need: number): Slot {
    this.largest = Math.max(this.largest, need);
    const i = this.free.findIndex((s) => s.data.length >= need);
    const found = i >= 0 ? this.free.splice(i, 1)[0] : undefined;
    if (found) return found;
    const buffer = new SharedArrayBuffer(this.largest * Float32Array.BYTES_PER_ELEMENT);
    const slot: Slot = { id: this.nextSlot++, data: new Float32Array(buffer) };
    this.worker.postMessage({ type: 'slot', slot: slot.id, buffer } satisfies ToSessionWorker);
    return slot;
  }

  /** Back to the free list; a slot smaller than a batch seen since, or one too many, is retired. */
  private release(slot: Slot): void {
    if (slot.data.length >= this.largest && this.free.length < SPARE_SLOTS) {
      this.free.push(slot);
      return;
    }
    if (!this.failure) this.worker.postMessage({ type: 'drop', slot: slot.id } satisfies ToSessionWorker);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.failure) return resolve();
      this.worker.once('exit', () => resolve());
      this.worker.postMessage({ type: 'close' } satisfies ToSessionWorker);
    }).then(() => this.fail(new ModelLoadError(`model session for '${this.modelPath}' is closed`)));
    return this.closing;
  }
}

export function createWorkerSession(data: SessionWorkerData, logger?: SessionLogger): Promise<ModelSession> {
  const worker = startWorker(data);
  return new Promise<ModelSession>((resolve, reject) => {
    const onMessage = (m: FromSessionWorker): void => {
      if (m.type === 'log') {
        logger?.[m.level](m.obj, m.msg);
        return;
      }
      if (m.type === 'ready') {
        cleanup();
        resolve(new WorkerModelSession(worker, m.contract, data.modelPath, m.provider));
      } else if (m.type === 'init-error') {
        cleanup();
        void worker.terminate();
        reject(new WorkerModelError(m.error));
      }
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new ModelLoadError(`inference worker for '${data.modelPath}' exited (code ${code}) before the model was loaded`));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(new ModelLoadError(`inference worker for '${data.modelPath}' failed to start: ${e.message}`));
    };
    const cleanup = (): void => {
      worker.off('exit', onExit);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.once('error', onError);
  });
}
