/**
 * Two-stage search inside PostgreSQL, with the SQLite catalog's semantics (search.ts), so that the
 * same images give the same ids:
 * 1. Hamming candidates: an exact `bit_count(code # q)` scan for collections up to scanThreshold and
 *    for selective label filters — at least max(k × oversample, POOL_MIN) images and every
 *    image within POOL_MARGIN_BITS of the last (never a cut inside a tie) — else pgvector's HNSW index (`<~>`,
 *    `SET LOCAL hnsw.ef_search` = k × oversample per query, an iterative scan reading on past
 *    POOL_MIN rows, and on while they hold fewer than k × oversample distinct codes, the nodes the
 *    graph reads), by the SQLite graph's rule: the distinct codes found, each with all its images,
 *    in distance order to POOL_MIN images and then POOL_MARGIN_BITS beyond (hnswPool). HNSW coming
 *    back short (a filter, many deletions) falls back to the scan.
 * 2. A pool larger than k × oversample is narrowed by the stored sketches (sketch.ts; same
 *    arithmetic as the in-memory matrix, pool in id order), then re-ranked by exact Euclidean
 *    distance on the stored float16 embeddings, computed here in JS like the SQLite catalog.
 * Nothing is cached in the process: every replica answers from the database as it is now.
 */
import { toPackedCode } from '../codes.js';
import { IndexParamError } from '../errors.js';
import { distanceAndNorm, roundToHalf } from '../float16.js';
import { nearDuplicateTest } from '../near-dup.js';
import { POOL_MARGIN_BITS, POOL_MIN } from '../pool.js';
import { checkEmbedding } from '../records.js';
import { type CandidateEngine, type SearchHit, type SearchOptions, type SearchQuery, type SearchResult, validateSearchOptions } from '../search.js';
import type { SketchProjection } from '../sketch.js';
import type { SqlClient } from './client.js';
import { bitString, halvesOf, labelsOf, num, oodOf, STORED_HASHES, type StoredHashes, toBuffer, vectorBytesSql } from './rows.js';
import type { PgMeta } from './schema.js';

export interface PgSearchContext {
  db: SqlClient;
  meta: PgMeta;
  sketch: SketchProjection;
  scanThreshold: number;
  filterScanFraction: number;
  /** Lower bound of hnsw.ef_search (raised to k × oversample, at most 1000). */
  efSearch: number;
  /** Images in the catalog now (catalog_state). */
  count(): Promise<number>;
  /** Throws when the stored model hashes are not the loaded ones (read with the hits' rows). */
  checkCurrent(stored: StoredHashes): void;
}

interface Candidate {
  id: number;
  hamming: number;
  sketch: Buffer | null;
}

interface Pool {
  cand: Candidate[];
  engine: CandidateEngine;
}

const MAX_EF = 1000;

async function scan(ctx: PgSearchContext, q: string, want: number, label: string | undefined, pool: boolean): Promise<Candidate[]> {
  const bits = ctx.meta.bits;
  const where = label === undefined ? '' : 'WHERE top_label = $3';
  const params: unknown[] = [q, want, ...(label === undefined ? [] : [label])];
  const sql = pool
    ? `WITH d AS (SELECT id, bit_count(code # $1::bit(${bits}))::int AS h, sketch FROM images ${where})
       SELECT id, h, sketch FROM d WHERE h <= COALESCE((SELECT h FROM d ORDER BY h OFFSET $2 - 1 LIMIT 1), ${bits}) + ${POOL_MARGIN_BITS} ORDER BY id`
    : `SELECT id, bit_count(code # $1::bit(${bits}))::int AS h, NULL::bytea AS sketch FROM images ${where} ORDER BY h, id LIMIT $2`;
  const rows = (await ctx.db.query<{ id: unknown; h: unknown; sketch: unknown }>(sql, params)).rows;
  return rows.map((r) => ({ id: num(r.id), hamming: num(r.h), sketch: r.sketch == null ? null : toBuffer(r.sketch) }));
}

/** Most index rows one pool query reads (pgvector's own hnsw.max_scan_tuples default is 20,000). */
const MAX_POOL_ROWS = 16_000;

