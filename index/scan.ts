/**
 * Every stored code in one contiguous Uint32Array (row r = words [r·W, (r+1)·W)), with parallel id
 * and label columns. It is the ground truth for HNSW recall, the search engine for small
 * collections and for selective label filters, and the candidate source for near-duplicates.
 *
 * Top-k uses the fact that Hamming distances are small integers: one pass fills a reused distance
 * column and a histogram, the histogram gives the k-th distance, and only rows at or below it are
 * collected and sorted by (distance, id). No heap, no per-row allocation.
 *
 * Each row may also carry a sketch (sketch.ts: int8 random projection of the embedding) that
 * ranks the images inside a shared code by approximate embedding distance (`poolRows` + `sketchDistance`).
 */
import { codeWords } from './codes.js';
import { IdRows } from './id-rows.js';

export const NO_LABEL = -1;

/** Bits set in every 16-bit value. */
const POP16 = new Uint8Array(65536);
for (let i = 1; i < 65536; i++) POP16[i] = (i & 1) + (POP16[i >>> 1] as number);

export interface ScanHits {
  ids: number[];
  hamming: number[];
}

export class CodeMatrix {
  readonly words: number;
  private codes: Uint32Array;
  private ids: Uint32Array;
  private labels: Int32Array;
  private dist: Uint16Array;
  /** Rows within the last scan's cut-off (reused, so a query allocates no row list). */
  private within: Uint32Array;
  private sketches: Int8Array;
  /** Per row: the sketch's scale, and its squared norm (dequantized); NaN = no sketch. */
  private scales: Float32Array;
  private norms: Float32Array;
  private readonly rowOf = new IdRows();
  private readonly hist: Uint32Array;
  private readonly query: Uint32Array;
  private n = 0;

  constructor(
    readonly bits: number,
    capacity = 1024,
    readonly sketchDim = 0,
  ) {
    this.words = bits >>> 5;
    const cap = Math.max(16, capacity);
    this.codes = new Uint32Array(cap * this.words);
    this.ids = new Uint32Array(cap);
    this.labels = new Int32Array(cap);
    this.dist = new Uint16Array(cap);
    this.within = new Uint32Array(cap);
    this.sketches = new Int8Array(cap * sketchDim);
    this.scales = new Float32Array(cap);
    this.norms = new Float32Array(cap);
    this.hist = new Uint32Array(bits + 1);
    this.query = new Uint32Array(this.words);
  }

  get size(): number {
    return this.n;
  }

  has(id: number): boolean {
    return this.rowOfId(id) !== undefined;
  }

  labelOf(id: number): number {
    const r = this.rowOfId(id);
    return r === undefined ? NO_LABEL : (this.labels[r] as number);
  }

  /** The packed code of `id` (a copy), or undefined. */
  code(id: number): Uint8Array | undefined {
    const r = this.rowOfId(id);
    if (r === undefined) return undefined;
    return new Uint8Array(this.codes.buffer, r * this.words * 4, this.words * 4).slice();
  }

  /** The row of `id`, or undefined. */
  rowOfId(id: number): number | undefined {
    return this.rowOf.get(id);
  }

  /** Adds or replaces the row of `id`; `sketch` is the stored blob (sketch.ts), absent = none. */
  set(id: number, code: Uint8Array, label = NO_LABEL, sketch?: Uint8Array | null): void {
    let r = this.rowOfId(id);
    if (r === undefined) {
      if (this.n === this.ids.length) this.grow();
      r = this.n++;
      this.rowOf.set(id, r);
      this.ids[r] = id;
    }
    new Uint8Array(this.codes.buffer, r * this.words * 4, this.words * 4).set(code);
    this.labels[r] = label;
    this.setSketch(r, sketch);
  }

  private setSketch(r: number, blob: Uint8Array | null | undefined): void {
    const sd = this.sketchDim;
    if (sd === 0 || !blob || blob.length !== 4 + sd) {
      this.scales[r] = NaN;
      return;
    }
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const scale = view.getFloat32(0, true);
    let sum = 0;
    for (let i = 0; i < sd; i++) {
      const v = view.getInt8(4 + i);
      this.sketches[r * sd + i] = v;
      sum += v * v;
    }
    this.scales[r] = scale;
    this.norms[r] = sum * scale * scale;
  }

