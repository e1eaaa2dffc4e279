/** A fixed set of training worker threads driven in lock-step by the trainer. */
import { Worker } from 'node:worker_threads';
import type { FromWorker, InitMessage, ToWorker } from './protocol.js';

type Reply<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

/** The worker's own source file: `.ts` when running under tsx (tests, bench), `.js` from dist/. */
function workerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker${ext}`, import.meta.url);
}

class WorkerHandle {
  private readonly worker: Worker;
  private pending: { resolve: (m: FromWorker) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor() {
    const url = workerUrl();
    // Under tsx (tests, benchmarks) the worker's TypeScript source needs a loader in its own
    // thread: Node 20 does not carry the parent's module hooks into workers, so a tiny eval'd
    // bootstrap imports the file through tsx's API.
    this.worker = url.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(import.meta.url)}))`, { eval: true })
      : new Worker(url);
    this.worker.on('message', (m: FromWorker) => this.settle(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`training worker exited with code ${code}`));
    });
  }

  private settle(m: FromWorker): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    if (m.type === 'error') p.reject(new Error(`training worker: ${m.message}`));
    else p.resolve(m);
  }

  private fail(e: Error): void {
    this.failure = e;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }

  request<T extends FromWorker['type']>(msg: ToWorker, expect: T): Promise<Reply<T>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('training worker is busy'));
    return new Promise<FromWorker>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(msg);
    }).then((m) => {
      if (m.type !== expect) throw new Error(`training worker answered '${m.type}', expected '${expect}'`);
      return m as Reply<T>;
    });
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: 'exit' } satisfies ToWorker);
    await this.worker.terminate();
  }
}

export class WorkerPool {
  private constructor(private readonly workers: WorkerHandle[]) {}

  static async start(count: number, init: (index: number) => InitMessage): Promise<WorkerPool> {
    const workers = Array.from({ length: count }, () => new WorkerHandle());
    const pool = new WorkerPool(workers);
    try {
      await Promise.all(workers.map((w, i) => w.request(init(i), 'ready')));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Sends one message per worker (built from its index) and waits for all replies. */
  all<T extends FromWorker['type']>(build: (index: number) => ToWorker, expect: T): Promise<Reply<T>[]> {
    return Promise.all(this.workers.map((w, i) => w.request(build(i), expect)));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
