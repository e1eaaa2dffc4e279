/**
 * HNSW over binary codes with hnswlib-node. hnswlib has no Hamming space, so codes are indexed as
 * ±1 float vectors in the 'l2' space: for a, b ∈ {−1, +1}^B each differing coordinate contributes
 * (±2)² = 4 and each equal one 0, so squared L2 = 4 × Hamming distance and the L2 order is the
 * Hamming order (and distances/4 are exact integers, float32 represents them exactly).
 *
 * Labels are image ids. Deletes use markDelete; with allowReplaceDeleted the next add reuses a
 * deleted slot, so a churning collection does not grow the file forever. Capacity doubles with
 * resizeIndex when full. hnswlib-node takes plain number[] only, so one array per instance is reused.
 */
import hnswlib from 'hnswlib-node';
import { toPlusMinusOne } from './codes.js';
import { IndexParamError } from './errors.js';

const { HierarchicalNSW } = hnswlib;

export interface HnswParams {
  /** Graph degree (links per node per layer; layer 0 has 2M). */
  M: number;
  /** Candidate list size while inserting; higher = better graph, slower build. */
  efConstruction: number;
  /** Candidate list size while searching; the effective value is max(efSearch, k). */
  efSearch: number;
}

export const DEFAULT_HNSW: HnswParams = { M: 16, efConstruction: 100, efSearch: 64 };

export function validateHnswParams(p: Partial<HnswParams>): HnswParams {
  const out: HnswParams = { M: p.M ?? DEFAULT_HNSW.M, efConstruction: p.efConstruction ?? DEFAULT_HNSW.efConstruction, efSearch: p.efSearch ?? DEFAULT_HNSW.efSearch };
  const check = (name: keyof HnswParams, min: number, max: number): void => {
    const v = out[name];
    if (!Number.isInteger(v) || v < min || v > max) throw new IndexParamError(name, v, `an integer in [${min}, ${max}]`);
  };
  check('M', 2, 100);
  check('efConstruction', 4, 4096);
  check('efSearch', 1, 4096);
  return out;
}

export interface AnnHits {
  ids: number[];
  hamming: number[];
}

export class CodeHnsw {
  private readonly vec: number[];
  private live: number;

  private constructor(
    private readonly index: InstanceType<typeof HierarchicalNSW>,
    readonly bits: number,
    readonly params: HnswParams,
    live: number,
  ) {
    this.vec = new Array<number>(bits).fill(0);
    this.live = live;
    index.setEf(params.efSearch);
  }

  static create(bits: number, params: HnswParams, capacity: number, seed = 100): CodeHnsw {
    const index = new HierarchicalNSW('l2', bits);
    index.initIndex({ maxElements: Math.max(64, capacity), m: params.M, efConstruction: params.efConstruction, randomSeed: seed, allowReplaceDeleted: true });
    return new CodeHnsw(index, bits, params, 0);
  }

  /** Throws whatever hnswlib throws on a truncated or unreadable file; callers rebuild then. */
  static load(path: string, bits: number, params: HnswParams, live: number): CodeHnsw {
    const index = new HierarchicalNSW('l2', bits);
    index.readIndexSync(path, true);
    return new CodeHnsw(index, bits, params, live);
  }

  /** Live (not deleted) elements. */
  get size(): number {
    return this.live;
  }

  /** Slots used, deleted ones included (what the file's header records). */
  get slots(): number {
    return this.index.getCurrentCount();
  }

  get capacity(): number {
    return this.index.getMaxElements();
  }

  /** `id` must not be live already (the catalog guarantees it). */
  add(id: number, code: Uint8Array): void {
    if (this.live >= this.index.getMaxElements()) this.index.resizeIndex(this.index.getMaxElements() * 2);
    this.index.addPoint(toPlusMinusOne(code, this.bits, this.vec), id, true);
    this.live++;
  }

  remove(id: number): void {
    this.index.markDelete(id);
    this.live--;
  }

  /**
   * k nearest by Hamming distance. ef is raised to k for the call, because hnswlib returns at most
   * ef candidates from layer 0. May return fewer than k when deletions disconnect parts of the graph.
   */
  search(code: Uint8Array, k: number, filter?: (id: number) => boolean): AnnHits {
    const n = Math.min(k, this.live, this.index.getMaxElements());
    if (n <= 0) return { ids: [], hamming: [] };
    const ef = Math.max(this.params.efSearch, n);
    this.index.setEf(ef);
    const res = this.index.searchKnn(toPlusMinusOne(code, this.bits, this.vec), n, filter);
    return { ids: res.neighbors, hamming: res.distances.map((d) => Math.round(d / 4)) };
  }

  /** Whether the stored vector of `id` is exactly the ±1 expansion of `code` (spot checks at open). */
  holds(id: number, code: Uint8Array): boolean {
    let point: number[];
    try {
      point = this.index.getPoint(id);
    } catch {
      return false;
    }
    const want = toPlusMinusOne(code, this.bits, this.vec);
    return point.length === this.bits && point.every((v, i) => v === want[i]);
  }

  writeSync(path: string): void {
    this.index.writeIndexSync(path);
  }
}
