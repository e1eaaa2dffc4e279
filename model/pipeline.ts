/**
 * The one image pipeline: image bytes → `{ embedding, code, labels?, width, height }`. Decode once,
 * cut 1 or 10 crops into a recycled buffer, run them as one batch, average fc7 over the crops for
 * the embedding (and code it with the codes model), and only when labels are asked average the
 * softmax over the crops (Krizhevsky et al. 2012 average the predictions of the ten patches),
 * count how many crops agree with the averaged top-1 and judge whether the image is unknown (ood.ts).
 *
 * Used by search, upload, batch indexing, re-embedding (server/services, where `run` is the
 * dynamic batcher, so crops of concurrent images share onnxruntime runs) and by the CLI and tests
 * (where `run` is the session itself).
 */
import type { CodesSession } from './codes.js';
import { averageSoftmax, l2Norm, meanRows, rowArgmax, topK, type Prediction } from './classify.js';
import type { ModelContract } from './contract.js';
import { checkCrops, checkIntOption } from './errors.js';
import { batchLength, makeCrops, type CropCount } from './image/crops.js';
import { decodeImage } from './image/decode.js';
import { Slots } from './slots.js';
import { DEFAULT_OOD, oodVerdict } from './ood.js';
import type { ImageFormat } from './image/formats.js';
import type { ModelSession } from './session.js';

/** Interactive work (HTTP requests) goes before background work (indexing jobs) in the batcher. */
export type RunPriority = 'interactive' | 'background';

/** Runs `n` crops laid out back to back in `batch`; logits [n, classes] and fc7 [n, embeddingDim] out. */
export type RunCrops = (batch: Float32Array, n: number, priority: RunPriority) => Promise<{ logits: Float32Array; embedding: Float32Array }>;

export interface ImageInfo {
  width: number;
  height: number;
  format: ImageFormat;
}

export interface Timings {
  /** Decode, resize and crop/normalize. */
  decode: number;
  infer: number;
  total: number;
}

export interface EncodeRequest {
  /** Crops averaged (default: the codes model's crop policy; 10 without a codes model). */
  crops?: CropCount;
  /** Return the `labels` most probable classes (and the agreement); the softmax runs only then. */
  labels?: number;
  /** With labels, also judge whether the image is unknown (`unknown`, `ood_score`; classification only). */
  ood?: boolean;
  /** Code the embedding (default true; needs a codes model). */
  code?: boolean;
  priority?: RunPriority;
  /** Override of the pipeline's pixel limit for this image. */
  maxPixels?: number;
}

export interface EncodedImage {
  /** Mean fc7 (after ReLU) over the crops, raw, as the index stores it. */
  embedding: Float32Array;
  /** Bits of the codes model, packed LSB-first; absent without a codes model or with `code: false`. */
  code?: Uint8Array;
  /** Classes by decreasing averaged probability, when asked. */
  labels?: Prediction[];
  /** How many crops have, on their own, the averaged top-1 class as their argmax (with labels). */
  agreement?: number;
  /** With labels and `ood`: the image looks like none of them (its `ood_score` is over the model's threshold, ood.ts). */
  unknown?: boolean;
  /** With labels and `ood`: higher = further from the data the threshold was fitted on. */
  ood_score?: number;
  /** With labels and `ood`: mean logits over the crops (what the out-of-distribution statistics read). */
  meanLogits?: Float32Array;
  crops: CropCount;
  image: ImageInfo;
  /** Up to the model's outputs (coding the embedding is not included). */
  timings_ms: Timings;
}

export interface ImagePipelineOptions {
  contract: ModelContract;
  run: RunCrops;
  codes?: CodesSession;
  /** Refuse images with more pixels (decompression-bomb guard). */
  maxPixels: number;
  /** Crop buffers kept for reuse (default 64: requests and indexing workers overlap). */
  poolMax?: number;
  /** Images decoded at once (default: no limit of our own); the rest wait their turn in arrival order. */
  decodeConcurrency?: number;
}

export class ImagePipeline {
  // Input batches are 6 MB for full AlexNet at 10 crops and a first write to fresh memory costs
  // ~11 µs per 4 KiB page here (~15 ms per batch): buffers are recycled. A pool, not one buffer,
  // because concurrent images overlap while the runtime (or the batcher) still reads them.
  private readonly pool: Float32Array[] = [];
  private readonly bufferLength: number;
  private readonly decodeSlots: Slots | undefined;

  constructor(private readonly opts: ImagePipelineOptions) {
    // Sized for 10 crops so that one buffer serves both crop counts.
    this.bufferLength = batchLength(opts.contract.preprocess, 10);
    if (opts.decodeConcurrency !== undefined) this.decodeSlots = new Slots(checkIntOption('decodeConcurrency', opts.decodeConcurrency, 1, 1024));
  }

  get contract(): ModelContract {
    return this.opts.contract;
  }

  /** The crop count the codes model was trained with; indexing and search must use it. */
  get embedCrops(): CropCount {
    return this.opts.codes?.crops ?? 10;
  }

