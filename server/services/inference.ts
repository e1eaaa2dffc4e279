/**
 * Classification and embedding: model/'s image pipeline with every crop going through the dynamic
 * batcher instead of one onnxruntime run per request. Implements the Inference port (routes) and
 * the ImageEncoder port (gallery, indexing, re-embedding), so that there is one way from image
 * bytes to embedding, code and labels.
 */
import { DEFAULT_OOD, EMBEDDING_NAME, ImagePipeline, INPUT_NAME, LOGITS_NAME, oodBasis, storedVerdict } from '../../model/index.js';
import type { CodesSession, CropCount, ModelSession, OodContract } from '../../model/index.js';
import { Batcher } from '../batcher.js';
import type { BatcherObserver, Priority } from '../batcher.js';
import type { ClassifyResult, EmbedResult, EncodedImage, ImageEncoder, Inference, LabelScore, ModelInfo, StoredOod, Timings } from '../ports.js';

export interface InferenceOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  requestTimeoutMs: number;
  maxPixels: number;
  /** Batches handed to the session at once (default 1). */
  inflight?: number;
  /** Images decoded at once (default 0: no limit of our own). */
  decodeConcurrency?: number;
  observer?: BatcherObserver;
}

export class InferenceService implements Inference, ImageEncoder {
  readonly info: ModelInfo;
  readonly batcher: Batcher;
  private readonly pipeline: ImagePipeline;

  constructor(
    readonly session: ModelSession,
    private readonly codes: CodesSession,
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
      concurrency: opts.inflight ?? 1,
      observer: opts.observer,
    });
    this.pipeline = new ImagePipeline({
      contract: c,
      codes,
      maxPixels: opts.maxPixels,
      run: (batch, n, priority) => this.infer(batch, n, priority),
      ...(opts.decodeConcurrency ? { decodeConcurrency: opts.decodeConcurrency } : {}),
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

  async classify(bytes: Buffer, opts: { topk: number; crops: CropCount }): Promise<ClassifyResult> {
    const r = await this.pipeline.encode(bytes, { crops: opts.crops, labels: opts.topk, ood: true, code: false });
    return {
      predictions: r.labels ?? [],
      unknown: r.unknown ?? false,
      ood_score: r.ood_score ?? 0,
      crops: r.crops,
      agreement: r.agreement ?? 0,
      model: { name: this.info.name, version: this.info.version },
      timings_ms: roundTimings(r.timings_ms),
    };
  }

  async embed(bytes: Buffer, opts: { crops: CropCount; priority?: Priority }): Promise<EmbedResult> {
    const r = await this.pipeline.encode(bytes, { crops: opts.crops, ...(opts.priority ? { priority: opts.priority } : {}) });
    return { embedding: r.embedding, code: codeOf(r.code), bits: this.codes.bits, crops: r.crops, timings_ms: roundTimings(r.timings_ms) };
  }

  /**
   * What the index stores for an image: the codes model's crop policy, and its top labels when
   * asked, with the out-of-distribution score of the same logits (no extra run).
   */
  async encode(bytes: Buffer, opts: { labels?: number; priority?: Priority } = {}): Promise<EncodedImage> {
    const r = await this.pipeline.encode(bytes, { crops: this.embedCrops, ...opts, ood: opts.labels !== undefined });
    const e: EncodedImage = { embedding: r.embedding, code: codeOf(r.code), width: r.image.width, height: r.image.height };
    if (r.labels) e.labels = r.labels.map((l): LabelScore => ({ label: l.label, probability: Math.min(1, Math.max(0, l.probability)) }));
    if (r.ood_score !== undefined) e.ood = { score: r.ood_score, basis: this.oodBasis };
    return e;
  }

  judge(ood: StoredOod | null): boolean | null {
    return storedVerdict(this.ood, ood?.score ?? null, ood?.basis ?? null);
  }

  get oodRule(): { basis: string; threshold: number } {
    return { basis: this.oodBasis, threshold: this.ood.threshold };
  }

  private get ood(): OodContract {
    return this.session.contract.ood ?? DEFAULT_OOD;
  }

  /** What this model's scores mean (model/ood.ts): stored scores on another basis are not judged. */
  get oodBasis(): string {
    return oodBasis(this.ood);
  }

  async close(): Promise<void> {
    this.batcher.close();
    await this.batcher.idle();
    await this.codes.close();
    await this.session.close();
  }
}

function codeOf(code: Uint8Array | undefined): Uint8Array {
  if (!code) throw new Error('the image pipeline returned no code although a codes model is loaded');
  return code;
}

function roundTimings(t: Timings): Timings {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { decode: r(t.decode), infer: r(t.infer), total: r(t.total) };
}
