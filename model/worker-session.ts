/**
 * A ModelSession whose onnxruntime session lives in a worker thread. Measured: `run()` of
 * onnxruntime-node blocks its thread for the whole batch (a 128-crop batch of the default model
 * held the event loop 4.9 s under load), so in the server's main thread it stalls HTTP intake,
 * image decoding callbacks and crop cutting between batches. Here the main thread keeps working
 * while the worker runs; inputs are copied once (the batcher reuses its buffer), outputs move back.
 * The copies are recycled: the worker hands each input buffer back with its result, because a fresh
 * 19 MB buffer per 32-crop batch of the full AlexNet would cost ≈ 50 ms of page faults here (11 µs per 4 KiB page).
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

/** Input buffers kept per batch size: as many as batches that can be in flight at once. */
const SPARE_PER_SIZE = 4;

type Pending = { resolve: (o: InferenceOutput) => void; reject: (e: Error) => void; n: number };

class WorkerModelSession implements ModelSession {
  readonly inputShape: readonly [number, number, number];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  /** Input buffers back from the worker, by float count (one per batch size seen; a few in flight). */
  private readonly spare = new Map<number, Float32Array[]>();

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
      if (m.batch) this.recycle(m.batch);
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
    // A private copy: the caller may refill its buffer as soon as this returns.
    const copy = this.spare.get(need)?.pop() ?? new Float32Array(need);
    copy.set(batch.subarray(0, need));
    return new Promise<InferenceOutput>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, n });
      this.worker.postMessage({ type: 'run', id, batch: copy, n } satisfies ToSessionWorker, [copy.buffer as ArrayBuffer]);
    });
  }

  private recycle(buf: Float32Array): void {
    const free = this.spare.get(buf.length) ?? [];
    if (free.length < SPARE_PER_SIZE) free.push(buf);
    this.spare.set(buf.length, free);
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
