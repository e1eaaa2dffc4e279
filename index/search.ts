/**
 * Two-stage search. Stage 1 takes the images nearest by Hamming distance on the binary codes
 * (HNSW, or the exact scan for small collections and selective label filters): at least
 * k × oversample of them and never a cut inside a tie, i.e. every image at the cut-off distance
 * (a shared code can hold a whole class). When that pool is larger than k × oversample, the
 * in-memory sketches (sketch.ts, a 64-value projection of each embedding) keep the k × oversample
 * nearest by approximate embedding distance (pool.ts). Stage 2 re-ranks those by exact Euclidean
 * distance on the stored float16 fc7 embeddings; the k hits' sources and labels come from SQLite
 * in one statement.
 *
 * Before the sketches, stage 1 cut the list at k × oversample in (Hamming, id) order, so inside a
 * shared code the candidates were simply the lowest ids: a JPEG re-save of an indexed image found
 * it first 42 times in 100 at 10k images (README, Retrieval).
 *
 * Re-rank reads embeddings from SQLite (one `IN (json_each)` statement for the ~100 candidate ids,
 * through SQLite's memory map: store.ts) rather than from an in-memory cache, which would cost
 * 8 KiB per image even in float16 (491 MB for 60k images) on a machine shared with training.
 * Measured at 60k images (one run, load ~20 on 2 cores; stage p50s): scan + pool 0.52 ms, sketch
 * narrowing 1.34, fetch of 100 embeddings 0.60 (alone: 0.43 mapped, 0.81 not), exact distances 0.86,
 * the hits' rows 0.09 ms. Revisit the cache if the fetch becomes the bottleneck.
 */
import { type CodeInput, toPackedCode } from './codes.js';
import { IndexParamError } from './errors.js';
import { distanceAndNorm, halfView, roundToHalf } from './float16.js';
import type { CodeHnsw } from './hnsw.js';
import { nearDuplicateTest } from './near-dup.js';
import { checkEmbedding, type LabelScore, type OodScore } from './records.js';
import { byHamming, type Candidates, findPool, narrow, type Ranked } from './pool.js';
import type { CodeMatrix, ScanHits } from './scan.js';
import type { SketchProjection } from './sketch.js';
import type { ImageStore } from './store.js';

export interface SearchQuery {
  code: CodeInput;
  /** Needed for the re-rank (the default); may be omitted with `rerank: false`. */
  embedding?: ArrayLike<number>;
}

export interface SearchOptions {
  /** Results to return, integer in [1, 100]; default 10. */
  k?: number;
  /** Candidates per result for the re-rank, integer in [1, 100]; default 10. */
  oversample?: number;
  /** Re-rank by Euclidean distance on embeddings (default true); off = order by Hamming. */
  rerank?: boolean;
  /** Only images whose top predicted label is exactly this. */
  label?: string;
  /**
   * Drop hits farther than this Euclidean distance between fc7 embeddings (the `distance` of a hit;
   * needs the re-rank). The scale is the embedding model's: with the bundled model, 1.82 separated
   * edited copies from their nearest other image best at 10k images (eval retrieval, README). Default: none.
   */
  maxDistance?: number;
}

export interface SearchHit {
  id: number;
  source: string;
  /** Euclidean distance between fc7 embeddings; null when the re-rank was off. */
  distance: number | null;
  hamming: number;
  labels: LabelScore[];
  /** The stored out-of-distribution score (records.ts OodScore); null when not scored. */
  ood: OodScore | null;
  /**
   * The embedding distance is within the near-duplicate threshold (duplicates.ts: relative to the
   * mean embedding norm, calibrated on edited copies); false when the re-rank was off.
   */
  nearDuplicate: boolean;
}

export type CandidateEngine = 'scan' | 'hnsw' | 'hnsw→scan';

export interface SearchResult {
  hits: SearchHit[];
  /** Which stage-1 engine produced the candidates ('hnsw→scan': HNSW came up short, the scan filled in). */
  engine: CandidateEngine;
  /** Images stage 1 considered (the Hamming pool, ties at the cut-off included). */
  candidates: number;
}

/** What the catalog exposes to the search (kept narrow so this file stays testable). */
export interface SearchContext {
  bits: number;
  embeddingDim: number;
  matrix: CodeMatrix;
  /** Absent: every search is an exact scan (read-only tools that never build the graph). */
  hnsw: CodeHnsw | undefined;
  store: ImageStore;
  /** The catalog's embedding projection; the matrix holds each row's sketch. */
  sketch: SketchProjection | undefined;
  /** Collections up to this size are searched by the exact scan. */
  scanThreshold: number;
  /** Label filters passing fewer than this fraction of images use the exact scan. */
  filterScanFraction: number;
  labelIndex(label: string): number | undefined;
  labelCount(index: number): number;
}

export interface ValidOptions {
  k: number;
  oversample: number;
  rerank: boolean;
  label: string | undefined;
  maxDistance: number | undefined;
}

