/**
 * The narrow interfaces routes depend on. Services implement them on top of model/ and index/;
 * routes never import those folders, so a route can be read (and tested) knowing only this file.
 */
import type { Priority } from './batcher.js';

export interface ModelInfo {
  readonly name: string;
  readonly version: string;
  readonly labels: readonly string[];
  /** [C, H, W] of one crop. */
  readonly inputShape: readonly [number, number, number];
  readonly embeddingDim: number;
  /** Graph tensor names as the Open Inference Protocol exposes them. */
  readonly io: { readonly input: string; readonly logits: string; readonly embedding: string };
  /** Execution provider actually in use (cpu, cuda, ...). */
  readonly provider: string;
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

export interface Timings {
  decode: number;
  infer: number;
  total: number;
}

export interface ClassifyResult {
  predictions: Prediction[];
  /** None of the labels fits: `ood_score` is over the model's threshold (model/ood.ts). */
  unknown: boolean;
  /** Higher = further from the images the threshold was fitted on. */
  ood_score: number;
  crops: 1 | 10;
  /** How many crops (0..crops) have the averaged top-1 as their own top-1: a count, not a fraction. */
  agreement: number;
  model: { name: string; version: string };
  timings_ms: Timings;
}

export interface EmbedResult {
  /** Mean fc7 embedding over the crops. */
  embedding: Float32Array;
  /** Binary code, one bit per code dimension, packed least significant bit first (bit i in byte i >> 3, mask 1 << (i & 7)). */
  code: Uint8Array;
  bits: number;
  crops: 1 | 10;
  timings_ms: Timings;
}

/** Classification and embeddings; every call goes through the dynamic batcher. */
export interface Inference {
  readonly info: ModelInfo;
  /** Crops averaged into retrieval embeddings: the codes model's crop policy (center = 1, mean10 = 10). */
  readonly embedCrops: 1 | 10;
  /** Raw tensors (Open Inference Protocol): n crops NCHW in, logits and embeddings out. */
  infer(input: Float32Array, n: number, priority?: Priority): Promise<{ logits: Float32Array; embedding: Float32Array }>;
  classify(bytes: Buffer, opts: { topk: number; crops: 1 | 10 }): Promise<ClassifyResult>;
  embed(bytes: Buffer, opts: { crops: 1 | 10; priority?: Priority }): Promise<EmbedResult>;
}

/** A label and its averaged probability, as an image's labels are stored. */
export interface LabelScore {
  label: string;
  probability: number;
}

/** An image's out-of-distribution score and what it means (model/ood.ts oodBasis), as the index stores it. */
export interface StoredOod {
  score: number;
  basis: string;
}

/** What the index stores for an image, from its bytes. */
export interface EncodedImage {
  /** Mean fc7 over the codes model's crops. */
  embedding: Float32Array;
  code: Uint8Array;
  /** Top labels, most probable first (only when asked). */
  labels?: LabelScore[];
  /** With labels: the out-of-distribution score of the same crops. */
  ood?: StoredOod;
  width: number;
  height: number;
}

/**
 * The image pipeline as the collection services see it: bytes → embedding, code and labels with
 * the codes model's crop policy, crops going through the dynamic batcher.
 */
export interface ImageEncoder {
  encode(bytes: Buffer, opts?: { labels?: number; priority?: Priority }): Promise<EncodedImage>;
  /**
   * `unknown` for a stored score against the serving model's current threshold; null when the
   * image was not scored, or scored on another basis (a re-fit of class means, another statistic).
   */
  judge(ood: StoredOod | null): boolean | null;
  /** The serving model's basis and threshold, for filtering stored scores in the catalog. */
  readonly oodRule: { basis: string; threshold: number };
}

export interface ImageRecord {
  id: number;
  sha256: string;
  source: string;
  /** Stored top labels, most probable first. */
  labels: string[];
  label_scores: { label: string; probability: number }[];
  /**
   * The image looks like none of the labels: its stored `ood_score` is over the serving model's
   * current threshold (judged at read time, so a re-calibration applies at once). Both null when
   * the image was not scored: indexed before schema 3, or scored on another basis than the serving
   * model's (ImageEncoder.judge); re-encoding it (`sightline reindex --model`) scores it.
   */
  unknown: boolean | null;
  ood_score: number | null;
  /** The upload's file name, when it came with one (not stored). */
  filename?: string;
  width: number;
  height: number;
  created_at: string;
  thumbnail_url: string;
}

export interface SearchHit {
  id: number;
  source: string;
  /** Euclidean fc7 distance; null when the re-rank was off. */
  distance: number | null;
  hamming: number;
  labels: string[];
  /** As in ImageRecord. */
  unknown: boolean | null;
  ood_score: number | null;
  /** Within the near-duplicate threshold (index/near-dup.ts); false when the re-rank was off. */
  near_duplicate: boolean;
  thumbnail_url: string;
}

export interface SearchOptions {
  k: number;
  rerank: boolean;
  label?: string;
  /** Drop hits whose fc7 Euclidean `distance` exceeds this (needs the re-rank); see index/search.ts for the scale. */
  maxDistance?: number;
}

/** GET /v1/images: a page of the collection in id order, optionally filtered. */
export interface ListImagesOptions {
  limit: number;
  /** The id the previous page ended at (decoded from its opaque cursor); absent = from the start. */
  afterId?: number;
  label?: string;
  /** Only images judged unknown (true) or known (false) now; unscored images match neither. */
  unknown?: boolean;
}

export interface ImagePage {
  images: ImageRecord[];
  /** The id to continue after, when more images match; the route turns it into an opaque cursor. */
  lastId: number | null;
}

/** GET /v1/duplicates: near-duplicate groups (index/duplicates.ts), paged by each group's smallest id. */
export interface DuplicatesOptions {
  limit: number;
  /** The smallest id of the previous page's last group (decoded from its cursor). */
  afterId?: number;
  /** Max embedding distance relative to the pair's mean norm (default: the calibrated one). */
  maxRelativeDistance?: number;
  /** An absolute fc7 Euclidean distance instead. */
  maxDistance?: number;
  /** Nearest images examined per image. */
  neighbours: number;
}

export interface DuplicateGroupView {
  /** Ascending; the first is the oldest image and names the group. */
  ids: number[];
  members: { id: number; source: string; thumbnail_url: string }[];
  /** The pairs found within the distance, which joined the group. */
  pairs: { a: number; b: number; hamming: number; distance: number }[];
}

export interface DuplicatePage {
  groups: DuplicateGroupView[];
  /** Groups in the whole listing. */
  total: number;
  /** The smallest id of the last group returned, when more groups follow. */
  lastId: number | null;
}

/** The indexed collection: images, their codes and similarity search. */
export interface Gallery {
  size(): Promise<number>;
  search(bytes: Buffer, opts: SearchOptions): Promise<SearchHit[]>;
  similar(id: number, opts: SearchOptions): Promise<SearchHit[]>;
  get(id: number): Promise<ImageRecord>;
  list(opts: ListImagesOptions): Promise<ImagePage>;
  duplicates(opts: DuplicatesOptions): Promise<DuplicatePage>;
  /** Indexes uploaded bytes; `created` is false when the same bytes were already indexed. */
  upload(bytes: Buffer, filename: string | undefined): Promise<{ record: ImageRecord; created: boolean }>;
  remove(id: number): Promise<void>;
  /** WebP thumbnail bytes (generated once, then cached). */
  thumbnail(id: number): Promise<Buffer>;
}

/** What batch indexing needs from the collection: lookup by content hash and adding a file's bytes. */
export interface IndexTarget {
  /** The indexed image with these bytes' SHA-256, if any (`createdAt` lets a resumed job recognise its own rows). */
  findBySha256(sha256: string): Promise<{ id: number; source: string; createdAt: string } | undefined>;
  /** Indexes `bytes` found at `source`; `existed` when the same bytes were added meanwhile. */
  add(bytes: Buffer, at: { source: string; sha256: string; priority: Priority }): Promise<{ id: number; existed: boolean }>;
}

export interface JobView {
  id: string;
  path: string;
  recursive: boolean;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';
  /** Files the job found to look at. */
  total: number;
  /** Files looked at so far: new + skipped + failed. */
  processed: number;
  /** Images added to the index. */
  new: number;
  /** Deprecated alias of `new` (it never counted skipped or failed files); kept for old clients. */
  done: number;
  skipped: number;
  failed: number;
  /** Of `skipped`: bytes already indexed. */
  duplicates: number;
  /** Of `skipped`: files that are not images. */
  not_images: number;
  /** Files per second over the job so far. */
  rate: number;
  eta_s: number | null;
  errors: { file: string; message: string }[];
  started_at: string;
  finished_at: string | null;
  /** Why the job failed as a whole (the folder vanished, ...). */
  failure?: string;
}

/** Indexing jobs; answers may be immediate (one server's jobs.json) or from the database (shared by replicas). */
export interface Jobs {
  start(path: string, recursive: boolean): Promise<JobView>;
  get(id: string): JobView | Promise<JobView>;
  cancel(id: string): JobView | Promise<JobView>;
  list(): JobView[] | Promise<JobView[]>;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready (or 'ready'). */
  readonly reason: string;
}
