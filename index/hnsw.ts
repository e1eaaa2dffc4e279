/**
 * HNSW over binary codes with hnswlib-node. hnswlib has no Hamming space, so codes are indexed as
 * ±1 float vectors in the 'l2' space: for a, b ∈ {−1, +1}^B each differing coordinate contributes
 * (±2)² = 4 and each equal one 0, so squared L2 = 4 × Hamming distance and the L2 order is the
 * Hamming order (and distances/4 are exact integers, float32 represents them exactly).
 *
 * Each distinct code is one graph node, and a node expands to the images that share the code.
 * Why: the default codes model pulls every image of a class toward one hash center, so thousands
 * of images can have exactly the same code. Indexed one node per image, such a class is a plateau
 * of identical points: hnswlib's pruning keeps few links into it and its layer-0 search stops as
 * soon as no candidate is strictly closer, so it got stuck (recall@10 0.80 on the bundled model's
 * 60k codes). Distinct codes have no plateaus, and the graph is smaller.
 *
 * Node labels are slot numbers handed out by a counter, never image ids. Removing the last image
 * of a code markDeletes its node; with allowReplaceDeleted the next new code reuses that memory,
 * so a churning collection does not grow the file forever. Capacity doubles with resizeIndex.
 * Only the graph is saved; the slot → images table is rebuilt at load from each node's vector
 * and the caller's rows, which also proves the file matches them (see `load`).
 */
import hnswlib from 'hnswlib-node';
import { packSigns, toPlusMinusOne } from './codes.js';
import { IndexParamError } from './errors.js';

const { HierarchicalNSW } = hnswlib;

/** Smallest allocation; also what doubling starts from (doubling 0 would stay 0). */
const MIN_CAPACITY = 64;

export interface HnswParams {
  /** Graph degree (links per node per layer; layer 0 has 2M). */
  M: number;
  /** Candidate list size while inserting; higher = better graph, slower build. */
  efConstruction: number;
  /** Candidate list size while searching; the effective value is max(efSearch, k). */
  efSearch: number;
}

/**
 * efSearch 128: on 1M center-heavy synthetic codes (309k nodes) recall@10 was 0.945 / 0.960 / 0.978 at
 * ef 64 / 128 / 256 for 0.28 / 0.33 / 0.61 ms per query; the served search asks for k × oversample =
 * 100 candidates, so it runs at max(efSearch, 100) anyway.
 */
export const DEFAULT_HNSW: HnswParams = { M: 16, efConstruction: 100, efSearch: 128 };

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

/** What `load` needs from the source of truth: every image id with its code. */
export interface CodeRows {
  readonly size: number;
  idAt(row: number): number;
  codeAt(row: number): Uint8Array;
}

/** A Map key for a packed code (one char per byte). */
function codeKey(code: Uint8Array): string {
  return String.fromCharCode.apply(null, code as unknown as number[]);
}

/** Ascending ids of one code; most codes have one image, so that case stays a plain number. */
type Members = number | number[];

export class CodeHnsw {
  private readonly vec: number[];
  private readonly slotOf = new Map<string, number>();
  private readonly members = new Map<number, Members>();
  private images = 0;

  private constructor(
    private readonly index: InstanceType<typeof HierarchicalNSW>,
    readonly bits: number,
    readonly params: HnswParams,
    private nextSlot: number,
  ) {
    this.vec = new Array<number>(bits).fill(0);
    index.setEf(params.efSearch);
  }

  static create(bits: number, params: HnswParams, capacity: number, seed = 100): CodeHnsw {
    const index = new HierarchicalNSW('l2', bits);
    index.initIndex({ maxElements: Math.max(MIN_CAPACITY, capacity), m: params.M, efConstruction: params.efConstruction, randomSeed: seed, allowReplaceDeleted: true });
    return new CodeHnsw(index, bits, params, 0);
  }