  async encode(bytes: Buffer, req: EncodeRequest = {}): Promise<EncodedImage> {
    const crops = checkCrops(req.crops ?? this.embedCrops);
    const nLabels = req.labels === undefined ? undefined : checkIntOption('labels', req.labels, 1, Number.MAX_SAFE_INTEGER);
    const { preprocess: pre, labels, embeddingDim } = this.opts.contract;
    const t0 = performance.now();
    const limits = { maxPixels: req.maxPixels ?? this.opts.maxPixels };
    const square = this.decodeSlots ? await this.decodeSlots.run(() => decodeImage(bytes, pre, limits)) : await decodeImage(bytes, pre, limits);
    const buf = this.pool.pop() ?? new Float32Array(this.bufferLength);
    let out: { logits: Float32Array; embedding: Float32Array };
    let t1: number;
    try {
      const batch = makeCrops(square, pre, crops, buf);
      t1 = performance.now();
      out = await this.opts.run(batch, crops, req.priority ?? 'interactive');
    } finally {
      if (this.pool.length < (this.opts.poolMax ?? 64)) this.pool.push(buf);
    }
    const t2 = performance.now();
    const result: EncodedImage = {
      embedding: meanRows(out.embedding, crops, embeddingDim),
      crops,
      image: { width: square.width, height: square.height, format: square.format },
      timings_ms: { decode: t1 - t0, infer: t2 - t1, total: t2 - t0 },
    };
    if (nLabels !== undefined) {
      const k = labels.length;
      result.labels = topK(averageSoftmax(out.logits, crops, k), nLabels, labels);
      const top = result.labels[0]?.index ?? 0;
      let agreement = 0;
      for (let i = 0; i < crops; i++) if (rowArgmax(out.logits, i, k) === top) agreement++;
      result.agreement = agreement;
      if (req.ood) {
        result.meanLogits = meanRows(out.logits, crops, k);
        Object.assign(result, oodVerdict(this.opts.contract.ood ?? DEFAULT_OOD, { meanLogits: result.meanLogits, embedding: result.embedding }));
      }
    }
    if (req.code !== false && this.opts.codes) result.code = await this.opts.codes.encode(result.embedding, 1);
    return result;
  }
}

/** A pipeline straight over a session (no batcher, no codes model): the CLI's and the tests'. */
export function sessionPipeline(session: ModelSession, opts: { maxPixels: number; codes?: CodesSession }): ImagePipeline {
  return new ImagePipeline({ contract: session.contract, run: (batch, n) => session.run(batch, n), maxPixels: opts.maxPixels, poolMax: 4, ...(opts.codes ? { codes: opts.codes } : {}) });
}

export interface ImageOptions {
  crops: CropCount;
  maxPixels: number;
}

export interface Classification {
  predictions: Prediction[];
  /** The image looks like none of the labels: its `ood_score` is over the model's threshold (ood.ts). */
  unknown: boolean;
  /** Higher = further from the data the threshold was fitted on. */
  ood_score: number;
  crops: CropCount;
  /** How many of the `crops` crops have, on their own, the averaged top-1 label as their argmax. */
  agreement: number;
  /** Mean fc7 (after ReLU) over the crops. */
  embedding: Float32Array;
  /** Mean logits over the crops (what the out-of-distribution statistics read). */
  meanLogits: Float32Array;
  image: ImageInfo;
  timings_ms: Timings;
}

export interface Embedding {
  embedding: Float32Array;
  norm: number;
  crops: CropCount;
  image: ImageInfo;
  timings_ms: Timings;
}

// One pipeline (and so one buffer pool) per session for the convenience functions below.
const pipelines = new WeakMap<ModelSession, ImagePipeline>();

function pipelineOf(session: ModelSession): ImagePipeline {
  let p = pipelines.get(session);
  if (!p) {
    p = sessionPipeline(session, { maxPixels: Number.MAX_SAFE_INTEGER });
    pipelines.set(session, p);
  }
  return p;
}

/** Top-k classes of one image straight on a session (tests, bench): the pipeline with labels, no code. */
export async function classifyImage(session: ModelSession, bytes: Buffer, opts: ImageOptions & { topk: number }): Promise<Classification> {
  const topk = checkIntOption('topk', opts.topk, 1, 100);
  const e = await pipelineOf(session).encode(bytes, { crops: checkCrops(opts.crops), labels: topk, ood: true, code: false, maxPixels: opts.maxPixels });
  return {
    predictions: e.labels ?? [],
    unknown: e.unknown ?? false,
    ood_score: e.ood_score ?? 0,
    crops: e.crops,
    agreement: e.agreement ?? 0,
    embedding: e.embedding,
    meanLogits: e.meanLogits ?? new Float32Array(0),
    image: e.image,
    timings_ms: e.timings_ms,
  };
}

/** The crop-mean fc7 of one image and its L2 norm, straight on a session. */
export async function embedImage(session: ModelSession, bytes: Buffer, opts: ImageOptions): Promise<Embedding> {
  const e = await pipelineOf(session).encode(bytes, { crops: checkCrops(opts.crops), code: false, maxPixels: opts.maxPixels });
  return { embedding: e.embedding, norm: l2Norm(e.embedding), crops: e.crops, image: e.image, timings_ms: e.timings_ms };
}