async function hnsw(ctx: PgSearchContext, q: string, want: number, label: string | undefined, pool: boolean): Promise<Candidate[]> {
  const bits = ctx.meta.bits;
  const ef = Math.min(MAX_EF, Math.max(ctx.efSearch, want));
  return ctx.db.transaction(async (tx) => {
    // SET LOCAL as one statement (a round trip less). The pool reads on past the k × oversample
    // nearest (pool.ts), and a label filter drops nodes: both need the index scan to continue beyond ef_search.
    const iterative = pool || label !== undefined ? ", set_config('hnsw.iterative_scan', 'relaxed_order', true)" : '';
    await tx.query(`SELECT set_config('hnsw.ef_search', '${ef}', true)${iterative}`);
    const filter = label === undefined ? '' : 'WHERE top_label = $3';
    if (!pool) {
      const rows = (
        await tx.query<{ id: unknown; h: unknown }>(
          `SELECT id, h FROM (SELECT id, (code <~> $1::bit(${bits}))::int AS h FROM images ${filter} ORDER BY code <~> $1::bit(${bits}) LIMIT $2) n ORDER BY h, id`,
          [q, want, ...(label === undefined ? [] : [label])],
        )
      ).rows;
      return rows.map((r) => ({ id: num(r.id), hamming: num(r.h), sketch: null }));
    }
    const enough = Math.max(want, POOL_MIN);
    let near: NearRow[];
    for (let read = enough; ; read *= 4) {
      const limit = Math.min(read, MAX_POOL_ROWS);
      near = (
        await tx.query<NearRow>(
          `SELECT id, h, code, sketch FROM (SELECT id, (code <~> $1::bit(${bits}))::int AS h, code::text AS code, sketch FROM images ${filter} ORDER BY code <~> $1::bit(${bits}) LIMIT $2) n ORDER BY h, id`,
          [q, limit, ...(label === undefined ? [] : [label])],
        )
      ).rows;
      // The graph's pool reads `want` nodes (distinct codes); rows that share a few codes (hash
      // centres hold whole classes) hold fewer: read on, as the margin may lie beyond them.
      if (near.length < limit || limit >= MAX_POOL_ROWS || new Set(near.map((r) => r.code)).size >= want) break;
    }
    const out = near.map((r) => ({ id: num(r.id), hamming: num(r.h), sketch: r.sketch == null ? null : toBuffer(r.sketch) }));
    if (out.length < want) return out;
    // The cut: where the rows read reach POOL_MIN images; the pool keeps every row found within
    // POOL_MARGIN_BITS beyond it, and the codes at those distances whole (the index may have read
    // only part of a shared code where it stopped).
    const cut = (out[Math.min(enough, out.length) - 1] as Candidate).hamming;
    const found = out.filter((c) => c.hamming <= cut + POOL_MARGIN_BITS);
    const edge = new Map(near.filter((r) => num(r.h) >= cut && num(r.h) <= cut + POOL_MARGIN_BITS).map((r) => [r.code, num(r.h)]));
    const seen = new Set(found.map((c) => c.id));
    const whole = (
      await tx.query<{ id: unknown; code: string; sketch: unknown }>(
        `SELECT id, code::text AS code, sketch FROM images WHERE code = ANY($1::bit(${bits})[]) ${label === undefined ? '' : 'AND top_label = $2'}`,
        [[...edge.keys()], ...(label === undefined ? [] : [label])],
      )
    ).rows;
    for (const r of whole) if (!seen.has(num(r.id))) found.push({ id: num(r.id), hamming: edge.get(r.code) as number, sketch: r.sketch == null ? null : toBuffer(r.sketch) });
    return found.sort((a, b) => a.id - b.id);
  });
}

interface NearRow {
  id: unknown;
  h: unknown;
  code: string;
  sketch: unknown;
}

async function candidates(ctx: PgSearchContext, q: string, want: number, label: string | undefined, pool: boolean): Promise<Pool> {
  // Without the pgvector index every search scans: no counts to read first (a round trip each).
  if (!ctx.meta.hnsw) return { cand: await scan(ctx, q, pool ? Math.max(want, POOL_MIN) : want, label, pool), engine: 'scan' };
  const total = await ctx.count();
  const eligible = label === undefined ? total : num((await ctx.db.query<{ n: unknown }>('SELECT count(*) AS n FROM images WHERE top_label = $1', [label])).rows[0]?.n);
  if (Math.min(want, eligible) === 0) return { cand: [], engine: 'scan' };
  const selective = label !== undefined && eligible < ctx.filterScanFraction * total;
  const exact = (): Promise<Candidate[]> => scan(ctx, q, pool ? Math.max(want, POOL_MIN) : want, label, pool);
  if (total <= ctx.scanThreshold || selective) return { cand: await exact(), engine: 'scan' };
  const ann = await hnsw(ctx, q, want, label, pool);
  if (ann.length < Math.min(want, eligible)) return { cand: await exact(), engine: 'hnsw→scan' };
  return { cand: ann, engine: 'hnsw' };
}

const MAX_POOL = 2 ** 21;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Squared distance between a query projection and a stored sketch, as CodeMatrix.sketchDistance computes it. */
export function sketchDistance(sketch: Buffer | null, p: Float32Array, qNorm: number): number {
  if (sketch === null || sketch.length !== 4 + p.length) return Infinity;
  const scale = sketch.readFloatLE(0);
  let sum = 0;
  let dot = 0;
  for (let i = 0; i < p.length; i++) {
    const v = sketch.readInt8(4 + i);
    sum += v * v;
    dot += (p[i] as number) * v;
  }
  return qNorm + Math.fround(sum * scale * scale) - 2 * scale * dot;
}

