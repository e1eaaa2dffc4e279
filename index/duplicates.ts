/**
 * Near-duplicates: pairs of images whose full fc7 embeddings are within a distance calibrated on
 * transformed copies (crop-and-resize, brightness, JPEG re-encoding: `sightline eval retrieval`,
 * near_dup.threshold_relative), joined into groups with union-find.
 *
 * The distance is relative to the pair's mean embedding norm, so one default serves models whose
 * fc7 scales differ. It used to be a Hamming radius on the codes first; with codes that put a whole
 * class on one hash center, that radius grouped different trousers and missed a resized copy whose
 * code was 10 bits away. Candidates now come from the search itself (Hamming pool, sketches, exact
 * re-rank: search.ts), the k nearest images of every image, so a copy is found wherever its code is.
 * Cost: one search per image (a few ms each; minutes at 60k images).
 */
import { IndexParamError } from './errors.js';
import { decodeHalf } from './float16.js';
import { halfNorm, type NearDuplicateTest, nearDuplicateTest } from './near-dup.js';
import { search, type SearchContext } from './search.js';

export { DEFAULT_NEAR_DUP_RELATIVE } from './near-dup.js';

export interface DuplicateOptions {
  /** Max embedding distance relative to the pair's mean norm, in (0, 2]; default DEFAULT_NEAR_DUP_RELATIVE (near-dup.ts). */
  maxRelativeDistance?: number;
  /** Absolute Euclidean threshold instead of the relative one. */
  maxDistance?: number;
  /** Nearest images examined per image, integer in [1, 99]; default 10. */
  neighbours?: number;
}

export interface DuplicatePair {
  a: number;
  b: number;
  hamming: number;
  distance: number;
}

export interface DuplicateGroup {
  /** Sorted ascending; the first is the oldest image. */
  ids: number[];
  pairs: DuplicatePair[];
}

export function findDuplicates(ctx: SearchContext, opts: DuplicateOptions = {}): DuplicateGroup[] {
  const finder = new DuplicateFinder(ctx, opts);
  finder.examine(Infinity);
  return finder.groups();
}

/**
 * The same groups without holding the thread: images are examined for about `sliceMs` at a time,
 * yielding to the event loop in between, so a server keeps answering while a large collection is
 * examined (a search costs ~15 ms on a loaded 2-core machine: a fixed count of 32 images held the
 * loop for a second). Ids are taken at the start; images deleted meanwhile are skipped, images added
 * meanwhile are found only as neighbours.
 */
export async function findDuplicatesAsync(ctx: SearchContext, opts: DuplicateOptions = {}, sliceMs = 10): Promise<DuplicateGroup[]> {
  const finder = new DuplicateFinder(ctx, opts);
  for (;;) {
    const until = performance.now() + sliceMs;
    let done = false;
    while (!done && performance.now() < until) done = finder.examine(1);
    if (done) return finder.groups();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** One search per image (its k nearest by the exact re-rank), pairs within the threshold, union-find. */
class DuplicateFinder {
  private readonly within: NearDuplicateTest;
  private readonly neighbours: number;
  private readonly ids: number[];
  private next = 0;
  private readonly norms = new Map<number, number>();
  private readonly uf = new UnionFind();
  private readonly pairs: DuplicatePair[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly ctx: SearchContext,
    opts: DuplicateOptions,
  ) {
    this.within = nearDuplicateTest(opts);
    this.neighbours = opts.neighbours ?? 10;
    if (!Number.isInteger(this.neighbours) || this.neighbours < 1 || this.neighbours > 99) throw new IndexParamError('neighbours', this.neighbours, 'an integer in [1, 99]');
    this.ids = Array.from({ length: ctx.matrix.size }, (_, r) => ctx.matrix.idAt(r));
  }

  private normOf(id: number): number {
    let n = this.norms.get(id);
    if (n === undefined) this.norms.set(id, (n = halfNorm(this.ctx.store.embeddingHalves(id) ?? new Uint16Array(0))));
    return n;
  }

  /** Examines up to `count` more images; true when every image has been examined. */
  examine(count: number): boolean {
    const { matrix, store } = this.ctx;
    const stop = Math.min(this.ids.length, this.next + count);
    for (; this.next < stop; this.next++) {
      const id = this.ids[this.next] as number;
      const row = matrix.rowOfId(id);
      const halves = row === undefined ? undefined : store.embeddingHalves(id);
      if (row === undefined || !halves) continue;
      this.norms.set(id, halfNorm(halves));
      const res = search(this.ctx, { code: matrix.codeAt(row).slice(), embedding: decodeHalf(halves) }, { k: this.neighbours + 1 });
      for (const h of res.hits) {
        if (h.id === id || h.distance === null) continue;
        const a = Math.min(id, h.id);
        const b = Math.max(id, h.id);
        const key = `${a}:${b}`;
        if (this.seen.has(key) || !this.within(h.distance, this.normOf(id), this.normOf(h.id))) continue;
        this.seen.add(key);
        this.pairs.push({ a, b, hamming: h.hamming, distance: h.distance });
        this.uf.union(a, b);
      }
    }
    return this.next >= this.ids.length;
  }

  groups(): DuplicateGroup[] {
    return groupPairs(this.pairs, this.uf);
  }
}

export class UnionFind {
  private readonly parent = new Map<number, number>();
  find(x: number): number {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root) as number;
    let cur = x;
    while (cur !== root) {
      const next = this.parent.get(cur) ?? root;
      this.parent.set(cur, root);
      cur = next;
    }
    return root;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // The smaller id becomes the root, so a group is named after its oldest image.
    if (ra < rb) this.parent.set(rb, ra);
    else this.parent.set(ra, rb);
    if (!this.parent.has(ra)) this.parent.set(ra, ra);
    if (!this.parent.has(rb)) this.parent.set(rb, rb);
  }
}

export function groupPairs(pairs: DuplicatePair[], uf: UnionFind): DuplicateGroup[] {
  const groups = new Map<number, DuplicateGroup>();
  for (const p of pairs) {
    const root = uf.find(p.a);
    let g = groups.get(root);
    if (!g) groups.set(root, (g = { ids: [], pairs: [] }));
    g.pairs.push(p);
  }
  for (const g of groups.values()) {
    g.ids = [...new Set(g.pairs.flatMap((p) => [p.a, p.b]))].sort((x, y) => x - y);
    g.pairs.sort((x, y) => x.a - y.a || x.b - y.b);
  }
  return [...groups.values()].sort((x, y) => y.ids.length - x.ids.length || (x.ids[0] as number) - (y.ids[0] as number));
}
