/**
 * Retrieval metrics with binary relevance (same class = relevant).
 *
 * A ranking is the whole database ordered by distance to the query, ties broken by database index
 * (the catalog's id order, which its exact scan also uses): with integer Hamming distances many
 * images tie, and a fixed, documented order keeps the numbers reproducible.
 *
 * - AP (whole ranking) = (1/R) Σ_{relevant at rank r} P@r, R = relevant images in the database.
 * - AP@k = (1/min(R, k)) Σ_{relevant at rank r ≤ k} P@r: a ranking with every relevant image in
 *   the first k positions scores 1, and retrieving few relevant images is not rewarded.
 * - P@10 = relevant images among the first 10 / 10.
 * - recall@k of an approximate top-k against the exact one counts a returned image as a hit when
 *   its distance is ≤ the exact k-th distance, so ties at the boundary are not misses.
 * Queries with no relevant image in the database are skipped (AP is undefined for them).
 *
 * Only the ranks of the relevant images are needed, so rankings are never materialized: relevant
 * keys are sorted (R log R) and each irrelevant key is binary-searched among them (N log R).
 */

/** Database indices must fit beside a float32 distance in one exact float64 key. */
export const MAX_DB_SIZE = 2 ** 21;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Orders by (distance as float32, index): a float32 ≥ 0's bits order like the float; 31 + 21 bits < 2^53. */
export function rankKey(distance: number, index: number): number {
  f32[0] = Number.isNaN(distance) ? Infinity : Math.max(distance, 0);
  return (u32[0] as number) * MAX_DB_SIZE + index;
}

export interface RankingMetrics {
  ap: number;
  apAtK: number;
  pAt10: number;
}

/** Metrics from the sorted 1-based ranks of the relevant images (all R of them). */
export function metricsFromRanks(ranks: ArrayLike<number>, k = 1000): RankingMetrics {
  const r = ranks.length;
  let ap = 0;
  let apAtK = 0;
  let top10 = 0;
  for (let j = 0; j < r; j++) {
    const rank = ranks[j] as number;
    const precision = (j + 1) / rank;
    ap += precision;
    if (rank <= k) apAtK += precision;
    if (rank <= 10) top10++;
  }
  return { ap: r > 0 ? ap / r : 0, apAtK: r > 0 ? apAtK / Math.min(r, k) : 0, pAt10: top10 / 10 };
}

/** Reusable buffers for one database size, so a query allocates nothing. */
export class Ranker {
  private readonly relKeys: Float64Array;
  private readonly irrKeys: Float64Array;
  private readonly below: Int32Array;
  readonly ranks: Int32Array;

  constructor(readonly n: number) {
    if (!Number.isInteger(n) || n < 1 || n > MAX_DB_SIZE) throw new RangeError(`'n' must be an integer in [1, ${MAX_DB_SIZE}], got ${n}`);
    this.relKeys = new Float64Array(n);
    this.irrKeys = new Float64Array(n);
    this.below = new Int32Array(n + 1);
    this.ranks = new Int32Array(n);
  }