  /**
   * Reads a saved graph and attaches `rows` to its nodes by code. Returns why the file does not
   * match the rows (a code without a node, a node without images) instead of a graph; throws
   * whatever hnswlib throws on a truncated or unreadable file. Callers rebuild in both cases.
   */
  static load(path: string, bits: number, params: HnswParams, rows: CodeRows): CodeHnsw | string {
    const index = new HierarchicalNSW('l2', bits);
    index.readIndexSync(path, true);
    // A saved empty graph loads with capacity 0 (hnswlib records the element count, not the
    // allocation), and growing from 0 fails or corrupts its heap: give it the minimum capacity.
    if (index.getMaxElements() < MIN_CAPACITY) index.resizeIndex(Math.max(MIN_CAPACITY, index.getCurrentCount()));
    const labels = index.getIdsList();
    const graph = new CodeHnsw(index, bits, params, labels.reduce((m, l) => Math.max(m, l + 1), 0));
    const code = new Uint8Array(bits >>> 3);
    for (const label of labels) {
      let point: number[];
      try {
        point = index.getPoint(label);
      } catch {
        continue; // a deleted node (getIdsList lists those too)
      }
      const key = codeKey(packSigns(point, code));
      if (graph.slotOf.has(key)) return `index holds the code of node ${label} twice`;
      graph.slotOf.set(key, label);
    }
    for (let r = 0; r < rows.size; r++) {
      const slot = graph.slotOf.get(codeKey(rows.codeAt(r)));
      if (slot === undefined) return `index has no node for the code of image ${rows.idAt(r)}`;
      graph.attach(slot, rows.idAt(r));
    }
    if (graph.members.size !== graph.slotOf.size) return `index holds ${graph.slotOf.size - graph.members.size} codes that no image has`;
    return graph;
  }

  /** Live (not deleted) images. */
  get size(): number {
    return this.images;
  }

  /** Distinct codes, i.e. live graph nodes. */
  get codes(): number {
    return this.slotOf.size;
  }

  /** Node slots used, deleted ones included (what the file's header records). */
  get slots(): number {
    return this.index.getCurrentCount();
  }

  get capacity(): number {
    return this.index.getMaxElements();
  }

  /**
   * Grows the graph so that `newCodes` more distinct codes fit without another allocation. The
   * catalog calls it before committing rows, so an allocation failure leaves nothing written.
   * Deleted nodes are reused (allowReplaceDeleted), so only live codes count against capacity.
   */
  reserve(newCodes: number): void {
    const need = this.slotOf.size + newCodes;
    let cap = Math.max(MIN_CAPACITY, this.index.getMaxElements());
    if (need <= this.index.getMaxElements()) return;
    while (cap < need) cap *= 2;
    this.index.resizeIndex(cap);
  }

  /** Whether `code` already has a node (adding it costs no capacity). */
  hasCode(code: Uint8Array): boolean {
    return this.slotOf.has(codeKey(code));
  }

