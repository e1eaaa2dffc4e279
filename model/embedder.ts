/**
 * ImageEncoder: image bytes → everything the index stores for an image, with the crop policy of
 * the codes model (the policy its autoencoder was trained with): the fc7 embedding (center crop,
 * or the mean over the paper's 10 crops), its binary code, and the averaged class probabilities.
 * The pairing of image model and codes model is checked by the image model file's SHA-256.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { classifyImage, type ImageInfo, type Prediction } from './classify.js';
import { checkCodesFor, createCodesSession, type CodesSession, type CropPolicy } from './codes.js';
import { checkIntOption } from './errors.js';
import type { CropCount } from './image/crops.js';
import { createSession, type ModelSession, type SessionOptions } from './session.js';

export interface EncodedImage {
  /** fc7 per the crop policy (raw, as the index stores it). */
  embedding: Float32Array;
  /** B/8 bytes, bit i = code_logits[i] > 0, LSB-first. */
  code: Uint8Array;
  /** Classes by decreasing averaged probability (at most `topk`). */
  labels: Prediction[];
  crops: CropCount;
  cropPolicy: CropPolicy;
  width: number;
  height: number;
  image: ImageInfo;
  timings_ms: { decode: number; infer: number; code: number; total: number };
}

export interface EncodeOptions {
  /** Labels to return (default 5, at most 100). */
  topk?: number;
  /** Refuse images with more pixels (default 100 million). */
  maxPixels?: number;
}

export interface ImageEncoder {
  readonly model: ModelSession;
  readonly codes: CodesSession;
  readonly crops: CropCount;
  readonly bits: number;
  encode(bytes: Buffer, opts?: EncodeOptions): Promise<EncodedImage>;
  close(): Promise<void>;
}

export interface ImageEncoderOptions extends SessionOptions {
  /** onnxruntime threads of the codes session (default 1). */
  codesThreads?: number;
}

const DEFAULT_MAX_PIXELS = 100_000_000;

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** An encoder over sessions the caller already opened and checked (see checkCodesFor). */
export function imageEncoder(model: ModelSession, codes: CodesSession): ImageEncoder {
  const crops = codes.crops;
  return {
    model,
    codes,
    crops,
    bits: codes.bits,
    async encode(bytes, opts = {}) {
      const topk = checkIntOption('topk', opts.topk ?? 5, 1, 100);
      const t0 = performance.now();
      const c = await classifyImage(model, bytes, { crops, maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS, topk });
      const t1 = performance.now();
      const code = await codes.encode(c.embedding, 1);
      const t2 = performance.now();
      return {
        embedding: c.embedding, code, labels: c.predictions, crops, cropPolicy: codes.cropPolicy,
        width: c.image.width, height: c.image.height, image: c.image,
        timings_ms: { decode: c.timings_ms.decode, infer: c.timings_ms.infer, code: t2 - t1, total: t2 - t0 },
      };
    },
    async close() {
      await codes.close();
      await model.close();
    },
  };
}

/** Opens both models and refuses a codes model trained for another image model. */
export async function createImageEncoder(modelPath: string, codesPath: string, opts: ImageEncoderOptions = {}): Promise<ImageEncoder> {
  const [codes, modelHash] = await Promise.all([createCodesSession(codesPath, { threads: opts.codesThreads ?? 1 }), sha256File(modelPath)]);
  try {
    const model = await createSession(modelPath, opts);
    try {
      checkCodesFor(codes, modelHash, model.contract.embeddingDim);
    } catch (err) {
      await model.close();
      throw err;
    }
    return imageEncoder(model, codes);
  } catch (err) {
    await codes.close();
    throw err;
  }
}