  /**
   * Squared Euclidean distance between a query's projection `q` (|q|² = `qNorm`) and row `row`'s
   * sketch; Infinity for a row without one (it then ranks after every sketched row).
   */
  sketchDistance(row: number, q: Float32Array, qNorm: number): number {
    const scale = this.scales[row] as number;
    if (Number.isNaN(scale)) return Infinity;
    const sd = this.sketchDim;
    const s = this.sketches;
    let dot = 0;
    for (let i = 0, o = row * sd; i < sd; i++, o++) dot += (q[i] as number) * (s[o] as number);
    return qNorm + (this.norms[row] as number) - 2 * scale * dot;
  }

  /** Swap-remove keeps the matrix dense, so the scan never skips holes. */
  delete(id: number): boolean {
    const r = this.rowOfId(id);
    if (r === undefined) return false;
    const last = --this.n;
    if (r !== last) {
      const lastId = this.ids[last] as number;
      this.codes.copyWithin(r * this.words, last * this.words, (last + 1) * this.words);
      this.ids[r] = lastId;
      this.labels[r] = this.labels[last] as number;
      const sd = this.sketchDim;
      this.sketches.copyWithin(r * sd, last * sd, (last + 1) * sd);
      this.scales[r] = this.scales[last] as number;
      this.norms[r] = this.norms[last] as number;
      this.rowOf.set(lastId, r);
    }
    this.rowOf.delete(id);
    return true;
  }

  idAt(row: number): number {
    return this.ids[row] as number;
  }

  /** A view (not a copy) of row `row`'s packed code; valid until the next add or delete. */
  codeAt(row: number): Uint8Array {
    return new Uint8Array(this.codes.buffer, row * this.words * 4, this.words * 4);
  }

  forEach(fn: (id: number, words: Uint32Array, offset: number, label: number) => void): void {
    for (let r = 0; r < this.n; r++) fn(this.ids[r] as number, this.codes, r * this.words, this.labels[r] as number);
  }

  /**
   * Exact top-k by Hamming distance, ties broken by smaller id; `label` restricts to rows whose top
   * label has that index. Returns fewer than k hits only when fewer rows qualify.
   */
  topK(code: Uint8Array, k: number, label?: number): ScanHits {
    const { dist } = this;
    const rows = Array.from(this.poolRows(code, k, label));
    rows.sort((a, b) => (dist[a] as number) - (dist[b] as number) || (this.ids[a] as number) - (this.ids[b] as number));
    const take = Math.min(k, rows.length);
    const hits: ScanHits = { ids: new Array<number>(take), hamming: new Array<number>(take) };
    for (let i = 0; i < take; i++) {
      const r = rows[i] as number;
      hits.ids[i] = this.ids[r] as number;
      hits.hamming[i] = dist[r] as number;
    }
    return hits;
  }

  /**
   * Every row (filtered by `label`) whose distance is at most the k-th smallest (+ `marginBits`):
   * the exact top-k plus every row that ties with the k-th, as ascending row numbers. Stage 1 of the search ranks
   * this pool by sketch, so an image is never dropped only because its id is high inside a shared
   * code. The rows are a view of a reused buffer, valid until the next scan, add or delete, with
   * each row's distance in `hammingAt(row)` until then. The search's hot path works on
   * rows so that no per-query id list, Map lookup or allocation is needed (profiled at 60k images:
   * the id → row Map lookups of a 6,000-image pool alone cost more than the scan).
   */
  poolRows(code: Uint8Array, k: number, label?: number, marginBits = 0): Uint32Array {
    const q = codeWords(code, this.query);
    const { dist, hist, within } = this;
    hist.fill(0);
    if (label === undefined && this.words === 4) this.distances128(q);
    else this.distancesAny(q, label);
    let cutoff = -1;
    let seen = 0;
    while (seen < k && cutoff < this.bits) seen += hist[++cutoff] as number;
    cutoff += marginBits;
    let m = 0;
    for (let r = 0; r < this.n; r++) if ((dist[r] as number) <= cutoff) within[m++] = r;
    return within.subarray(0, m);
  }