  /** `id` must not be present already (the catalog guarantees it). */
  add(id: number, code: Uint8Array): void {
    const key = codeKey(code);
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      this.reserve(1);
      slot = this.nextSlot++;
      this.index.addPoint(toPlusMinusOne(code, this.bits, this.vec), slot, true);
      this.slotOf.set(key, slot);
    }
    this.attach(slot, id);
  }

  /** Removes image `id`, stored with `code`; false when it was not there. */
  remove(id: number, code: Uint8Array): boolean {
    const key = codeKey(code);
    const slot = this.slotOf.get(key);
    const m = slot === undefined ? undefined : this.members.get(slot);
    if (slot === undefined || m === undefined) return false;
    if (typeof m === 'number' || m.length === 1) {
      if ((typeof m === 'number' ? m : m[0]) !== id) return false;
      this.index.markDelete(slot);
      this.slotOf.delete(key);
      this.members.delete(slot);
    } else {
      const at = lowerBound(m, id);
      if (m[at] !== id) return false;
      m.splice(at, 1);
    }
    this.images--;
    return true;
  }

  /**
   * k nearest images by Hamming distance, ties by id (the exact scan's order within what the graph
   * found). Asks the graph for k nodes, enough because every node has at least one image; ef is
   * raised to that for the call, because hnswlib returns at most ef candidates from layer 0.
   * `filter` sees image ids; a node passes when any of its images does.
   */
  search(code: Uint8Array, k: number, filter?: (id: number) => boolean): AnnHits {
    const n = Math.min(k, this.slotOf.size, this.index.getMaxElements());
    if (n <= 0) return { ids: [], hamming: [] };
    this.index.setEf(Math.max(this.params.efSearch, n));
    // hnswlib may ask about a node more than once per query, and a node can hold a whole class.
    const seen = new Map<number, boolean>();
    const nodeFilter =
      filter &&
      ((slot: number): boolean => {
        let ok = seen.get(slot);
        if (ok === undefined) seen.set(slot, (ok = this.idsOf(slot).some(filter)));
        return ok;
      });
    const res = this.index.searchKnn(toPlusMinusOne(code, this.bits, this.vec), n, nodeFilter);
    const order = res.neighbors.map((slot, i) => ({ slot, d: Math.round((res.distances[i] as number) / 4) })).sort((a, b) => a.d - b.d);
    const ids: number[] = [];
    const hamming: number[] = [];
    // Nodes at the same distance are merged by id; from each, at most the ids still needed are read,
    // because a shared code can hold a whole class (tens of thousands of ids at 1M images).
    for (let i = 0; i < order.length && ids.length < k; ) {
      const d = (order[i] as { d: number }).d;
      const need = k - ids.length;
      const group: number[] = [];
      for (; i < order.length && (order[i] as { d: number }).d === d; i++) {
        let taken = 0;
        for (const id of this.idsOf((order[i] as { slot: number }).slot)) {
          if (filter && !filter(id)) continue;
          group.push(id);
          if (++taken >= need) break;
        }
      }
      group.sort((a, b) => a - b);
      for (const id of group.slice(0, need)) {
        ids.push(id);
        hamming.push(d);
      }
    }
    return { ids, hamming };
  }

  /**
   * Every image of the nearest nodes until at least `minImages` images are in (default k), plus every
   * other found node within `marginBits` of the last included distance: whole codes, never a cut
   * inside one (unordered; the search ranks the pool by sketch). The graph is asked for k nodes
   * only, so a larger `minImages` or margin costs no graph search: it reads further down the nodes
   * already found. Nodes the graph did not return are not included.
   */
  pool(code: Uint8Array, k: number, filter?: (id: number) => boolean, minImages = k, marginBits = 0): AnnHits {
    const n = Math.min(k, this.slotOf.size, this.index.getMaxElements());
    if (n <= 0) return { ids: [], hamming: [] };
    this.index.setEf(Math.max(this.params.efSearch, n));
    const nodeFilter = filter && ((slot: number): boolean => this.idsOf(slot).some(filter));
    const res = this.index.searchKnn(toPlusMinusOne(code, this.bits, this.vec), n, nodeFilter);
    const order = res.neighbors.map((slot, i) => ({ slot, d: Math.round((res.distances[i] as number) / 4) })).sort((a, b) => a.d - b.d);
    const ids: number[] = [];
    const hamming: number[] = [];
    const enough = Math.max(k, minImages);
    let limit = Infinity;
    for (const { slot, d } of order) {
      if (d > limit) break;
      for (const id of this.idsOf(slot)) {
        if (filter && !filter(id)) continue;
        ids.push(id);
        hamming.push(d);
      }
      if (limit === Infinity && ids.length >= enough) limit = d + marginBits;
    }
    return { ids, hamming };
  }

  /** Whether image `id` is attached to a node whose vector is exactly the ±1 expansion of `code`. */
  holds(id: number, code: Uint8Array): boolean {
    const slot = this.slotOf.get(codeKey(code));
    if (slot === undefined || !this.idsOf(slot).includes(id)) return false;
    let point: number[];
    try {
      point = this.index.getPoint(slot);
    } catch {
      return false;
    }
    const want = toPlusMinusOne(code, this.bits, this.vec);
    return point.length === this.bits && point.every((v, i) => v === want[i]);
  }

  writeSync(path: string): void {
    this.index.writeIndexSync(path);
  }

  private idsOf(slot: number): readonly number[] {
    const m = this.members.get(slot);
    return m === undefined ? [] : typeof m === 'number' ? [m] : m;
  }

  private attach(slot: number, id: number): void {
    const m = this.members.get(slot);
    if (m === undefined) this.members.set(slot, id);
    else if (typeof m === 'number') this.members.set(slot, m < id ? [m, id] : [id, m]);
    else m.splice(lowerBound(m, id), 0, id);
    this.images++;
  }
}

/** First index whose value is ≥ x in an ascending array. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
