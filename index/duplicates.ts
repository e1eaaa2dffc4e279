/**
 * Near-duplicate groups: pairs within a small Hamming radius whose embeddings are also close,
 * joined into groups with union-find.
 *
 * Pairs are found with multi-index hashing instead of an O(n²) scan: split the B bits into
 * radius + 1 chunks; by pigeonhole two codes within the radius agree exactly on at least one chunk,
 * so only rows sharing a chunk value are compared. A pair is compared once, in the first chunk
 * where the two rows agree.
 */
import { popcount32 } from './codes.js';
import { IndexParamError } from './errors.js';
import { halfTable } from './float16.js';
import type { CodeMatrix } from './scan.js';

export interface DuplicateOptions {
  /** Max Hamming distance; default 3 bits per 128 (round(3·B/128)), integer in [0, B/8]. */
  radius?: number;
  /** Max embedding distance relative to the pair's mean norm, in (0, 2]; default 0.1. */
  maxRelativeDistance?: number;
  /** Absolute Euclidean threshold instead of the relative one. */
  maxDistance?: number;
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

export function defaultRadius(bits: number): number {
  return Math.max(1, Math.round((3 * bits) / 128));
}

/** Returns the float16 embedding of `id` (SQLite lookups in the catalog). */
export type EmbeddingSource = (id: number) => Uint16Array | undefined;

export function findDuplicates(matrix: CodeMatrix, embeddingOf: EmbeddingSource, opts: DuplicateOptions = {}): DuplicateGroup[] {
  const { bits, words } = matrix;
  const radius = opts.radius ?? defaultRadius(bits);
  if (!Number.isInteger(radius) || radius < 0 || radius > bits / 8) throw new IndexParamError('radius', radius, `an integer in [0, ${bits / 8}]`);
  const within = distanceTest(opts);
  const ids: number[] = [];
  const offs: number[] = [];
  const codes: Uint32Array[] = [];
  matrix.forEach((id, w, off) => {
    ids.push(id);
    offs.push(off);
    codes.push(w);
  });
  const m = radius + 1;
  const bounds = Array.from({ length: m + 1 }, (_, j) => Math.floor((j * bits) / m));
  const keys = ids.map((_, r) => bounds.slice(0, m).map((s, j) => chunkKey(codes[r] as Uint32Array, offs[r] as number, s, (bounds[j + 1] as number) - s)));
  const emb = new EmbeddingCache(embeddingOf);
  const uf = new UnionFind();
  const pairs: DuplicatePair[] = [];
  for (let j = 0; j < m; j++) {
    const buckets = new Map<number | string, number[]>();
    for (let r = 0; r < ids.length; r++) {
      const k = (keys[r] as (number | string)[])[j] as number | string;
      const b = buckets.get(k);
      if (b) b.push(r);
      else buckets.set(k, [r]);
    }
    for (const rows of buckets.values()) {
      for (let x = 0; x < rows.length; x++) {
        for (let y = x + 1; y < rows.length; y++) {
          const ra = rows[x] as number;
          const rb = rows[y] as number;
          if (agreesBefore(keys[ra] as (number | string)[], keys[rb] as (number | string)[], j)) continue;
          let h = 0;
          for (let w = 0; w < words && h <= radius; w++) {
            h += popcount32(((codes[ra] as Uint32Array)[(offs[ra] as number) + w] as number) ^ ((codes[rb] as Uint32Array)[(offs[rb] as number) + w] as number));
          }
          if (h > radius) continue;
          const a = Math.min(ids[ra] as number, ids[rb] as number);
          const b = Math.max(ids[ra] as number, ids[rb] as number);
          const d = emb.distance(a, b);
          if (d === undefined || !within(d.distance, d.meanNorm)) continue;
          pairs.push({ a, b, hamming: h, distance: d.distance });
          uf.union(a, b);
        }
      }
    }
  }
  return groupPairs(pairs, uf);
}

function distanceTest(opts: DuplicateOptions): (d: number, meanNorm: number) => boolean {
  if (opts.maxDistance !== undefined) {
    const t = opts.maxDistance;
    if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw new IndexParamError('maxDistance', t, 'a finite number ≥ 0');
    return (d) => d <= t;
  }
  const rel = opts.maxRelativeDistance ?? 0.1;
  if (typeof rel !== 'number' || !(rel > 0 && rel <= 2)) throw new IndexParamError('maxRelativeDistance', rel, 'a number in (0, 2]');
  return (d, meanNorm) => d <= rel * meanNorm;
}

/** Bits [start, start + len) of a row as a number (≤ 32 bits) or a string of 32-bit pieces. */
function chunkKey(words: Uint32Array, off: number, start: number, len: number): number | string {
  if (len <= 32) return getBits(words, off, start, len);
  const parts: number[] = [];
  for (let s = 0; s < len; s += 32) parts.push(getBits(words, off, start + s, Math.min(32, len - s)));
  return parts.join(',');
}

function getBits(words: Uint32Array, off: number, start: number, len: number): number {
  const w = start >>> 5;
  const sh = start & 31;
  let v = (words[off + w] as number) >>> sh;
  if (sh + len > 32) v |= (words[off + w + 1] as number) << (32 - sh);
  return (len === 32 ? v : v & ((1 << len) - 1)) >>> 0;
}

function agreesBefore(a: (number | string)[], b: (number | string)[], j: number): boolean {
  for (let i = 0; i < j; i++) if (a[i] === b[i]) return true;
  return false;
}

/** Decoded embeddings of recently compared ids, bounded so a big group cannot fill the heap. */
class EmbeddingCache {
  private readonly cache = new Map<number, { v: Uint16Array; norm: number }>();
  constructor(private readonly source: EmbeddingSource) {}

  private load(id: number): { v: Uint16Array; norm: number } | undefined {
    let e = this.cache.get(id);
    if (e) return e;
    const v = this.source(id);
    if (!v) return undefined;
    const t = halfTable();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += (t[v[i] as number] as number) ** 2;
    e = { v: new Uint16Array(v), norm: Math.sqrt(s) };
    if (this.cache.size >= 4096) this.cache.clear();
    this.cache.set(id, e);
    return e;
  }

  distance(a: number, b: number): { distance: number; meanNorm: number } | undefined {
    const ea = this.load(a);
    const eb = this.load(b);
    if (!ea || !eb) return undefined;
    const t = halfTable();
    let s = 0;
    for (let i = 0; i < ea.v.length; i++) {
      const d = (t[ea.v[i] as number] as number) - (t[eb.v[i] as number] as number);
      s += d * d;
    }
    return { distance: Math.sqrt(s), meanNorm: (ea.norm + eb.norm) / 2 };
  }
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