/** Positions of the `want` candidates nearest by sketch (search.ts narrow(), same keys). */
function narrow(sketch: SketchProjection, q: Float32Array, cand: Candidate[], want: number): number[] {
  const n = cand.length;
  if (n <= want) return cand.map((_, i) => i);
  const p = sketch.project(q);
  let qNorm = 0;
  for (let i = 0; i < p.length; i++) qNorm += (p[i] as number) * (p[i] as number);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    f32[0] = Math.max(0, sketchDistance((cand[i] as Candidate).sketch, p, qNorm));
    keys[i] = (u32[0] as number) * MAX_POOL + i;
  }
  keys.sort();
  return Array.from(keys.subarray(0, want), (k) => k % MAX_POOL);
}

interface Ranked {
  c: Candidate;
  distance: number | null;
  norm?: number;
}

interface DetailRow extends StoredHashes {
  id: unknown;
  source: string;
  labels: unknown;
  ood_score: unknown;
  ood_basis: unknown;
  v?: unknown;
}

/**
 * The rows of `ids` (and their embeddings for the re-rank) in one round trip, with the stored
 * model hashes: a replica whose model a reindex replaced finds out here, before answering.
 */
async function details(ctx: PgSearchContext, ids: number[], vectors: boolean): Promise<Map<number, DetailRow>> {
  if (ids.length === 0) return new Map();
  const [v, join] = vectors ? [`, ${vectorBytesSql(ctx.meta.vector)} AS v`, ' JOIN embeddings e ON e.id = i.id'] : ['', ''];
  const rows = (await ctx.db.query<DetailRow>(`SELECT i.id, i.source, i.labels, i.ood_score, i.ood_basis${v}, ${STORED_HASHES} FROM images i${join} WHERE i.id = ANY($1::bigint[])`, [ids])).rows;
  if (rows[0] !== undefined) ctx.checkCurrent(rows[0]);
  return new Map(rows.map((r) => [num(r.id), r]));
}

function rerank(ctx: PgSearchContext, q: Float32Array, picked: Candidate[], rows: Map<number, DetailRow>): Ranked[] {
  const out: Ranked[] = [];
  for (const c of picked) {
    const r = rows.get(c.id);
    if (r === undefined) continue; // deleted since the pool was read
    const { distance, norm } = distanceAndNorm(q, halvesOf(ctx.meta.vector, r.v));
    out.push({ c, distance, norm });
  }
  return out.sort((a, b) => (a.distance as number) - (b.distance as number) || a.c.id - b.c.id);
}

export async function pgSearch(ctx: PgSearchContext, query: SearchQuery, options: SearchOptions): Promise<SearchResult> {
  const opts = validateSearchOptions(options);
  if (query === null || typeof query !== 'object') throw new IndexParamError('query', query, 'an object {code, embedding}');
  const code = toPackedCode(query.code, ctx.meta.bits, 'query.code');
  let q: Float32Array | undefined;
  if (opts.rerank) {
    if (query.embedding === undefined) throw new IndexParamError('query.embedding', undefined, `${ctx.meta.embeddingDim} floats (or rerank: false)`);
    q = roundToHalf(checkEmbedding(query.embedding, ctx.meta.embeddingDim, 'query.embedding'));
  }
  const want = opts.rerank ? opts.k * opts.oversample : opts.k;
  const { cand, engine } = await candidates(ctx, bitString(code, ctx.meta.bits), want, opts.label, q !== undefined).catch(async (err: unknown) => {
    // After a reindex to other bits the old width no longer casts: say that, not the SQL error.
    await ctx.count();
    throw err;
  });
  let summary: Map<number, DetailRow>;
  let order: Ranked[];
  if (q) {
    const picked = narrow(ctx.sketch, q, cand, want).map((i) => cand[i] as Candidate);
    summary = await details(ctx, picked.map((c) => c.id), true);
    order = rerank(ctx, q, picked, summary);
  } else {
    order = [...cand].sort((a, b) => a.hamming - b.hamming || a.id - b.id).map((c) => ({ c, distance: null }));
    summary = await details(ctx, order.slice(0, opts.k).map((r) => r.c.id), false);
  }
  const top: Ranked[] = [];
  for (const r of order.slice(0, opts.k)) {
    if (opts.maxDistance !== undefined && r.distance !== null && r.distance > opts.maxDistance) break;
    top.push(r);
  }
  const nearDup = nearDuplicateTest();
  const qNorm = q ? Math.sqrt(q.reduce((acc, v) => acc + v * v, 0)) : 0;
  const hits: SearchHit[] = [];
  for (const { c, distance, norm } of top) {
    const row = summary.get(c.id);
    if (row === undefined) continue;
    const nearDuplicate = distance !== null && norm !== undefined && nearDup(distance, qNorm, norm);
    hits.push({ id: c.id, source: row.source, distance, hamming: c.hamming, labels: labelsOf(row.labels), ood: oodOf(row as unknown as Record<string, unknown>), nearDuplicate });
  }
  return { hits, engine, candidates: cand.length };
}
