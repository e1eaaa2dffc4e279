/**
 * `npm run bench -- index [--sizes 10000,100000] [--full] [--engines scan,hnsw] [--codes clustered|centers|file:PATH] [--queries 1000] [--rerank-size 10000]`
 * (`--engines scan` skips the HNSW builds, `--rerank-size 0` skips stage 2)
 *
 * 1. Stage 1 engines on synthetic 128-bit codes (`clustered`: ~50 per random centre, 0–12 bits
 *    flipped, almost all distinct; `centers`: like the bundled codes model's output, 10 class
 *    centres, 60 % of images exactly on theirs, the rest 1–6 bits off; `file:PATH`: real codes
 *    replicated, see fileCodes): hnswlib-node (±1 floats, l2) vs the
 *    exact popcount scan: build rate, memory per image, latency p50/p99 and queries/s at k = 10
 *    and k = 100 (the re-rank's candidate count), and HNSW recall@10 (ties at the k-th distance
 *    count as hits). Default sizes 10k and 100k; --full adds 1M (the HNSW build takes minutes).
 * 2. Stage 2 on a real catalog (SQLite, 4096-d float16 embeddings): the cost of fetching 100
 *    candidate embeddings from SQLite vs computing on an in-memory float16 cache, and end-to-end
 *    search latency. This is the measurement behind not caching embeddings in RAM.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Catalog, halfView, squaredDistanceHalf, CodeHnsw, DEFAULT_HNSW, CodeMatrix, recallWithTies } from '../index/index.js';
import { rng } from './rng.js';

const BITS = 128;

/** n codes in one buffer: clusters of ~50 around random centres, up to 12 bits flipped. */
function clusteredCodes(n: number, rand: () => number): Uint8Array {
  const bytes = BITS / 8;
  const centres = new Uint8Array(Math.ceil(n / 50) * bytes).map(() => Math.floor(rand() * 256));
  const out = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * (centres.length / bytes));
    out.set(centres.subarray(c * bytes, (c + 1) * bytes), i * bytes);
    flip(out.subarray(i * bytes, (i + 1) * bytes), Math.floor(rand() * 13), rand);
  }
  return out;
}

/** n codes around 10 centres: 60 % exact copies (HNSW nodes are distinct codes), the rest 1–6 bits off. */
function centerCodes(n: number, rand: () => number): Uint8Array {
  const bytes = BITS / 8;
  const centres = new Uint8Array(10 * bytes).map(() => Math.floor(rand() * 256));
  const out = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * 10);
    out.set(centres.subarray(c * bytes, (c + 1) * bytes), i * bytes);
    if (rand() >= 0.6) flip(out.subarray(i * bytes, (i + 1) * bytes), 1 + Math.floor(rand() * 6), rand);
  }
  return out;
}

/**
 * n codes from a file of real packed 128-bit codes (e.g. a catalog's, `SELECT code FROM images`):
 * the file's codes first, then replicas of them, each left as it is with probability 1/2 (codes
 * shared by many images stay shared, as a larger collection of the same kind would have them) or
 * with 1–3 random bits flipped (new images near the existing ones).
 */
function fileCodes(path: string, n: number, rand: () => number): Uint8Array {
  const bytes = BITS / 8;
  const real = new Uint8Array(readFileSync(path));
  const m = Math.floor(real.length / bytes);
  if (m === 0 || real.length % bytes !== 0) throw new Error(`bench index: '${path}' must hold packed ${BITS}-bit codes (${bytes} bytes each), got ${real.length} bytes`);
  const out = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) {
    const src = i < m ? i : Math.floor(rand() * m);
    out.set(real.subarray(src * bytes, (src + 1) * bytes), i * bytes);
    if (i >= m && rand() >= 0.5) flip(out.subarray(i * bytes, (i + 1) * bytes), 1 + Math.floor(rand() * 3), rand);
  }
  return out;
}

function flip(code: Uint8Array, k: number, rand: () => number): void {
  for (let f = 0; f < k; f++) {
    const b = Math.floor(rand() * BITS);
    code[b >>> 3] = (code[b >>> 3] as number) ^ (1 << (b & 7));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

interface Row {
  engine: string;
  n: number;
  buildS: string;
  buildRate: string;
  bytesPerImage: string;
  k: number;
  p50: string;
  p99: string;
  qps: string;
  recall: string;
}

function timeQueries(queries: Uint8Array[], fn: (q: Uint8Array) => void): { p50: number; p99: number; qps: number } {
  for (const q of queries.slice(0, 50)) fn(q);
  const times: number[] = [];
  const t0 = performance.now();
  for (const q of queries) {
    const t = performance.now();
    fn(q);
    times.push(performance.now() - t);
  }
  const total = performance.now() - t0;
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), qps: (queries.length / total) * 1000 };
}

