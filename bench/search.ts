/**
 * `npm run bench -- search [--size 60000] [--queries 300] [--rounds 3] [--dir DIR] [--baseline ROOT]`
 *
 * End-to-end `Catalog.search` (k = 10, oversample 10: stage 1, sketch narrowing, SQLite re-rank,
 * hits) on a real catalog shaped like the bundled model's: 128-bit codes around 10 class centres,
 * 60 % of images exactly on their centre (so one code holds ~6,000 images at 60k, the pool the
 * sketches rank), the rest 1–6 bits off; 4096-d non-negative embeddings around 10 class means.
 * Queries are stored images' codes with their embedding slightly perturbed (an edited copy).
 *
 * `--baseline ROOT` also times another build's index module (`ROOT/index/index.js`, e.g. the
 * `dist/` of an earlier commit), opened read-only on the same catalog, alternating with this one
 * round by round (the machine is shared: compare within a run), checks that both return the
 * same hits, and prints the ratios. `--dir DIR` keeps the catalog for the next run (building 60k
 * images takes minutes), or points at an existing catalog, real ones included. Reports wall-clock p50/p90 and CPU time per query (process.cpuUsage,
 * less sensitive to other processes than wall time).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Catalog, type NewImage, type SearchResult } from '../index/index.js';
import { rng } from './rng.js';

const DIM = 4096;

async function build(cat: Catalog, n: number): Promise<void> {
  const rand = rng(11);
  const means = Array.from({ length: 10 }, () => Float32Array.from({ length: DIM }, () => Math.max(0, rand() * 4 - 1.5)));
  const centres = Array.from({ length: 10 }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)));
  // Rows a kept catalog already holds are generated again but not added, so that a catalog grown
  // in steps holds the same images as one built at once (and no copies of its first rows).
  const have = cat.matrix.size;
  for (let s = 0; s < n; s += 500) {
    const batch: NewImage[] = [];
    for (let i = s; i < Math.min(n, s + 500); i++) {
      const c = i % 10;
      const code = (centres[c] as Uint8Array).slice();
      if (rand() >= 0.6) {
        for (let f = 1 + Math.floor(rand() * 6); f > 0; f--) {
          const b = Math.floor(rand() * 128);
          code[b >>> 3] = (code[b >>> 3] as number) ^ (1 << (b & 7));
        }
      }
      const mean = means[c] as Float32Array;
      const embedding = mean.map((v) => Math.max(0, v + (rand() - 0.5) * 3));
      const labels = [{ label: `class-${c}`, probability: 0.9 }];
      batch.push({ source: `bench/${i}.png`, sha256: (i + 1).toString(16).padStart(64, '0'), width: 28, height: 28, labels, code, embedding });
    }
    const fresh = batch.slice(Math.max(0, have - s));
    if (fresh.length > 0) cat.addMany(fresh);
    if (s % 10_000 === 0) console.error(`  built ${s}/${n}`);
  }
  cat.flush();
}

/** The part of a Catalog this bench calls (an older build's class has the same shape). */
interface Searcher {
  search(q: { code: Uint8Array; embedding: Float32Array }, o: { k: number }): SearchResult;
  close(): void;
}

interface Timing {
  wall: number[];
  cpu: number[];
}

function timeAll(cat: Searcher, queries: { code: Uint8Array; embedding: Float32Array }[], into: Timing): SearchResult[] {
  const out: SearchResult[] = [];
  for (const q of queries) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out.push(cat.search(q, { k: 10 }));
    into.wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    into.cpu.push((c.user + c.system) / 1000);
  }
  return out;
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number;
const same = (a: SearchResult, b: SearchResult): boolean =>
  a.hits.length === b.hits.length && a.hits.every((h, i) => h.id === b.hits[i]?.id && h.distance === b.hits[i]?.distance && h.nearDuplicate === b.hits[i]?.nearDuplicate);

