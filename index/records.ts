/**
 * What callers hand the index for one image, what it gives back, and the validation that turns
 * the former into a row (packed code, float16 embedding blob, labels JSON) before any SQL runs.
 */
import { createHash } from 'node:crypto';
import { type CodeInput, toPackedCode } from './codes.js';
import { IndexParamError } from './errors.js';
import { encodeHalf } from './float16.js';
import type { SketchProjection } from './sketch.js';

export interface LabelScore {
  label: string;
  probability: number;
}

/**
 * How far an image is from the model's training data (higher = further) and what the number means
 * (model/ood.ts oodBasis: the statistic, plus a digest of fitted class means where it reads them).
 * The index stores it and never judges it: `unknown` is derived at read time from the serving
 * model's threshold, so re-calibrating the threshold needs no rewrite.
 */
export interface OodScore {
  score: number;
  basis: string;
}

export interface NewImage {
  /** File path or upload name, for display and for re-embedding later. */
  source: string;
  /** The image bytes (hashed here) or their sha256 in hex; one of the two is required. */
  bytes?: Uint8Array;
  sha256?: string;
  width: number;
  height: number;
  /** Predicted labels; stored sorted by probability, the first one is the "top label" filters use. */
  labels: readonly LabelScore[];
  code: CodeInput;
  /** fc7 embedding (embeddingDim floats, 4096 for AlexNet). */
  embedding: ArrayLike<number>;
  /** The out-of-distribution score, when the caller computed one (with the labels). */
  ood?: OodScore;
}

export interface ImageRecord {
  id: number;
  source: string;
  sha256: string;
  width: number;
  height: number;
  labels: LabelScore[];
  code: Uint8Array;
  modelHash: string;
  codesHash: string;
  /** Null: not scored (a row from before schema 3, or added without a score). */
  ood: OodScore | null;
  createdAt: string;
  updatedAt: string;
}

export interface AddResult {
  id: number;
  /** True when an image with the same sha256 was already stored; nothing was written then. */
  existed: boolean;
}

/** A validated row, ready for the insert statement. */
export interface PreparedImage {
  source: string;
  sha256: string;
  width: number;
  height: number;
  labelsJson: string;
  topLabel: string | null;
  code: Uint8Array;
  embedding: Buffer;
  /** sketch.ts blob of the embedding; null when the catalog has no projection. */
  sketch: Buffer | null;
  ood: OodScore | null;
}

/** What search hits and listings show of a row. */
export interface ImageSummary {
  id: number;
  source: string;
  labels: LabelScore[];
  ood: OodScore | null;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const MAX_SIDE = 1 << 20;

export function prepareImage(img: NewImage, bits: number, embeddingDim: number, sketch?: SketchProjection): PreparedImage {
  if (typeof img.source !== 'string' || img.source.length === 0 || img.source.length > 4096) {
    throw new IndexParamError('source', img.source, 'a non-empty string of at most 4096 characters');
  }
  const sha256 = resolveSha256(img);
  checkSide('width', img.width);
  checkSide('height', img.height);
  const labels = normaliseLabels(img.labels);
  const embedding = checkEmbedding(img.embedding, embeddingDim);
  const halves = encodeHalf(embedding);
  return {
    sketch: sketch ? sketch.encode(embedding) : null,
    source: img.source,
    sha256,
    width: img.width,
    height: img.height,
    labelsJson: JSON.stringify(labels),
    topLabel: labels[0]?.label ?? null,
    code: toPackedCode(img.code, bits),
    embedding: Buffer.from(halves.buffer, halves.byteOffset, halves.byteLength),
    ood: checkOod(img.ood),
  };
}

export function checkOod(ood: OodScore | undefined, param = 'ood'): OodScore | null {
  if (ood === undefined) return null;
  if (typeof ood?.score !== 'number' || !Number.isFinite(ood.score)) throw new IndexParamError(`${param}.score`, ood?.score, 'a finite number');
  if (typeof ood.basis !== 'string' || ood.basis.length === 0 || ood.basis.length > 100) throw new IndexParamError(`${param}.basis`, ood.basis, 'a non-empty string of at most 100 characters');
  return { score: ood.score, basis: ood.basis };
}

function resolveSha256(img: NewImage): string {
  if (img.sha256 !== undefined) {
    const s = String(img.sha256).toLowerCase();
    if (!SHA256_RE.test(s)) throw new IndexParamError('sha256', img.sha256, '64 hex digits');
    if (img.bytes !== undefined && sha256Hex(img.bytes) !== s) throw new IndexParamError('sha256', img.sha256, 'the sha256 of the given bytes');
    return s;
  }
  if (img.bytes instanceof Uint8Array) return sha256Hex(img.bytes);
  throw new IndexParamError('bytes', img.bytes, "the image bytes (or pass 'sha256')");
}

function checkSide(param: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
    throw new IndexParamError(param, v, `an integer in [1, ${MAX_SIDE}]`);
  }
}

export function normaliseLabels(labels: readonly LabelScore[]): LabelScore[] {
  if (!Array.isArray(labels)) throw new IndexParamError('labels', labels, 'an array of {label, probability}');
  const out = labels.map((l, i) => {
    if (typeof l?.label !== 'string' || l.label.length === 0 || l.label.length > 200) {
      throw new IndexParamError(`labels[${i}].label`, l?.label, 'a non-empty string of at most 200 characters');
    }
    const p = l.probability;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new IndexParamError(`labels[${i}].probability`, p, 'a number in [0, 1]');
    return { label: l.label, probability: p };
  });
  return out.sort((a, b) => b.probability - a.probability);
}

/** Embedding length must match the database's dimension and every value must be finite. */
export function checkEmbedding(e: ArrayLike<number>, dim: number, param = 'embedding'): ArrayLike<number> {
  if (e === null || typeof e !== 'object' || typeof e.length !== 'number' || e.length !== dim) {
    throw new IndexParamError(param, e, `${dim} floats`);
  }
  for (let i = 0; i < dim; i++) {
    if (!Number.isFinite(e[i])) throw new IndexParamError(`${param}[${i}]`, e[i], 'a finite number');
  }
  return e;
}
