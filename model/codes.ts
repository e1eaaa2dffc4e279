/**
 * The codes model: the autoencoder's encoder exported as ONNX (input `embedding` [N, D] raw fc7,
 * output `code_logits` [N, B]); bit i of a code is set when code_logits[i] > 0, packed LSB-first
 * exactly as index/codes.ts stores codes. The normalization of fc7 is inside the graph, so callers
 * feed raw embeddings. Its metadata (key `sightline.codes`) says which image model it belongs to
 * (SHA-256 of that file) and which crop policy produced the embeddings it was trained on.
 */
import { stat } from 'node:fs/promises';
import { InferenceSession, Tensor } from './ort.js';
import { z } from 'zod';
import { checkIntOption, ModelError, ModelLoadError } from './errors.js';
import type { CropCount } from './image/crops.js';
import { readHeader } from './onnx/metadata.js';

export const CODES_KEY = 'sightline.codes';
export const CODES_INPUT = 'embedding';
export const CODES_OUTPUT = 'code_logits';

/**
 * How an image becomes the embedding that is coded: `center` = fc7 of the center crop, `mean10` =
 * mean fc7 over the paper's 10 crops. `sightline eval retrieval` measures which retrieves better.
 */
export const CROP_POLICIES = ['center', 'mean10'] as const;
export type CropPolicy = (typeof CROP_POLICIES)[number];

/** The policy train-codes uses unless told otherwise (see the report of `sightline eval retrieval`). */
export const DEFAULT_CROP_POLICY: CropPolicy = 'center';

export function policyCrops(policy: CropPolicy): CropCount {
  return policy === 'center' ? 1 : 10;
}

export const codesMetaSchema = z.object({
  version: z.literal(1),
  bits: z.number().int().min(32).max(4096).refine((b) => b % 32 === 0, 'must be a multiple of 32'),
  embeddingDim: z.number().int().positive(),
  /** SHA-256 (hex) of the image model file whose fc7 this encoder codes. */
  modelHash: z.string().regex(/^[0-9a-f]{64}$/),
  model: z.object({ name: z.string(), version: z.string() }),
  cropPolicy: z.enum(CROP_POLICIES),
  /** What the graph does to raw fc7 before the encoder, for humans. */
  normalization: z.string(),
  /** Hidden layer widths of the encoder (the decoder mirrors them). */
  hidden: z.array(z.number().int().positive()),
  /** Classes of the auxiliary classification loss on the code layer (empty: unsupervised). */
  classes: z.array(z.string()).default([]),
  /** Training numbers: losses, bit balance, seconds, images. */
  metrics: z.record(z.string(), z.number()).default({}),
  /** Free-form provenance: dataset, epochs, seed, ... */
  training: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
});
export type CodesMeta = z.infer<typeof codesMetaSchema>;

/** The codes model does not belong to the loaded image model (other file hash or embedding width). */
export class CodesMismatchError extends ModelError {
  override readonly name = 'CodesMismatchError';
  readonly kind = 'unavailable';
  readonly code = 'codes_model_mismatch';
}

export function parseCodesMeta(json: string | undefined, path: string): CodesMeta {
  if (json === undefined) throw new ModelLoadError(`codes model '${path}' has no '${CODES_KEY}' metadata: produce it with 'sightline train-codes'`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ModelLoadError(`codes model '${path}': '${CODES_KEY}' is not valid JSON (${(err as Error).message})`);
  }
  const parsed = codesMetaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelLoadError(`codes model '${path}': metadata field '${issue?.path.join('.') ?? '?'}' ${issue?.message ?? 'is invalid'}`);
  }
  return parsed.data;
}

/** The codes metadata of a file or of model bytes (the graph is skipped, see onnx/metadata.ts). */
export function readCodesMeta(src: string | Uint8Array): CodesMeta {
  let header;
  try {
    header = readHeader(src);
  } catch (err) {
    throw new ModelLoadError(`codes model '${typeof src === 'string' ? src : '<bytes>'}' cannot be read: ${(err as Error).message}`);
  }
  return parseCodesMeta(header.metadata[CODES_KEY], typeof src === 'string' ? src : '<bytes>');
}

export interface EncodedCodes {
  /** n codes of B/8 bytes each, back to back. */
  codes: Uint8Array;
  /** [n, B] pre-sign activations (a bit is 1 where > 0); |value| says how sure the bit is. */
  logits: Float32Array;
}

export interface CodesSession {
  readonly path: string;
  readonly bits: number;
  readonly embeddingDim: number;
  /** SHA-256 of the image model file this encoder belongs to. */
  readonly modelHash: string;
  readonly cropPolicy: CropPolicy;
  /** Crops per image that the crop policy needs (1 or 10). */
  readonly crops: CropCount;
  readonly meta: CodesMeta;
  /** `embeddings` holds at least n·D raw fc7 floats; returns n packed codes (n·B/8 bytes). */
  encode(embeddings: Float32Array, n?: number): Promise<Uint8Array>;
  encodeDetailed(embeddings: Float32Array, n?: number): Promise<EncodedCodes>;
  close(): Promise<void>;
}

export interface CodesSessionOptions {
  /** intraOpNumThreads (default 1: the encoder is ~1 MFLOP per image, threads only add overhead). */
  threads?: number;
}

function dims(meta: readonly InferenceSession.ValueMetadata[], name: string): readonly (number | string)[] | undefined {
  const m = meta.find((v) => v.name === name);
  return m?.isTensor ? m.shape : undefined;
}