  /** Row `row`'s Hamming distance in the last scan (see poolRows). */
  hammingAt(row: number): number {
    return this.dist[row] as number;
  }

  /**
   * The 128-bit case unrolled, with a 16-bit popcount table (64 KiB, stays in L2): together ~2.5×
   * faster than the generic SWAR loop in V8 (see `npm run bench -- index`).
   */
  private distances128(q: Uint32Array): void {
    const { codes, dist, hist } = this;
    const t = POP16;
    const n = this.n;
    const q0 = q[0] as number;
    const q1 = q[1] as number;
    const q2 = q[2] as number;
    const q3 = q[3] as number;
    for (let r = 0, o = 0; r < n; r++, o += 4) {
      const x0 = (codes[o] as number) ^ q0;
      const x1 = (codes[o + 1] as number) ^ q1;
      const x2 = (codes[o + 2] as number) ^ q2;
      const x3 = (codes[o + 3] as number) ^ q3;
      const d =
        (t[x0 & 0xffff] as number) + (t[x0 >>> 16] as number) +
        (t[x1 & 0xffff] as number) + (t[x1 >>> 16] as number) +
        (t[x2 & 0xffff] as number) + (t[x2 >>> 16] as number) +
        (t[x3 & 0xffff] as number) + (t[x3 >>> 16] as number);
      dist[r] = d;
      hist[d] = (hist[d] as number) + 1;
    }
  }

  /** Any word count; 64 and 256 bits included (see distances128 for the common case). */
  private distancesAny(q: Uint32Array, label: number | undefined): void {
    const { words, codes, dist, hist, labels } = this;
    const t = POP16;
    const n = this.n;
    for (let r = 0, o = 0; r < n; r++, o += words) {
      // Rows outside the label filter get 0xffff, above any real distance.
      if (label !== undefined && labels[r] !== label) {
        dist[r] = 0xffff;
        continue;
      }
      let d = 0;
      for (let w = 0; w < words; w++) {
        const x = (codes[o + w] as number) ^ (q[w] as number);
        d += (t[x & 0xffff] as number) + (t[x >>> 16] as number);
      }
      dist[r] = d;
      hist[d] = (hist[d] as number) + 1;
    }
  }

  /** Doubling keeps amortised appends O(1) and re-allocations (page faults) rare. */
  private grow(): void {
    const cap = this.ids.length * 2;
    const codes = new Uint32Array(cap * this.words);
    codes.set(this.codes);
    this.codes = codes;
    const ids = new Uint32Array(cap);
    ids.set(this.ids);
    this.ids = ids;
    const labels = new Int32Array(cap);
    labels.set(this.labels);
    this.labels = labels;
    this.dist = new Uint16Array(cap);
    this.within = new Uint32Array(cap);
    const sketches = new Int8Array(cap * this.sketchDim);
    sketches.set(this.sketches);
    this.sketches = sketches;
    const scales = new Float32Array(cap);
    scales.set(this.scales);
    this.scales = scales;
    const norms = new Float32Array(cap);
    norms.set(this.norms);
    this.norms = norms;
  }
}

/**
 * Recall@k that counts ties as hits: with many equal Hamming distances, any item at or below the
 * exact k-th distance is as good as the one the exact scan happened to list (ties broken by id).
 * `found` are the approximate result's distances, `exact` the exact top-k distances (ascending).
 */
export function recallWithTies(found: readonly number[], exact: readonly number[], k: number): number {
  if (exact.length === 0) return 1;
  const kth = exact[Math.min(k, exact.length) - 1] as number;
  let hits = 0;
  for (let i = 0; i < Math.min(k, found.length); i++) if ((found[i] as number) <= kth) hits++;
  return hits / Math.min(k, exact.length);
}