  /**
   * Sorted 1-based ranks of the relevant images when the database is ordered by `distance`
   * (lower first, ties by index). Returns a view of `this.ranks`, valid until the next call.
   */
  byDistance(distance: ArrayLike<number>, relevant: (index: number) => boolean): Int32Array {
    let r = 0;
    let m = 0;
    for (let i = 0; i < this.n; i++) {
      const key = rankKey(distance[i] as number, i);
      if (relevant(i)) this.relKeys[r++] = key;
      else this.irrKeys[m++] = key;
    }
    const rel = this.relKeys.subarray(0, r).sort();
    const below = this.below.fill(0, 0, r + 1);
    // below[j] = irrelevant keys between rel[j-1] and rel[j] (keys are distinct: they embed the index).
    for (let t = 0; t < m; t++) {
      const key = this.irrKeys[t] as number;
      let lo = 0;
      let hi = r;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((rel[mid] as number) < key) lo = mid + 1;
        else hi = mid;
      }
      below[lo] = (below[lo] as number) + 1;
    }
    let irrelevantBefore = 0;
    for (let j = 0; j < r; j++) {
      irrelevantBefore += below[j] as number;
      this.ranks[j] = j + 1 + irrelevantBefore;
    }
    return this.ranks.subarray(0, r);
  }

  /**
   * Ranks for integer distances in [0, maxDistance] (Hamming): a counting sort, ties by index.
   * `skip` (optional) marks images already placed ahead of this ranking, at ranks 1..offset.
   */
  byHamming(distance: ArrayLike<number>, maxDistance: number, relevant: (index: number) => boolean, offset = 0, skip?: Uint8Array): Int32Array {
    const start = new Int32Array(maxDistance + 2);
    for (let i = 0; i < this.n; i++) if (!skip || skip[i] === 0) start[(distance[i] as number) + 1] = (start[(distance[i] as number) + 1] as number) + 1;
    for (let d = 1; d <= maxDistance + 1; d++) start[d] = (start[d] as number) + (start[d - 1] as number);
    let r = 0;
    for (let i = 0; i < this.n; i++) {
      if (skip && skip[i] !== 0) continue;
      const d = distance[i] as number;
      const pos = start[d] as number;
      start[d] = pos + 1;
      if (relevant(i)) this.ranks[r++] = offset + pos + 1;
    }
    return this.ranks.subarray(0, r).sort();
  }

  /**
   * Ranks when `head` (database indices, best first) comes first and every other image follows
   * in Hamming order: a served result list continued by what the codes alone would rank next.
   */
  byHeadThenHamming(head: readonly number[], distance: ArrayLike<number>, maxDistance: number, relevant: (index: number) => boolean, skip: Uint8Array): Int32Array {
    skip.fill(0);
    const headRanks: number[] = [];
    head.forEach((index, pos) => {
      skip[index] = 1;
      if (relevant(index)) headRanks.push(pos + 1);
    });
    const tail = this.byHamming(distance, maxDistance, relevant, head.length, skip);
    const all = new Int32Array(headRanks.length + tail.length);
    all.set(headRanks);
    all.set(tail, headRanks.length);
    this.ranks.set(all);
    return this.ranks.subarray(0, all.length);
  }
}

/** Hits among `returned` distances: those ≤ the exact k-th distance (ties count), over k. */
export function recallWithTies(returned: ArrayLike<number>, exactKth: number, k: number): number {
  let hits = 0;
  for (let i = 0; i < Math.min(returned.length, k); i++) if ((returned[i] as number) <= exactKth) hits++;
  return hits / k;
}

/** The k-th smallest of integer distances in [0, maxDistance] (k is capped at the count). */
export function kthSmallestInt(distance: ArrayLike<number>, maxDistance: number, k: number): number {
  const count = new Int32Array(maxDistance + 1);
  for (let i = 0; i < distance.length; i++) count[distance[i] as number] = (count[distance[i] as number] as number) + 1;
  let seen = 0;
  const want = Math.min(k, distance.length);
  for (let d = 0; d <= maxDistance; d++) {
    seen += count[d] as number;
    if (seen >= want) return d;
  }
  return maxDistance;
}

/** Running means of the ranking metrics over queries. */
export class MetricMeans {
  private sums = { ap: 0, apAtK: 0, pAt10: 0 };
  count = 0;

  add(m: RankingMetrics): void {
    this.sums.ap += m.ap;
    this.sums.apAtK += m.apAtK;
    this.sums.pAt10 += m.pAt10;
    this.count++;
  }

  means(): RankingMetrics {
    const c = Math.max(this.count, 1);
    return { ap: this.sums.ap / c, apAtK: this.sums.apAtK / c, pAt10: this.sums.pAt10 / c };
  }
}
