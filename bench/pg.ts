/**
 * `npm run bench -- pg [--size 100000] [--queries 200] [--dim 64] [--uploads 120] [--skip search|uploads] [--engines hnsw,pglite,pg15] [--ef 100,200,400]`
 *
 * 1. Search through the storage port on the same synthetic catalog (128-bit codes around
 *    clusters, `--dim`-d embeddings; small so that 100k rows fit PGlite's memory: the candidate
 *    stage is what differs between engines, the re-rank is the same JS on each): SQLite + hnswlib
 *    (HNSW forced), PGlite + pgvector 0.8 (HNSW on `bit(128)`, `bit_hamming_ops`) and PostgreSQL 15
 *    (no pgvector: exact `bit_count` scan, over a socket). p50/p99 latency of `search(k = 10)` and
 *    recall@10 against the exact two-stage answer (SQLite's exact scan). `--ef` sweeps the pgvector
 *    engine's `hnsw.ef_search` on the same filled catalog (the backend raises a value below the
 *    k × oversample candidates it asks for to that number, so the table shows the value used; the
 *    values alternate query by query).
 * 2. Upload throughput through `sightline serve` on one PostgreSQL 15: one replica vs two, the same
 *    images sent by 8 clients spread over the replicas. On a 2-core machine both replicas share the
 *    same cores, so this shows whether a second replica costs anything, not scale-out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CatalogBackend, openPostgresWith, poolClient, PostgresBackend, SqliteBackend } from '../index/index.js';
import { pgliteClient } from '../testing/pglite.js';
import { postgresSkipReason, startPostgres } from '../testing/postgres.js';
import { uploadThroughput } from './pg-uploads.js';
import { rng } from './rng.js';

const HASHES = { modelHash: 'bench-model', codesHash: 'bench-codes' };

interface Item {
  code: Uint8Array;
  embedding: Float32Array;
}

/** ~50 images per random centre: code with 0–12 bits flipped, embedding near the centre's. */
function synthetic(n: number, dim: number, seed: number): Item[] {
  const rand = rng(seed);
  const nc = Math.max(1, Math.ceil(n / 50));
  const codes = Array.from({ length: nc }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)));
  const centres = Array.from({ length: nc }, () => Float32Array.from({ length: dim }, () => rand() * 2));
  return Array.from({ length: n }, () => {
    const c = Math.floor(rand() * nc);
    const code = (codes[c] as Uint8Array).slice();
    for (let f = Math.floor(rand() * 13); f > 0; f--) {
      const b = Math.floor(rand() * 128);
      code[b >>> 3] = (code[b >>> 3] as number) ^ (1 << (b & 7));
    }
    const embedding = (centres[c] as Float32Array).map((v) => Math.max(0, v + (rand() - 0.5) * 0.6));
    return { code, embedding };
  });
}

async function fill(cat: CatalogBackend, items: Item[]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < items.length; i += 500) {
    await cat.addMany(items.slice(i, i + 500).map((x, j) => ({ source: `/bench/${i + j}.png`, sha256: (i + j).toString(16).padStart(64, '0'), width: 28, height: 28, labels: [{ label: 'x', probability: 1 }], code: x.code, embedding: x.embedding })));
  }
  return (performance.now() - t0) / 1000;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

async function measure(cat: CatalogBackend, queries: Item[], truth: number[][] | undefined): Promise<{ p50: number; p99: number; recall: number; ids: number[][] }> {
  for (const q of queries.slice(0, 10)) await cat.search({ code: q.code, embedding: q.embedding }, { k: 10 });
  const times: number[] = [];
  const ids: number[][] = [];
  for (const q of queries) {
    const t = performance.now();
    const r = await cat.search({ code: q.code, embedding: q.embedding }, { k: 10 });
    times.push(performance.now() - t);
    ids.push(r.hits.map((h) => h.id));
  }
  times.sort((a, b) => a - b);
  let hit = 0;
  if (truth) ids.forEach((got, i) => (hit += got.filter((id) => (truth[i] as number[]).includes(id)).length));
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), recall: truth ? hit / (10 * queries.length) : 1, ids };
}

/** k × oversample of search(k = 10) with the default oversample: the least ef_search the backend uses. */
const CANDIDATES = 100;

/**
 * The pgvector engine's p50, p99 and recall@10 at each ef_search, one table row each. Each query
 * runs at every value in turn (order rotated per query), so a busy machine slows all values alike.
 */