export function validateSearchOptions(opts: SearchOptions): ValidOptions {
  const int = (name: string, v: unknown, def: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new IndexParamError(name, v, `an integer in [1, ${max}]`);
    return v;
  };
  if (opts.rerank !== undefined && typeof opts.rerank !== 'boolean') throw new IndexParamError('rerank', opts.rerank, 'a boolean');
  if (opts.label !== undefined && (typeof opts.label !== 'string' || opts.label.length === 0 || opts.label.length > 200)) {
    throw new IndexParamError('label', opts.label, 'a non-empty string of at most 200 characters');
  }
  const maxDistance = opts.maxDistance;
  if (maxDistance !== undefined) {
    if (typeof maxDistance !== 'number' || !Number.isFinite(maxDistance) || maxDistance < 0) throw new IndexParamError('max_distance', maxDistance, 'a finite number ≥ 0');
    if (opts.rerank === false) throw new IndexParamError('max_distance', maxDistance, 'used with the re-rank (it bounds the embedding distance, which rerank=false does not compute)');
  }
  return { k: int('k', opts.k, 10, 100), oversample: int('oversample', opts.oversample, 10, 100), rerank: opts.rerank ?? true, label: opts.label, maxDistance };
}

/** Stage 1 without the re-rank: the `want` nearest codes, ties by id; exact for small sets and selective filters, HNSW otherwise. */
export function findCandidates(ctx: SearchContext, code: Uint8Array, want: number, label: number | undefined): Candidates {
  const total = ctx.matrix.size;
  const eligible = label === undefined ? total : ctx.labelCount(label);
  const need = Math.min(want, eligible);
  if (need === 0) return { ids: [], hamming: [], engine: 'scan' };
  const selective = label !== undefined && eligible < ctx.filterScanFraction * total;
  const scan = (): ScanHits => ctx.matrix.topK(code, want, label);
  if (total <= ctx.scanThreshold || selective || ctx.hnsw === undefined) return { ...scan(), engine: 'scan' };
  const filter = label === undefined ? undefined : (id: number): boolean => ctx.matrix.labelOf(id) === label;
  const ann = ctx.hnsw.search(code, want, filter);
  // HNSW can come back short (a filter that prunes the graph, many deletions); the scan is exact.
  if (ann.ids.length < need) return { ...scan(), engine: 'hnsw→scan' };
  return { ...ann, engine: 'hnsw' };
}

export function search(ctx: SearchContext, query: SearchQuery, options: SearchOptions, queryBuf?: Float32Array): SearchResult {
  const opts = validateSearchOptions(options);
  if (query === null || typeof query !== 'object') throw new IndexParamError('query', query, 'an object {code, embedding}');
  const code = toPackedCode(query.code, ctx.bits, 'query.code');
  let q: Float32Array | undefined;
  if (opts.rerank) {
    if (query.embedding === undefined) throw new IndexParamError('query.embedding', undefined, `${ctx.embeddingDim} floats (or rerank: false)`);
    // Rounded through float16 like the stored vectors, so an image finds itself at distance 0.
    q = roundToHalf(checkEmbedding(query.embedding, ctx.embeddingDim, 'query.embedding'), queryBuf);
  }
  let label: number | undefined;
  if (opts.label !== undefined) {
    label = ctx.labelIndex(opts.label);
    if (label === undefined) return { hits: [], engine: 'scan', candidates: 0 };
  }
  const want = opts.rerank ? opts.k * opts.oversample : opts.k;
  let cand: Candidates & { pool?: number };
  let order: Ranked[];
  if (q === undefined) {
    cand = findCandidates(ctx, code, want, label);
    order = byHamming(cand.ids, cand.hamming);
  } else {
    const pool = findPool(ctx, code, want, label);
    cand = narrow(ctx, q, pool, want);
    order = rerank(ctx.store, q, cand.ids);
  }
  const top: { rank: Ranked; id: number }[] = [];
  for (const rank of order.slice(0, opts.k)) {
    if (opts.maxDistance !== undefined && rank.distance !== null && rank.distance > opts.maxDistance) break;
    top.push({ rank, id: cand.ids[rank.index] as number });
  }
  const rows = ctx.store.summaries(top.map((t) => t.id));
  const hits: SearchHit[] = [];
  const nearDup = nearDuplicateTest();
  const qNorm = q ? Math.sqrt(q.reduce((acc, v) => acc + v * v, 0)) : 0;
  for (const { rank, id } of top) {
    const { index, distance, norm } = rank;
    const row = rows.get(id);
    if (row === undefined) continue;
    const nearDuplicate = distance !== null && norm !== undefined && nearDup(distance, qNorm, norm);
    hits.push({ id, source: row.source, distance, hamming: cand.hamming[index] as number, labels: row.labels, ood: row.ood, nearDuplicate });
  }
  return { hits, engine: cand.engine, candidates: cand.pool ?? cand.ids.length };
}

/**
 * Stage 2: exact Euclidean distance to each candidate's stored float16 embedding, ties by id. One
 * pass over each vector gives the distance and the norm (for the near-duplicate test).
 */
function rerank(store: ImageStore, q: Float32Array, ids: number[]): Ranked[] {
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  const order: { index: number; distance: number; norm: number }[] = [];
  for (const [id, blob] of store.embeddings(ids)) {
    const { distance, norm } = distanceAndNorm(q, halfView(blob));
    order.push({ index: indexOf.get(id) as number, distance, norm });
  }
  return order.sort((a, b) => a.distance - b.distance || (ids[a.index] as number) - (ids[b.index] as number));
}