function stage1(n: number, nQueries: number, dir: string, withHnsw: boolean, kind: string): Row[] {
  const rand = rng(n);
  const codes = kind.startsWith('file:') ? fileCodes(kind.slice(5), n, rand) : kind === 'centers' ? centerCodes(n, rand) : clusteredCodes(n, rand);
  const bytes = BITS / 8;
  const codeOf = (i: number): Uint8Array => codes.subarray(i * bytes, (i + 1) * bytes);
  const queries = Array.from({ length: nQueries }, () => {
    const q = codeOf(Math.floor(rand() * n)).slice();
    flip(q, 4, rand);
    return q;
  });
  const rows: Row[] = [];

  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  let t = performance.now();
  const matrix = new CodeMatrix(BITS, n);
  for (let i = 0; i < n; i++) matrix.set(i + 1, codeOf(i));
  const scanBuild = (performance.now() - t) / 1000;
  global.gc?.();
  const scanBytes = (process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heap0) / n;

  const fmt = (x: number, d = 3): string => x.toFixed(d);
  if (!withHnsw) {
    for (const k of [10, 100]) {
      const s = timeQueries(queries, (q) => matrix.topK(q, k));
      rows.push({ engine: 'exact scan', n, buildS: fmt(scanBuild, 2), buildRate: fmt(n / scanBuild, 0), bytesPerImage: fmt(scanBytes, 0), k, p50: fmt(s.p50), p99: fmt(s.p99), qps: fmt(s.qps, 0), recall: '1 (exact)' });
    }
    return rows;
  }
  const rss0 = process.memoryUsage().rss;
  t = performance.now();
  const graph = CodeHnsw.create(BITS, DEFAULT_HNSW, n);
  for (let i = 0; i < n; i++) graph.add(i + 1, codeOf(i));
  const hnswBuild = (performance.now() - t) / 1000;
  const rssDelta = (process.memoryUsage().rss - rss0) / n;
  const file = join(dir, `bench-${n}.hnsw`);
  graph.writeSync(file);
  const fileBytes = statSync(file).size / n;
  rmSync(file);

  const truth10 = queries.map((q) => matrix.topK(q, 10).hamming);
  const recall = queries.reduce((s, q, i) => s + recallWithTies(graph.search(q, 10).hamming, truth10[i] as number[], 10), 0) / queries.length;
  for (const k of [10, 100]) {
    const s = timeQueries(queries, (q) => matrix.topK(q, k));
    rows.push({ engine: 'exact scan', n, buildS: fmt(scanBuild, 2), buildRate: fmt(n / scanBuild, 0), bytesPerImage: fmt(scanBytes, 0), k, p50: fmt(s.p50), p99: fmt(s.p99), qps: fmt(s.qps, 0), recall: '1 (exact)' });
    const h = timeQueries(queries, (q) => graph.search(q, k));
    rows.push({
      engine: `hnsw M=${DEFAULT_HNSW.M} efC=${DEFAULT_HNSW.efConstruction} ef=max(${DEFAULT_HNSW.efSearch},k), ${graph.codes} nodes`,
      n,
      buildS: fmt(hnswBuild, 1),
      buildRate: fmt(n / hnswBuild, 0),
      bytesPerImage: `${fmt(fileBytes, 0)} file / ${fmt(rssDelta, 0)} rss`,
      k,
      p50: fmt(h.p50),
      p99: fmt(h.p99),
      qps: fmt(h.qps, 0),
      recall: k === 10 ? fmt(recall) : '',
    });
  }
  return rows;
}