async function efSweep(cat: PostgresBackend, efs: number[], queries: Item[], truth: number[][]): Promise<string[][]> {
  const at = efs.map((ef) => new PostgresBackend(cat.db, cat.pgMeta, { readOnly: true, scanThreshold: 0, filterScanFraction: 0.1, efSearch: ef }));
  const times = efs.map(() => [] as number[]);
  const hits = efs.map(() => 0);
  for (const [i, q] of queries.entries()) {
    for (let j = 0; j < efs.length; j++) {
      const e = (i + j) % efs.length;
      const t = performance.now();
      const r = await (at[e] as PostgresBackend).search({ code: q.code, embedding: q.embedding }, { k: 10 });
      (times[e] as number[]).push(performance.now() - t);
      hits[e] = (hits[e] as number) + r.hits.filter((h) => (truth[i] as number[]).includes(h.id)).length;
    }
  }
  return efs.map((ef, e) => {
    const sorted = (times[e] as number[]).sort((a, b) => a - b);
    return [String(ef), String(Math.min(1000, Math.max(ef, CANDIDATES))), pct(sorted, 0.5).toFixed(2), pct(sorted, 0.99).toFixed(2), ((hits[e] as number) / (10 * queries.length)).toFixed(3)];
  });
}

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

export async function run(args: string[]): Promise<void> {
  const n = flag(args, '--size', 100_000);
  const nq = flag(args, '--queries', 200);
  const dim = flag(args, '--dim', 64);
  const skip = args.includes('--skip') ? args[args.indexOf('--skip') + 1] : undefined;
  const pgSkip = postgresSkipReason();
  const cluster = pgSkip ? undefined : await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'sightline-bench-pg-'));
  try {
    if (skip !== 'search') {
      const items = synthetic(n, dim, 1);
      const rand = rng(2);
      const queries = Array.from({ length: nq }, () => items[Math.floor(rand() * n)] as Item).map((x) => ({ code: x.code, embedding: x.embedding.map((v) => v + 0.01) }));
      const open = { bits: 128, embeddingDim: dim, ...HASHES };
      const exact = await SqliteBackend.open(join(dir, 'exact'), { ...open, scanThreshold: n + 1, saveDelayMs: null });
      const tExact = await fill(exact, items);
      const truth = await measure(exact, queries, undefined);
      const rows: string[][] = [['exact scan (SQLite, JS popcount)', tExact.toFixed(0), truth.p50.toFixed(2), truth.p99.toFixed(2), '1.000']];
      await exact.close();
      const engines: [string, () => Promise<CatalogBackend>][] = [
        ['SQLite + hnswlib (HNSW)', () => SqliteBackend.open(join(dir, 'hnsw'), { ...open, scanThreshold: 0, saveDelayMs: null })],
        ['PGlite + pgvector HNSW', async () => openPostgresWith(await pgliteClient(), { ...open, scanThreshold: 0 })],
        ...(cluster ? ([['PostgreSQL 15, bit_count scan', async () => openPostgresWith(poolClient(await cluster.createDatabase(), 'pg15'), open)]] as [string, () => Promise<CatalogBackend>][]) : []),
      ];
      const wanted = args.includes('--engines') ? (args[args.indexOf('--engines') + 1] ?? '').split(',') : ['hnsw', 'pglite', 'pg15'];
      const keys = ['hnsw', 'pglite', 'pg15'];
      const efs = args.includes('--ef') ? (args[args.indexOf('--ef') + 1] ?? '').split(',').map(Number) : [];
      if (efs.some((ef) => !Number.isInteger(ef) || ef < 1 || ef > 1000)) throw new Error(`--ef wants integers in [1, 1000] separated by commas, got '${args[args.indexOf('--ef') + 1]}'`);
      let sweep: string[][] = [];
      for (const [name, make] of engines.filter((_, i) => wanted.includes(keys[i] as string))) {
        const cat = await make();
        const t = await fill(cat, items);
        const m = await measure(cat, queries, truth.ids);
        rows.push([name, t.toFixed(0), m.p50.toFixed(2), m.p99.toFixed(2), m.recall.toFixed(3)]);
        if (efs.length > 0 && cat instanceof PostgresBackend && cat.engine === 'hnsw') sweep = await efSweep(cat, efs, queries, truth.ids);
        await cat.close();
        process.stderr.write(`${name} done\n`);
      }
      const base = Number(rows[1]?.[2]);
      console.log(`\nsearch, ${n} images, 128-bit codes, ${dim}-d embeddings, k = 10, ${nq} queries (recall@10 vs the exact two-stage answer)`);
      console.log('| engine | fill s | p50 ms | p99 ms | recall@10 | p50 / SQLite HNSW |\n|---|---|---|---|---|---|');
      for (const r of rows) console.log(`| ${r.join(' | ')} | ${(Number(r[2]) / base).toFixed(2)} |`);
      if (pgSkip) console.log(`(PostgreSQL 15 skipped: ${pgSkip})`);
      if (sweep.length > 0) {
        console.log(`\nPGlite + pgvector HNSW by hnsw.ef_search (same catalog and queries, values alternating per query)`);
        console.log('| --ef | ef_search used | p50 ms | p99 ms | recall@10 |\n|---|---|---|---|---|');
        for (const r of sweep) console.log(`| ${r.join(' | ')} |`);
      }
    }
    if (skip !== 'uploads' && cluster) await uploadThroughput(cluster, dir, flag(args, '--uploads', 120));
  } finally {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
