/**
 * Dynamic batching: crops from concurrent requests are merged into one run of the model, up to
 * `maxBatch` crops, waiting at most `maxDelayMs` after the oldest queued crop arrived. A request's
 * crops may be split across two consecutive batches so that batches stay full.
 *
 * Two priorities: interactive requests are always taken first, background work (indexing jobs)
 * only fills what is left of a batch, so a job cannot starve the HTTP clients. The interactive
 * queue is bounded in crops (full → 503 with Retry-After from the measured wait) and every
 * interactive request has a deadline (→ 503). Input buffers are pooled per batch size.
 * Generic over the run function so that it is unit-tested with a fake model.
 */
import { ServiceUnavailableError } from './errors.js';

export type Priority = 'interactive' | 'background';

/** Runs `n` items laid out back to back in `input`; returns one array per output, `n * outputSizes[i]` long. */
export type BatchRunFn = (input: Float32Array, n: number) => Promise<readonly Float32Array[]>;

export interface BatcherObserver {
  /** A batch of `n` items ran for `seconds`. */
  batch?(n: number, seconds: number): void;
  /** A request waited `seconds` in the queue before its first item ran. */
  wait?(seconds: number, priority: Priority): void;
  /** A request was turned away. */
  rejected?(reason: 'overloaded' | 'timeout'): void;
}

export interface BatcherOptions {
  /** Floats per item (C·H·W). */
  itemSize: number;
  /** Floats per item of each output, in the order `run` returns them. */
  outputSizes: readonly number[];
  run: BatchRunFn;
  maxBatch: number;
  maxDelayMs: number;
  /** Most interactive items waiting (not yet running). */
  maxQueue: number;
  /** Deadline of an interactive request, from submit to result. */
  timeoutMs: number;
  /** Batches in flight at once (default 1: onnxruntime already uses every core for one run). */
  concurrency?: number;
  observer?: BatcherObserver;
}

interface Entry {
  readonly input: Float32Array;
  readonly n: number;
  readonly priority: Priority;
  readonly enqueuedAt: number;
  readonly outputs: Float32Array[];
  taken: number;
  done: number;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(out: Float32Array[]): void;
  reject(err: unknown): void;
}

interface Segment {
  entry: Entry;
  /** First item of the entry in this batch, its count and its row in the batch. */
  from: number;
  count: number;
  row: number;
}

const WAIT_EWMA = 0.2;

