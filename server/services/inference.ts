/**
 * Classification and embedding on top of model/ (decode, crops, softmax helpers) with every crop
 * going through the dynamic batcher instead of one onnxruntime run per request.
 */
import { averageSoftmax, batchLength, decodeImage, DEFAULT_OOD, oodVerdict, EMBEDDING_NAME, INPUT_NAME, LOGITS_NAME, makeCrops, meanRows, rowArgmax, topK } from '../../model/index.js';
import type { CropCount, ModelSession } from '../../model/index.js';
import { Batcher } from '../batcher.js';
import type { BatcherObserver, Priority } from '../batcher.js';
import type { ClassifyResult, EmbedResult, Inference, ModelInfo, Timings } from '../ports.js';
import type { CodesSession } from '../../model/index.js';

export interface InferenceOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  requestTimeoutMs: number;
  maxPixels: number;
  observer?: BatcherObserver;
}

interface Ran {
  logits: Float32Array;
  embedding: Float32Array;
  n: CropCount;
  timings: Timings;
}

export interface EmbedOutput {
  embedding: Float32Array;
  /** Averaged softmax over the crops, one value per label. */
  probabilities: Float64Array;
  crops: CropCount;
  width: number;
  height: number;
  timings_ms: Timings;
}

const POOL_MAX = 64;

export class InferenceService implements Inference {
  readonly info: ModelInfo;
  readonly batcher: Batcher;
  /** Request-side crop buffers (10-crop sized), recycled: the batcher copies out of them. */
  private readonly pool: Float32Array[] = [];
  private readonly bufferLength: number;

  constructor(
    readonly session: ModelSession,
    readonly codes: CodesSession,
    private readonly opts: InferenceOptions,
  ) {
    const c = session.contract;
    this.info = Object.freeze({
      name: c.name,
      version: c.modelVersion,
      labels: Object.freeze([...c.labels]),
      inputShape: session.inputShape,
      embeddingDim: c.embeddingDim,
      io: Object.freeze({ input: INPUT_NAME, logits: LOGITS_NAME, embedding: EMBEDDING_NAME }),
      provider: session.provider,
    });
    const [ch, h, w] = session.inputShape;
    this.bufferLength = batchLength(c.preprocess, 10);
    this.batcher = new Batcher({
      itemSize: ch * h * w,
      outputSizes: [c.labels.length, c.embeddingDim],
      run: async (input, n) => {
        const out = await session.run(input, n);
        return [out.logits, out.embedding];
      },
      maxBatch: opts.maxBatch,
      maxDelayMs: opts.maxDelayMs,
      maxQueue: opts.maxQueue,
      timeoutMs: opts.requestTimeoutMs,
      observer: opts.observer,
    });
  }

  /** The codes model was trained on embeddings of this many crops; indexing and search must match. */
  get embedCrops(): CropCount {
    return this.codes.crops;
  }

  /** One run at the largest batch size, so the first full batch does not pay for allocations. */
  async warmUp(): Promise<void> {
    const [c, h, w] = this.info.inputShape;
    await this.session.run(new Float32Array(this.opts.maxBatch * c * h * w), this.opts.maxBatch);
  }

  async infer(input: Float32Array, n: number, priority: Priority = 'interactive'): Promise<{ logits: Float32Array; embedding: Float32Array }> {
    const [logits, embedding] = await this.batcher.submit(input, n, priority);
    return { logits: logits as Float32Array, embedding: embedding as Float32Array };
  }

  private async run(bytes: Buffer, crops: CropCount, priority: Priority): Promise<Ran & { width: number; height: number }> {
    const pre = this.session.contract.preprocess;
    const t0 = performance.now();
    const square = await decodeImage(bytes, pre, { maxPixels: this.opts.maxPixels });
    const buf = this.pool.pop() ?? new Float32Array(this.bufferLength);
    try {
      const batch = makeCrops(square, pre, crops, buf);
      const t1 = performance.now();
      const out = await this.infer(batch, crops, priority);
      const t2 = performance.now();
      return { ...out, n: crops, width: square.width, height: square.height, timings: { decode: t1 - t0, infer: t2 - t1, total: t2 - t0 } };
    } finally {
      if (this.pool.length < POOL_MAX) this.pool.push(buf);
    }
  }

  async classify(bytes: Buffer, opts: { topk: number; crops: CropCount }): Promise<ClassifyResult> {
    const r = await this.run(bytes, opts.crops, 'interactive');
    const k = this.info.labels.length;
    const predictions = topK(averageSoftmax(r.logits, r.n, k), opts.topk, this.info.labels);
    const top = predictions[0]?.index ?? 0;
    let agreement = 0;
    for (let i = 0; i < r.n; i++) if (rowArgmax(r.logits, i, k) === top) agreement++;
    const features = { meanLogits: meanRows(r.logits, r.n, k), embedding: meanRows(r.embedding, r.n, this.info.embeddingDim) };
    return {
      predictions,
      ...oodVerdict(this.session.contract.ood ?? DEFAULT_OOD, features),
      crops: r.n,
      agreement,
      model: { name: this.info.name, version: this.info.version },
      timings_ms: roundTimings(r.timings),
    };
  }

  /** Mean fc7 over the crops plus the averaged class probabilities (stored as an image's labels). */
  async embedImage(bytes: Buffer, opts: { crops: CropCount; priority?: Priority }): Promise<EmbedOutput> {
    const r = await this.run(bytes, opts.crops, opts.priority ?? 'interactive');
    return {
      embedding: meanRows(r.embedding, r.n, this.info.embeddingDim),
      probabilities: averageSoftmax(r.logits, r.n, this.info.labels.length),
      crops: r.n,
      width: r.width,
      height: r.height,
      timings_ms: roundTimings(r.timings),
    };
  }

  async embed(bytes: Buffer, opts: { crops: CropCount; priority?: Priority }): Promise<EmbedResult> {
    const e = await this.embedImage(bytes, opts);
    const code = await this.codes.encode(e.embedding);
    return { embedding: e.embedding, code, bits: this.codes.bits, crops: e.crops, probabilities: Float32Array.from(e.probabilities), timings_ms: e.timings_ms };
  }

  async close(): Promise<void> {
    this.batcher.close();
    await this.batcher.idle();
    await this.codes.close();
    await this.session.close();
  }
}

function roundTimings(t: Timings): Timings {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { decode: r(t.decode), infer: r(t.infer), total: r(t.total) };
}