function checkGraph(session: InferenceSession, meta: CodesMeta, path: string): void {
  const fail = (what: string): never => {
    throw new ModelLoadError(`codes model '${path}' does not fit its metadata: ${what}`);
  };
  if (session.inputNames.length !== 1 || session.inputNames[0] !== CODES_INPUT) fail(`inputs are [${session.inputNames.join(', ')}], expected ['${CODES_INPUT}']`);
  if (!session.outputNames.includes(CODES_OUTPUT)) fail(`outputs are [${session.outputNames.join(', ')}], expected '${CODES_OUTPUT}'`);
  const input = dims(session.inputMetadata, CODES_INPUT);
  if (input && input.length > 0 && (input.length !== 2 || (typeof input[1] === 'number' && input[1] !== meta.embeddingDim))) {
    fail(`input '${CODES_INPUT}' has shape [${input.join(', ')}], metadata says embeddingDim ${meta.embeddingDim}`);
  }
  const output = dims(session.outputMetadata, CODES_OUTPUT);
  if (output && output.length > 0 && (output.length !== 2 || (typeof output[1] === 'number' && output[1] !== meta.bits))) {
    fail(`output '${CODES_OUTPUT}' has shape [${output.join(', ')}], metadata says ${meta.bits} bits`);
  }
}

class OrtCodesSession implements CodesSession {
  readonly bits: number;
  readonly embeddingDim: number;
  readonly modelHash: string;
  readonly cropPolicy: CropPolicy;
  readonly crops: CropCount;
  private closed = false;

  constructor(
    private readonly session: InferenceSession,
    readonly meta: CodesMeta,
    readonly path: string,
  ) {
    this.bits = meta.bits;
    this.embeddingDim = meta.embeddingDim;
    this.modelHash = meta.modelHash;
    this.cropPolicy = meta.cropPolicy;
    this.crops = policyCrops(meta.cropPolicy);
  }

  async encodeDetailed(embeddings: Float32Array, n = 1): Promise<EncodedCodes> {
    if (this.closed) throw new ModelLoadError(`codes session for '${this.path}' is closed`);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`'n' must be a positive integer, got ${String(n)}`);
    const d = this.embeddingDim;
    if (embeddings.length < n * d) throw new RangeError(`'embeddings' holds ${embeddings.length} floats, ${n} embeddings of ${d} need ${n * d}`);
    const input = new Tensor('float32', embeddings.length === n * d ? embeddings : embeddings.subarray(0, n * d), [n, d]);
    const out = await this.session.run({ [CODES_INPUT]: input }, [CODES_OUTPUT]);
    const t = out[CODES_OUTPUT];
    if (!(t instanceof Tensor) || !(t.data instanceof Float32Array) || t.data.length !== n * this.bits) {
      throw new ModelLoadError(`codes model '${this.path}': output '${CODES_OUTPUT}' is not float32 [${n}, ${this.bits}]`);
    }
    return { codes: packRows(t.data, n, this.bits), logits: t.data };
  }

  async encode(embeddings: Float32Array, n = 1): Promise<Uint8Array> {
    return (await this.encodeDetailed(embeddings, n)).codes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/**
 * Packs n rows of B pre-sign values into n codes of B/8 bytes: bit j of a row is set when its value
 * is > 0 (zero counts as negative), least significant bit first within each byte. This is the layout
 * index/ stores and compares (index/codes.ts packSigns); model/ writes it itself so that it does not
 * depend on index/ (tests/model/codes.test.ts checks the two agree).
 */
export function packRows(values: Float32Array, n: number, bits: number, out = new Uint8Array((n * bits) >>> 3)): Uint8Array {
  out.fill(0, 0, (n * bits) >>> 3);
  for (let i = 0; i < n * bits; i++) {
    if ((values[i] as number) > 0) out[i >>> 3] = (out[i >>> 3] as number) | (1 << (i & 7));
  }
  return out;
}

export async function createCodesSession(path: string, opts: CodesSessionOptions = {}): Promise<CodesSession> {
  const threads = checkIntOption('threads', opts.threads ?? 1, 1, 256);
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch {
    throw new ModelLoadError(`codes model '${path}' does not exist or cannot be read`);
  }
  const meta = readCodesMeta(path);
  let session: InferenceSession;
  try {
    session = await InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  } catch (err) {
    throw new ModelLoadError(`codes model '${path}' could not be loaded by onnxruntime: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  try {
    checkGraph(session, meta, path);
    return new OrtCodesSession(session, meta, path);
  } catch (err) {
    await session.release();
    throw err;
  }
}

/** Refuses to pair a codes model with an image model it was not trained for. */
export function checkCodesFor(codes: Pick<CodesSession, 'path' | 'modelHash' | 'embeddingDim'>, modelHash: string, embeddingDim: number): void {
  if (codes.embeddingDim !== embeddingDim) {
    throw new CodesMismatchError(`codes model '${codes.path}' takes ${codes.embeddingDim}-d embeddings, the image model gives ${embeddingDim}`);
  }
  if (codes.modelHash !== modelHash) {
    throw new CodesMismatchError(
      `codes model '${codes.path}' was trained for the image model with SHA-256 ${codes.modelHash.slice(0, 12)}…, the loaded model is ${modelHash.slice(0, 12)}…: run 'sightline train-codes' for this model`,
    );
  }
}
