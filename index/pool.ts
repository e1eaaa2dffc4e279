/**
 * Stage 1 of the re-ranked search: the Hamming pool (at least POOL_MIN images, never cut inside a
 * tie) as rows of the code matrix, narrowed to the k × oversample nearest by sketch.
 *
 * Hot path, profiled at 60k images with center-heavy codes (a pool of ~6,000 per query): it works
 * on matrix rows, not ids (the id → row Map lookups cost more than the scan itself), keeps its sort
 * keys in a reused buffer (a fresh page costs ~11 µs here) and selects the k × oversample smallest
 * keys before sorting only those.
 */
import type { CandidateEngine, SearchContext } from './search.js';

export interface Candidates {
  ids: number[];
  hamming: number[];
  engine: CandidateEngine;
}

export interface Ranked {
  index: number;
  distance: number | null;
  /** The hit's embedding norm (re-rank only), for the near-duplicate test. */
  norm?: number;
}

/**
 * Stage 1's pool holds at least this many images, and every image within POOL_MARGIN_BITS of the
 * farthest of them: a transformed copy's code often lands a few bits from its original's, next to
 * shared codes that alone fill k × oversample. Measured on the 300 edited copies of `eval retrieval
 * --near-dup 100` (exact fc7 Euclidean recall@1 / @10: 0.767 / 0.907 at 10k images, 0.737 / 0.843 at
 * 60k): a pool of k × oversample = 100 gave 0.727 / 0.840 at 10k; ≥ 1,000 gave 0.767 / 0.903 at 10k
 * but 0.697 / 0.777 at 60k (the original's code outside the pool in 32 of 300 copies); ≥ 3,000,
 * 0.717 / 0.813; ≥ 1,000 + 2 bits, 0.730 / 0.827 (pool p50 5,237 images, p90 5,844: about one
 * class). HNSW is asked for k × oversample nodes only (a larger efSearch costs more than the
 * sketches); its pool reads down the nodes found (each holds at least one image) by the same rule.
 */
export const POOL_MIN = 1000;
export const POOL_MARGIN_BITS = 2;

/** Stage 1's pool as matrix rows (see CodeMatrix.poolRows), with each row's Hamming distance. */
export interface RowPool {
  rows: ArrayLike<number>;
  hamming: (i: number) => number;
  engine: CandidateEngine;
}

/**
 * Stage 1 for the re-rank: at least max(`want`, POOL_MIN) images and every image within
 * POOL_MARGIN_BITS of the farthest of them (whole codes), as rows of the code matrix.
 */
export function findPool(ctx: SearchContext, code: Uint8Array, want: number, label: number | undefined): RowPool {
  const { matrix } = ctx;
  const total = matrix.size;
  const eligible = label === undefined ? total : ctx.labelCount(label);
  const selective = label !== undefined && eligible < ctx.filterScanFraction * total;
  const scan = (engine: CandidateEngine): RowPool => {
    const rows = matrix.poolRows(code, Math.max(want, POOL_MIN), label, POOL_MARGIN_BITS);
    return { rows, hamming: (i) => matrix.hammingAt(rows[i] as number), engine };
  };
  if (total <= ctx.scanThreshold || selective || ctx.hnsw === undefined || eligible === 0) return scan('scan');
  const filter = label === undefined ? undefined : (id: number): boolean => matrix.labelOf(id) === label;
  const ann = ctx.hnsw.pool(code, want, filter, POOL_MIN, POOL_MARGIN_BITS);
  // HNSW can come back short (a filter that prunes the graph, many deletions); the scan is exact.
  if (ann.ids.length < Math.min(want, eligible)) return scan('hnsw→scan');
  // Every id HNSW returns is in the matrix (both mirror SQLite); a missing one would rank last.
  const rows = ann.ids.map((id) => matrix.rowOfId(id) ?? -1);
  return { rows, hamming: (i) => ann.hamming[i] as number, engine: 'hnsw' };
}

const MAX_POOL = 2 ** 21;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Sort keys of the last pool, reused across queries (grown, never shrunk: no per-query pages). */
let keys = new Float64Array(8192);
let projected = new Float32Array(64);

/**
 * The `want` candidates of the pool nearest to `q` by sketch (all of them when the pool is no
 * larger), in the pool's order of sketch distance, with their ids and Hamming distances. Keys are
 * float64 (float32 distance bits × 2^21 + position): unique, so selecting the `want` smallest
 * and sorting only those gives exactly the order of sorting them all. Without sketches (a catalog
 * opened without them), the old order: Hamming, then id.
 */
export function narrow(ctx: SearchContext, q: Float32Array, pool: RowPool, want: number): Candidates & { pool: number } {
  const { matrix } = ctx;
  const n = pool.rows.length;
  const pick = (positions: ArrayLike<number>, count: number): Candidates & { pool: number } => {
    const ids = new Array<number>(count);
    const hamming = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const at = positions[i] as number;
      const row = pool.rows[at] as number;
      ids[i] = row < 0 ? -1 : matrix.idAt(row);
      hamming[i] = pool.hamming(at);
    }
    return { ids, hamming, engine: pool.engine, pool: n };
  };
  if (n <= want) return pick(Array.from({ length: n }, (_, i) => i), n);
  if (ctx.sketch === undefined || n > MAX_POOL) {
    const all = pick(Array.from({ length: n }, (_, i) => i), n);
    const order = byHamming(all.ids, all.hamming).slice(0, want).map((r) => r.index);
    return pick(order, want);
  }
  if (projected.length !== ctx.sketch.dim) projected = new Float32Array(ctx.sketch.dim);
  const p = ctx.sketch.project(q, projected);
  let qNorm = 0;
  for (let i = 0; i < p.length; i++) qNorm += (p[i] as number) * (p[i] as number);
  if (keys.length < n) keys = new Float64Array(Math.max(n, keys.length * 2));
  for (let i = 0; i < n; i++) {
    const row = pool.rows[i] as number;
    f32[0] = row < 0 ? Infinity : Math.max(0, matrix.sketchDistance(row, p, qNorm));
    keys[i] = (u32[0] as number) * MAX_POOL + i;
  }
  selectSmallest(keys, n, want);
  const best = keys.subarray(0, want).sort();
  for (let i = 0; i < want; i++) best[i] = (best[i] as number) % MAX_POOL;
  return pick(best, want);
}

/** Moves the `k` smallest of `a[0, n)` into `a[0, k)` (Hoare quickselect, median of three; keys distinct). */
export function selectSmallest(a: Float64Array, n: number, k: number): void {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo && k > lo && k <= hi) {
    const mid = (lo + hi) >>> 1;
    const x = a[lo] as number;
    const y = a[mid] as number;
    const z = a[hi] as number;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) < pivot) i++;
      while ((a[j] as number) > pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i++] = a[j] as number;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

export function byHamming(ids: number[], hamming: number[]): Ranked[] {
  const order = ids.map((_, index) => ({ index, distance: null }));
  return order.sort((a, b) => (hamming[a.index] as number) - (hamming[b.index] as number) || (ids[a.index] as number) - (ids[b.index] as number));
}