export class Batcher {
  private readonly queues: Record<Priority, Entry[]> = { interactive: [], background: [] };
  private readonly pending: Record<Priority, number> = { interactive: 0, background: 0 };
  private readonly pool = new Map<number, Float32Array[]>();
  private running = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private waitEwmaS = 0;
  /** Duration of the last run: with the depth, a floor for Retry-After before any wait was measured. */
  private lastBatchS = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: BatcherOptions) {
    if (opts.maxBatch < 1 || opts.itemSize < 1) throw new RangeError(`batcher: maxBatch and itemSize must be ≥ 1, got ${opts.maxBatch}, ${opts.itemSize}`);
  }

  /** Items waiting to run, by priority (running ones excluded). */
  depth(priority: Priority = 'interactive'): number {
    return this.pending[priority];
  }

  /** Smoothed time requests spent queued, in seconds: the basis of Retry-After. */
  get measuredWaitS(): number {
    return this.waitEwmaS;
  }

  /** Queues `n` items (`input` holds n·itemSize floats, not copied: keep it intact until settled). */
  submit(input: Float32Array, n: number, priority: Priority = 'interactive'): Promise<Float32Array[]> {
    const { itemSize, outputSizes, maxQueue, timeoutMs } = this.opts;
    if (!Number.isInteger(n) || n < 1 || input.length < n * itemSize) {
      return Promise.reject(new RangeError(`batcher: input of ${input.length} floats cannot hold ${n} items of ${itemSize}`));
    }
    if (this.closed) return Promise.reject(new ServiceUnavailableError('shutting_down', 'the server is shutting down'));
    if (priority === 'interactive' && this.pending.interactive > 0 && this.pending.interactive + n > maxQueue) {
      this.opts.observer?.rejected?.('overloaded');
      const retry = Math.max(this.waitEwmaS, (this.pending.interactive / Math.max(1, this.opts.maxBatch)) * this.lastBatchS);
      return Promise.reject(new ServiceUnavailableError('overloaded', `inference queue is full (${this.pending.interactive} crops waiting, limit ${maxQueue}); retry later`, retry));
    }
    return new Promise<Float32Array[]>((resolve, reject) => {
      const entry: Entry = {
        input,
        n,
        priority,
        enqueuedAt: performance.now(),
        outputs: outputSizes.map((s) => new Float32Array(n * s)),
        taken: 0,
        done: 0,
        settled: false,
        timer: undefined,
        resolve,
        reject,
      };
      if (priority === 'interactive') entry.timer = setTimeout(() => this.expire(entry), timeoutMs);
      this.queues[priority].push(entry);
      this.pending[priority] += n;
      this.pump();
    });
  }

  /** Resolves when nothing is queued or running (for graceful shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.pending.interactive + this.pending.background === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new work and fails what is still queued; running batches finish. */
  close(): void {
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    for (const p of ['interactive', 'background'] as const) {
      for (const e of this.queues[p]) this.fail(e, new ServiceUnavailableError('shutting_down', 'the server is shutting down'));
      this.queues[p] = [];
      this.pending[p] = 0;
    }
    this.notifyIdle();
  }

  private expire(entry: Entry): void {
    if (entry.settled) return;
    this.opts.observer?.rejected?.('timeout');
    this.pending[entry.priority] -= entry.n - entry.taken;
    entry.taken = entry.n;
    this.fail(entry, new ServiceUnavailableError('timeout', `inference did not complete within ${this.opts.timeoutMs} ms; retry later`, this.waitEwmaS));
    this.pump();
  }

  private fail(entry: Entry, err: unknown): void {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.timer) clearTimeout(entry.timer);
    entry.reject(err);
  }

  private oldestAge(now: number): number {
    let oldest = Infinity;
    for (const p of ['interactive', 'background'] as const) {
      const e = this.queues[p].find((x) => x.taken < x.n);
      if (e) oldest = Math.min(oldest, e.enqueuedAt);
    }
    return oldest === Infinity ? 0 : now - oldest;
  }

  private pump(): void {
    while (this.running < (this.opts.concurrency ?? 1)) {
      const queued = this.pending.interactive + this.pending.background;
      if (queued === 0) {
        this.notifyIdle();
        return;
      }
      const now = performance.now();
      const age = this.oldestAge(now);
      if (queued < this.opts.maxBatch && age < this.opts.maxDelayMs && !this.closed) {
        if (!this.delayTimer) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = undefined;
            this.pump();
          }, Math.max(0, this.opts.maxDelayMs - age));
        }
        return;
      }
      if (this.delayTimer) {
        clearTimeout(this.delayTimer);
        this.delayTimer = undefined;
      }
      this.dispatch(Math.min(this.opts.maxBatch, queued), now);
    }
  }

  private takeBuffer(n: number): Float32Array {
    return this.pool.get(n)?.pop() ?? new Float32Array(n * this.opts.itemSize);
  }

  private giveBuffer(n: number, buf: Float32Array): void {
    const free = this.pool.get(n) ?? [];
    free.push(buf);
    this.pool.set(n, free);
  }

  private dispatch(n: number, now: number): void {
    const { itemSize } = this.opts;
    const input = this.takeBuffer(n);
    const segments: Segment[] = [];
    let row = 0;
    for (const p of ['interactive', 'background'] as const) {
      const queue = this.queues[p];
      while (row < n && queue.length > 0) {
        const entry = queue[0] as Entry;
        if (entry.settled || entry.taken >= entry.n) {
          queue.shift();
          continue;
        }
        if (entry.taken === 0) this.recordWait((now - entry.enqueuedAt) / 1000, p);
        const count = Math.min(entry.n - entry.taken, n - row);
        input.set(entry.input.subarray(entry.taken * itemSize, (entry.taken + count) * itemSize), row * itemSize);
        segments.push({ entry, from: entry.taken, count, row });
        entry.taken += count;
        this.pending[p] -= count;
        row += count;
        if (entry.taken >= entry.n) queue.shift();
      }
    }
    this.running++;
    const started = performance.now();
    void this.execute(input, row, segments).finally(() => {
      this.lastBatchS = (performance.now() - started) / 1000;
      this.opts.observer?.batch?.(row, this.lastBatchS);
      this.giveBuffer(n, input);
      this.running--;
      // Not right away: decodes that finished while the batch ran (in the inference worker, or on
      // this thread when the worker is off) may still be waiting in the poll phase; setImmediate
      // lets them join the next batch.
      setImmediate(() => this.pump());
    });
  }

  private async execute(input: Float32Array, n: number, segments: readonly Segment[]): Promise<void> {
    let outputs: readonly Float32Array[];
    try {
      outputs = await this.opts.run(n === input.length / this.opts.itemSize ? input : input.subarray(0, n * this.opts.itemSize), n);
    } catch (err) {
      for (const s of segments) this.fail(s.entry, err);
      return;
    }
    const sizes = this.opts.outputSizes;
    for (const s of segments) {
      if (s.entry.settled) continue;
      for (let o = 0; o < sizes.length; o++) {
        const size = sizes[o] as number;
        const src = outputs[o];
        if (!src || src.length < n * size) {
          this.fail(s.entry, new Error(`batcher: output ${o} has ${src?.length ?? 0} floats, expected ${n * size}`));
          break;
        }
        (s.entry.outputs[o] as Float32Array).set(src.subarray(s.row * size, (s.row + s.count) * size), s.from * size);
      }
      s.entry.done += s.count;
      if (!s.entry.settled && s.entry.done >= s.entry.n) {
        s.entry.settled = true;
        if (s.entry.timer) clearTimeout(s.entry.timer);
        s.entry.resolve(s.entry.outputs);
      }
    }
  }

  private recordWait(seconds: number, priority: Priority): void {
    if (priority === 'interactive') this.waitEwmaS = this.waitEwmaS === 0 ? seconds : this.waitEwmaS + WAIT_EWMA * (seconds - this.waitEwmaS);
    this.opts.observer?.wait?.(seconds, priority);
  }

  private notifyIdle(): void {
    if (this.running > 0 || this.pending.interactive + this.pending.background > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