export async function run(args: string[]): Promise<void> {
  const flag = (name: string, def?: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
  };
  const n = Number(flag('--size', '60000'));
  const nq = Number(flag('--queries', '300'));
  const rounds = Number(flag('--rounds', '3'));
  if (![n, nq, rounds].every((v) => Number.isInteger(v) && v > 0)) throw new Error('bench search: --size, --queries and --rounds must be positive integers');
  const keep = flag('--dir');
  const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'sightline-bench-search-'));
  const fresh = !existsSync(join(dir, 'sightline.db'));
  // A kept catalog may be a real one (e.g. eval retrieval's, copied): open it whatever made it.
  const cat = await Catalog.open(dir, fresh ? { bits: 128, modelHash: 'bench', codesHash: 'bench', saveDelayMs: null } : { saveDelayMs: null });
  try {
    if (cat.matrix.size < n) {
      const t0 = performance.now();
      await build(cat, n);
      console.error(`  built ${n} images in ${((performance.now() - t0) / 1000).toFixed(0)} s${fresh ? '' : ' (added to the kept catalog)'}`);
    }
    const impls: [string, Searcher][] = [['this build', cat]];
    const base = flag('--baseline');
    if (base !== undefined) {
      const mod = (await import(resolve(base, 'index/index.js'))) as { Catalog: { open(d: string, o: object): Promise<Searcher> } };
      impls.push([`baseline ${base}`, await mod.Catalog.open(dir, { readOnly: true })]);
    }
    const rand = rng(5);
    const queries = Array.from({ length: nq }, () => {
      const id = 1 + Math.floor(rand() * cat.matrix.size);
      const embedding = (cat.embedding(id) as Float32Array).map((v) => Math.max(0, v + (rand() - 0.5) * 0.5));
      return { code: cat.get(id)?.code as Uint8Array, embedding };
    });
    for (const [, s] of impls) for (const q of queries.slice(0, 30)) s.search(q, { k: 10 });
    const timings = impls.map((): Timing => ({ wall: [], cpu: [] }));
    const results: SearchResult[][] = impls.map(() => []);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? impls.map((_, i) => i) : impls.map((_, i) => impls.length - 1 - i);
      for (const i of order) results[i] = timeAll((impls[i] as [string, Searcher])[1], queries, timings[i] as Timing);
    }
    const pool = (results[0] as SearchResult[]).reduce((s, r) => s + r.candidates, 0) / nq;
    console.log(`search bench: ${cat.matrix.size} images, ${nq} queries × ${rounds} rounds, k = 10, mean stage-1 pool ${pool.toFixed(0)} images, ms per query\n`);
    const rows = impls.map(([name], i) => {
      const t = timings[i] as Timing;
      const t0 = timings[0] as Timing;
      const ratio = i === 0 ? '' : ` (${(pct(t.wall, 0.5) / pct(t0.wall, 0.5)).toFixed(2)}× this build)`;
      return `${name.padEnd(40)} wall p50 ${pct(t.wall, 0.5).toFixed(2)}${ratio}, p90 ${pct(t.wall, 0.9).toFixed(2)}; cpu p50 ${pct(t.cpu, 0.5).toFixed(2)}, p90 ${pct(t.cpu, 0.9).toFixed(2)}`;
    });
    console.log(rows.join('\n'));
    if (impls.length > 1) {
      const differ = (results[0] as SearchResult[]).filter((r, i) => !same(r, (results[1] as SearchResult[])[i] as SearchResult)).length;
      const sum = (r: SearchResult): number => r.hits.reduce((t, h) => t + (h.distance ?? 0), 0);
      const closer = (results[0] as SearchResult[]).filter((r, i) => sum(r) < sum((results[1] as SearchResult[])[i] as SearchResult) - 1e-9).length;
      const farther = (results[0] as SearchResult[]).filter((r, i) => sum(r) > sum((results[1] as SearchResult[])[i] as SearchResult) + 1e-9).length;
      console.log(`\nhits (ids, distances, near-duplicate flags) differ from the baseline's on ${differ} of ${nq} queries`);
      const rel = (results[0] as SearchResult[]).reduce((t, r, i) => t + sum(r) / Math.max(1e-12, sum((results[1] as SearchResult[])[i] as SearchResult)), 0) / nq;
      console.log(`sum of the 10 hits' distances: smaller than the baseline's on ${closer}, larger on ${farther} queries; mean ratio ${rel.toFixed(4)}`);
    }
    for (const [, s] of impls.slice(1)) s.close();
  } finally {
    cat.close();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