async function stage2(n: number, nQueries: number, dir: string): Promise<string[][]> {
  const rand = rng(7);
  const cat = await Catalog.open(join(dir, 'catalog'), { bits: BITS, modelHash: 'bench', codesHash: 'bench', saveDelayMs: null });
  const codes = clusteredCodes(n, rand);
  const centres = Array.from({ length: Math.ceil(n / 50) }, () => Float32Array.from({ length: 4096 }, () => rand() * 4));
  const t0 = performance.now();
  for (let start = 0; start < n; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 500); i++) {
      const c = centres[i % centres.length] as Float32Array;
      batch.push({ source: `bench/${i}`, sha256: (i + 1).toString(16).padStart(64, '0'), width: 1, height: 1, labels: [], code: codes.subarray(i * 16, i * 16 + 16), embedding: c.map((v) => v + rand()) });
    }
    cat.addMany(batch);
  }
  const insertRate = n / ((performance.now() - t0) / 1000);
  const queries = Array.from({ length: nQueries }, () => Math.floor(rand() * n) + 1);
  const qEmb = cat.embedding(1) as Float32Array;
  const cache = new Map<number, Uint16Array>();
  const sample = queries.slice(0, 200);
  const cands = sample.map((id) => cat.scan(cat.get(id)?.code as Uint8Array, 100).ids);
  for (const ids of cands) for (const id of ids) cache.set(id, new Uint16Array(halfView(cat.store.embedding(id) as Buffer)));
  const time = (fn: (i: number) => void): { p50: number; p99: number } => {
    const ts: number[] = [];
    for (let i = 0; i < sample.length; i++) {
      const t = performance.now();
      fn(i);
      ts.push(performance.now() - t);
    }
    ts.sort((a, b) => a - b);
    return { p50: percentile(ts, 0.5), p99: percentile(ts, 0.99) };
  };
  const fetch = time((i) => {
    for (const [, blob] of cat.store.embeddings(cands[i] as number[])) squaredDistanceHalf(qEmb, halfView(blob));
  });
  const fetchEach = time((i) => {
    for (const id of cands[i] as number[]) squaredDistanceHalf(qEmb, halfView(cat.store.embedding(id) as Buffer));
  });
  const ram = time((i) => {
    for (const id of cands[i] as number[]) squaredDistanceHalf(qEmb, cache.get(id) as Uint16Array);
  });
  const sampleQueries = sample.map((id) => ({ code: cat.get(id)?.code as Uint8Array, embedding: cat.embedding(id) as Float32Array }));
  const e2e = time((i) => cat.search(sampleQueries[i] as { code: Uint8Array; embedding: Float32Array }, { k: 10 }));
  const dbBytes = statSync(join(dir, 'catalog', 'sightline.db')).size + (statSync(join(dir, 'catalog', 'sightline.db-wal'), { throwIfNoEntry: false })?.size ?? 0);
  cat.close();
  const f = (x: number): string => x.toFixed(3);
  return [
    ['re-rank 100 candidates: SQLite fetch (one IN query) + distance', f(fetch.p50), f(fetch.p99)],
    ['re-rank 100 candidates: SQLite fetch (one query per id) + distance', f(fetchEach.p50), f(fetchEach.p99)],
    ['re-rank 100 candidates: RAM float16 cache + distance', f(ram.p50), f(ram.p99)],
    [`search end-to-end (k=10, oversample 10, ${n <= 10_000 ? 'scan' : 'hnsw'})`, f(e2e.p50), f(e2e.p99)],
    [`insert rate ${insertRate.toFixed(0)} images/s; database ${(dbBytes / n).toFixed(0)} B/image`, '', ''],
  ];
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

export async function run(args: string[]): Promise<void> {
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const sizes = (flag('--sizes') ?? (args.includes('--full') ? '10000,100000,1000000' : '10000,100000')).split(',').map(Number);
  const nQueries = Number(flag('--queries') ?? 1000);
  const rerankSize = Number(flag('--rerank-size') ?? 10_000);
  const engines = (flag('--engines') ?? 'scan,hnsw').split(',');
  const kind = flag('--codes') ?? 'clustered';
  if (kind !== 'clustered' && kind !== 'centers' && !kind.startsWith('file:')) throw new Error(`bench index: --codes must be 'clustered', 'centers' or 'file:PATH', got '${kind}'`);
  if (sizes.some((s) => !Number.isInteger(s) || s < 100) || !Number.isInteger(nQueries) || nQueries < 60) {
    throw new Error(`bench index: --sizes must list integers ≥ 100 and --queries an integer ≥ 60, got '${flag('--sizes')}' / '${flag('--queries')}'`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sightline-bench-index-'));
  try {
    console.log(`index bench: ${BITS}-bit ${kind} codes, ${nQueries} queries (4 bits from a stored code), latency in ms\n`);
    const rows: string[][] = [];
    for (const n of sizes) {
      for (const r of stage1(n, nQueries, dir, engines.includes('hnsw'), kind)) rows.push([r.engine, String(r.n), r.buildS, r.buildRate, r.bytesPerImage, String(r.k), r.p50, r.p99, r.qps, r.recall]);
      console.error(`  done n=${n}`);
    }
    console.log(table(['engine', 'n', 'build s', 'codes/s', 'bytes/image', 'k', 'p50 ms', 'p99 ms', 'queries/s', 'recall@10'], rows));
    if (rerankSize > 0) {
      console.log(`\nstage 2 on a catalog of ${rerankSize} images (4096-d float16 embeddings in SQLite):\n`);
      console.log(table(['measure', 'p50 ms', 'p99 ms'], await stage2(rerankSize, nQueries, dir)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run(process.argv.slice(2));
