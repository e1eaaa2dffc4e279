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
import { halfNorm, nearDuplicateTest } from './near-dup.js';
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
  const within = nearDuplicateTest(opts);
  const neighbours = opts.neighbours ?? 10;
  if (!Number.isInteger(neighbours) || neighbours < 1 || neighbours > 99) throw new IndexParamError('neighbours', neighbours, 'an integer in [1, 99]');
  const { matrix, store } = ctx;
  const norms = new Map<number, number>();
  const normOf = (id: number): number => {
    let n = norms.get(id);
    if (n === undefined) norms.set(id, (n = halfNorm(store.embeddingHalves(id) ?? new Uint16Array(0))));
    return n;
  };
  const uf = new UnionFind();
  const pairs: DuplicatePair[] = [];
  const seen = new Set<string>();
  for (let r = 0; r < matrix.size; r++) {
    const id = matrix.idAt(r);
    const halves = store.embeddingHalves(id);
    if (!halves) continue;
    norms.set(id, halfNorm(halves));
    const res = search(ctx, { code: matrix.codeAt(r).slice(), embedding: decodeHalf(halves) }, { k: neighbours + 1 });
    for (const h of res.hits) {
      if (h.id === id || h.distance === null) continue;
      const a = Math.min(id, h.id);
      const b = Math.max(id, h.id);
      const key = `${a}:${b}`;
      if (seen.has(key) || !within(h.distance, normOf(id), normOf(h.id))) continue;
      seen.add(key);
      pairs.push({ a, b, hamming: h.hamming, distance: h.distance });
      uf.union(a, b);
    }
  }
  return groupPairs(pairs, uf);
}

class UnionFind {
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

function groupPairs(pairs: DuplicatePair[], uf: UnionFind): DuplicateGroup[] {
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
