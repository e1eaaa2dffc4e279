/**
 * `eval retrieval`: database = training images, queries = test images, relevant = same class.
 * Five rankings per query, all over the same embeddings (crop policy of the codes model):
 *   euclidean  exact Euclidean distance on fc7
 *   hamming    exact Hamming distance on the codes model's codes (ties by database index)
 *   served     the index's own search (index/search.ts) on a real catalog: HNSW or the scan as
 *              the catalog decides, then its re-rank (fc7 Euclidean today). For mAP the k=100
 *              result list (1000 candidates) continued by the remaining images in exact Hamming
 *              order; P@10 and queries/s from the default search (k=10, 100 candidates)
 *   classifier Euclidean distance between the averaged softmax vectors
 *   lsh        Hamming distance on sign random projections of centered fc7, same bit count
 * Metric definitions (ties, AP@k normalization): training/retrieval-eval.ts.
 * Instance retrieval (transformed copies of database images must find their original, `near_dup`
 * in the report): training/codes/near-dup.ts.
 */
import { codeWords, hammingWords, search, type SearchContext } from '../../index/index.js';
import { checkCodesFor, createCodesSession, type CodesSession, sha256File, createSession, type ModelSession } from '../../model/index.js';
import type { CropCount } from '../../model/index.js';
import { kthSmallestInt, MetricMeans, metricsFromRanks as metricsOf, Ranker, recallWithTies, type RankingMetrics } from '../retrieval-eval.js';
import { embedDataset, type DatasetEmbeddings } from './embed.js';
import { columnMean, lshCodes, makeLsh } from './lsh.js';
import { createDotSession, rowNormsSquared, type DotSession } from './ort-math.js';
import { loadCodesDataset } from './run.js';
import { buildServedIndex, type ServedIndex } from './served.js';
import { calibrateThreshold, makeCopies, type NearDupReport, rankOf, RecallTally, sampleIndices } from './near-dup.js';
import type { SquareDataset } from '../data/dataset.js';

export const METHODS = ['euclidean', 'hamming', 'served', 'classifier', 'lsh'] as const;
export type Method = (typeof METHODS)[number];

export interface RetrievalOptions {
  model: string;
  codes: string;
  dataset: string;
  dataDir?: string;
  dbSize?: number;
  queries?: number;
  /** Override the codes model's crop policy (measuring center vs 10-crop with the same codes). */
  crops?: CropCount;
  threads: number;
  lshSeed: number;
  /** Parent folder of the temporary catalog. */
  tmpDir?: string;
  /** Database images whose transformed copies measure instance retrieval (default 100; 0 = skip). */
  nearDup?: number;
  /** Seed of that sample (default 1). */
  nearDupSeed?: number;
}

export interface RetrievalReport {
  map: Record<Method, number>;
  map_at_1000: Record<Method, number>;
  p_at_10: Record<Method, number>;
  recall_at_10: number;
  bytes_per_image: number;
  qps: number;
  near_dup?: NearDupReport;
  info: { db: number; queries: number; bits: number; crops: CropCount; engine: string; seconds: Record<string, number> };
}

export interface RetrievalEvents {
  onPhase?: (phase: string) => void;
  onProgress?: (done: number, total: number) => void;
}

const QUERY_BLOCK = 128;
const SERVED_K = 100;
const SERVED_OVERSAMPLE = 10;

function hammingAll(q: Uint32Array, db: Uint32Array, n: number, words: number, out: Uint16Array): Uint16Array {
  for (let i = 0; i < n; i++) out[i] = hammingWords(q, 0, db, i * words, words);
  return out;
}

async function encodeAll(codes: CodesSession, e: DatasetEmbeddings, chunk = 1024): Promise<Uint8Array> {
  const bytes = codes.bits >>> 3;
  const out = new Uint8Array(e.n * bytes);
  for (let s = 0; s < e.n; s += chunk) {
    const m = Math.min(chunk, e.n - s);
    out.set(await codes.encode(e.embeddings.subarray(s * e.dim, (s + m) * e.dim), m), s * bytes);
  }
  return out;
}

function wordsOf(packed: Uint8Array): Uint32Array {
  return codeWords(packed, new Uint32Array(packed.length >>> 2));
}

interface Ctx {
  db: DatasetEmbeddings;
  q: DatasetEmbeddings;
  dbLabels: Int32Array;
  qLabels: Int32Array;
  bits: number;
  dbCodes: Uint32Array;
  qCodes: Uint32Array;
  dbLsh: Uint32Array;
  qLsh: Uint32Array;
  served: ServedIndex;
  dot: DotSession;
}

/** Squared Euclidean distances from one query to every database row, from the block's dot products. */
function euclidRow(dots: Float32Array, row: number, qNorm: number, dbNorms: Float64Array, out: Float64Array): Float64Array {
  const n = dbNorms.length;
  for (let i = 0; i < n; i++) out[i] = qNorm + (dbNorms[i] as number) - 2 * (dots[row * n + i] as number);
  return out;
}

/** Squared Euclidean distances between query qi's softmax vector and every database row's. */
function softmaxRow(q: DatasetEmbeddings, qi: number, db: DatasetEmbeddings, out: Float64Array): Float64Array {
  const k = q.k;
  for (let i = 0; i < db.n; i++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += ((q.probabilities[qi * k + c] as number) - (db.probabilities[i * k + c] as number)) ** 2;
    out[i] = s;
  }
  return out;
}

interface ServedTally {
  top10: MetricMeans;
  recall: number;
  searchMs: number;
  engines: Set<string>;
}

/** The served path for one query: default search (P@10, timed), k=100 list (mAP), raw HNSW (recall). */
function servedQuery(c: Ctx, query: { code: Uint8Array; embedding: Float32Array }, ham: Uint16Array, relevant: (i: number) => boolean, ranker: Ranker, skip: Uint8Array, t: ServedTally): RankingMetrics {
  const { catalog } = c.served;
  const t0 = performance.now();
  const top10 = catalog.search(query, { k: 10 });
  t.searchMs += performance.now() - t0;
  t.engines.add(top10.engine);
  t.top10.add(metricsOf(Int32Array.from(top10.hits.flatMap((h, pos) => (relevant(c.served.indexOf(h.id)) ? [pos + 1] : [])))));
  const head = catalog.search(query, { k: SERVED_K, oversample: SERVED_OVERSAMPLE }).hits.map((h) => c.served.indexOf(h.id));
  const ann = catalog.hnsw.search(query.code, 10);
  t.recall += recallWithTies(ann.hamming, kthSmallestInt(ham, c.bits, 10), 10);
  return metricsOf(ranker.byHeadThenHamming(head, ham, c.bits, relevant, skip));
}

interface Ranked {
  means: Record<Method, RankingMetrics>;
  recall: number;
  qps: number;
  engines: Set<string>;
}

async function rankAll(c: Ctx, onProgress?: (done: number, total: number) => void): Promise<Ranked> {
  const { db, q, bits } = c;
  const n = db.n;
  const words = bits >>> 5;
  const ranker = new Ranker(n);
  const acc = Object.fromEntries(METHODS.map((m) => [m, new MetricMeans()])) as Record<Method, MetricMeans>;
  const dbNorms = rowNormsSquared(db.embeddings, n, db.dim);
  const dist = new Float64Array(n);
  const ham = new Uint16Array(n);
  const skip = new Uint8Array(n);
  const tally: ServedTally = { top10: new MetricMeans(), recall: 0, searchMs: 0, engines: new Set() };
  for (let start = 0; start < q.n; start += QUERY_BLOCK) {
    const m = Math.min(QUERY_BLOCK, q.n - start);
    const dots = await c.dot.dot(q.embeddings.subarray(start * q.dim, (start + m) * q.dim), m, db.embeddings, n);
    for (let j = 0; j < m; j++) {
      const qi = start + j;
      const label = c.qLabels[qi] as number;
      const relevant = (i: number): boolean => c.dbLabels[i] === label;
      const qEmb = q.embeddings.subarray(qi * q.dim, (qi + 1) * q.dim);
      const euclid = ranker.byDistance(euclidRow(dots, j, qEmb.reduce((s, v) => s + v * v, 0), dbNorms, dist), relevant);
      if (euclid.length === 0) continue;
      acc.euclidean.add(metricsOf(euclid));
      acc.classifier.add(metricsOf(ranker.byDistance(softmaxRow(q, qi, db, dist), relevant)));
      acc.lsh.add(metricsOf(ranker.byHamming(hammingAll(c.qLsh.subarray(qi * words, (qi + 1) * words), c.dbLsh, n, words, ham), bits, relevant)));
      const qCode = c.qCodes.subarray(qi * words, (qi + 1) * words);
      acc.hamming.add(metricsOf(ranker.byHamming(hammingAll(qCode, c.dbCodes, n, words, ham), bits, relevant)));
      const query = { code: new Uint8Array(qCode.buffer, qCode.byteOffset, bits >>> 3), embedding: qEmb };
      acc.served.add(servedQuery(c, query, ham, relevant, ranker, skip, tally));
    }
    onProgress?.(start + m, q.n);
  }
  const means = Object.fromEntries(METHODS.map((m) => [m, acc[m].means()])) as Record<Method, RankingMetrics>;
  means.served = { ...means.served, pAt10: tally.top10.means().pAt10 };
  const counted = Math.max(1, acc.euclidean.count);
  return { means, recall: tally.recall / counted, qps: (counted * 1000) / Math.max(tally.searchMs, 1e-9), engines: tally.engines };
}

export async function evaluateRetrieval(o: RetrievalOptions, ev: RetrievalEvents = {}): Promise<RetrievalReport> {
  if (o.dataset !== 'fashion-mnist') throw new Error(`'dataset' must be 'fashion-mnist' (training split = database, test split = queries), got '${o.dataset}'`);
  const seconds: Record<string, number> = {};
  const lap = (name: string, t: number): number => {
    const now = performance.now();
    seconds[name] = Math.round(now - t) / 1000;
    return now;
  };
  let t = performance.now();
  const [modelHash, codesHash] = await Promise.all([sha256File(o.model), sha256File(o.codes)]);
  const session: ModelSession = await createSession(o.model, { device: 'cpu', threads: o.threads });
  const cleanup: (() => Promise<unknown> | unknown)[] = [() => session.close()];
  try {
    const codes = await createCodesSession(o.codes, { threads: 1 });
    cleanup.push(() => codes.close());
    checkCodesFor(codes, modelHash, session.contract.embeddingDim);
    const crops = o.crops ?? codes.crops;
    ev.onPhase?.('loading fashion-mnist');
    const dbSet = await loadCodesDataset(session, o.dataset, { split: 'train', dataDir: o.dataDir, limit: o.dbSize });
    const qSet = await loadCodesDataset(session, o.dataset, { split: 'test', dataDir: o.dataDir, limit: o.queries });
    t = lap('load', t);
    ev.onPhase?.(`embedding ${dbSet.n} database and ${qSet.n} query images (${crops} crop${crops === 1 ? '' : 's'})`);
    const db = await embedDataset(session, dbSet, crops, (d) => ev.onProgress?.(d, dbSet.n + qSet.n));
    const q = await embedDataset(session, qSet, crops, (d) => ev.onProgress?.(dbSet.n + d, dbSet.n + qSet.n));
    t = lap('embed', t);
    ev.onPhase?.('coding (codes model and LSH)');
    const dot = await createDotSession(db.dim, o.threads);
    cleanup.push(() => dot.close());
    const dbPacked = await encodeAll(codes, db);
    const qPacked = await encodeAll(codes, q);
    const lsh = makeLsh(codes.bits, db.dim, columnMean(db.embeddings, db.n, db.dim), o.lshSeed);
    const dbLsh = wordsOf(await lshCodes(lsh, dot, db.embeddings, db.n));
    const qLsh = wordsOf(await lshCodes(lsh, dot, q.embeddings, q.n));
    t = lap('code', t);
    ev.onPhase?.(`building the index (${db.n} images)`);
    const served = await buildServedIndex(
      { n: db.n, dim: db.dim, bits: codes.bits, embeddings: db.embeddings, codes: dbPacked, probabilities: db.probabilities, labels: session.contract.labels, modelHash, codesHash, source: 'fashion-mnist/train', imageSize: 28 },
      ev.onProgress, o.tmpDir,
    );
    let closed = false;
    let bytes = 0;
    cleanup.push(() => closed || served.close());
    t = lap('index', t);
    ev.onPhase?.(`ranking ${q.n} queries`);
    const ctx: Ctx = { db, q, dbLabels: dbSet.labels, qLabels: qSet.labels, bits: codes.bits, dbCodes: wordsOf(dbPacked), qCodes: wordsOf(qPacked), dbLsh, qLsh, served, dot };
    const r = await rankAll(ctx, ev.onProgress);
    t = lap('rank', t);
    let nearDup: NearDupReport | undefined;
    if ((o.nearDup ?? 100) > 0) {
      ev.onPhase?.('instance retrieval (transformed copies)');
      nearDup = await nearDuplicates(ctx, dbSet, session, codes, crops, o.nearDup ?? 100, o.nearDupSeed ?? 1);
      lap('near_dup', t);
    }
    bytes = served.close();
    closed = true;
    const pick = (f: (m: RankingMetrics) => number): Record<Method, number> => Object.fromEntries(METHODS.map((m) => [m, f(r.means[m])])) as Record<Method, number>;
    return {
      map: pick((m) => m.ap), map_at_1000: pick((m) => m.apAtK), p_at_10: pick((m) => m.pAt10),
      recall_at_10: r.recall, bytes_per_image: bytes, qps: r.qps, ...(nearDup ? { near_dup: nearDup } : {}),
      info: { db: db.n, queries: q.n, bits: codes.bits, crops, engine: [...r.engines].join(', '), seconds },
    };
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  }
}

/** Copies of a seeded sample of database images as queries for their originals (see near-dup.ts). */
async function nearDuplicates(c: Ctx, dbSet: SquareDataset, session: ModelSession, codes: CodesSession, crops: CropCount, count: number, seed: number): Promise<NearDupReport> {
  const { db, bits } = c;
  const n = db.n;
  const words = bits >>> 5;
  const sample = sampleIndices(n, count, seed);
  const { copies, origin } = await makeCopies(dbSet, sample);
  const q = await embedDataset(session, copies, crops);
  const qCodes = wordsOf(await encodeAll(codes, q));
  const dbNorms = rowNormsSquared(db.embeddings, n, db.dim);
  const dist = new Float64Array(n);
  const ham = new Uint16Array(n);
  const tally = { euclidean: new RecallTally(), hamming: new RecallTally(), served: new RecallTally(), idTies: new RecallTally() };
  const cat = c.served.catalog;
  const withoutSketch: SearchContext = {
    bits: cat.bits, embeddingDim: cat.embeddingDim, matrix: cat.matrix, hnsw: cat.hnsw, store: cat.store, sketch: undefined,
    scanThreshold: cat.scanThreshold, filterScanFraction: cat.filterScanFraction, labelIndex: (l) => cat.labelIndex(l), labelCount: (i) => cat.labelCount(i),
  };
  const positives: number[] = [];
  const negatives: number[] = [];
  const relPositives: number[] = [];
  const relNegatives: number[] = [];
  const per = dbSet.size * dbSet.size * dbSet.channels;
  const samePixels = (a: number, b: number): boolean => Buffer.compare(dbSet.pixels.subarray(a * per, (a + 1) * per), dbSet.pixels.subarray(b * per, (b + 1) * per)) === 0;
  for (let start = 0; start < q.n; start += QUERY_BLOCK) {
    const m = Math.min(QUERY_BLOCK, q.n - start);
    const dots = await c.dot.dot(q.embeddings.subarray(start * q.dim, (start + m) * q.dim), m, db.embeddings, n);
    for (let j = 0; j < m; j++) {
      const qi = start + j;
      const o = origin[qi] as number;
      const qEmb = q.embeddings.subarray(qi * q.dim, (qi + 1) * q.dim);
      const qNorm = qEmb.reduce((s, v) => s + v * v, 0);
      euclidRow(dots, j, qNorm, dbNorms, dist);
      tally.euclidean.add(rankOf(dist, o));
      const meanNorm = (i: number): number => (Math.sqrt(qNorm) + Math.sqrt(dbNorms[i] as number)) / 2;
      positives.push(Math.sqrt(Math.max(0, dist[o] as number)));
      relPositives.push((positives.at(-1) as number) / meanNorm(o));
      // Nearest other image; byte-identical twins (Fashion-MNIST has some) are the same image.
      let other = -1;
      for (let i = 0; i < n; i++) if (i !== o && (other < 0 || (dist[i] as number) < (dist[other] as number)) && !samePixels(i, o)) other = i;
      negatives.push(other < 0 ? Infinity : Math.sqrt(Math.max(0, dist[other] as number)));
      relNegatives.push(other < 0 ? Infinity : (negatives.at(-1) as number) / meanNorm(other));
      const qCode = qCodes.subarray(qi * words, (qi + 1) * words);
      tally.hamming.add(rankOf(hammingAll(qCode, c.dbCodes, n, words, ham), o));
      const query = { code: new Uint8Array(qCode.buffer, qCode.byteOffset, bits >>> 3), embedding: qEmb };
      const rank = (hits: { id: number }[]): number => hits.findIndex((h) => c.served.indexOf(h.id) === o);
      tally.served.add(rank(cat.search(query, { k: 10 }).hits));
      tally.idTies.add(rank(search(withoutSketch, query, { k: 10 }).hits));
    }
  }
  return {
    euclidean: tally.euclidean.result(), hamming: tally.hamming.result(), served: tally.served.result(), served_id_ties: tally.idTies.result(),
    originals: sample.length, queries: q.n, threshold: calibrateThreshold(positives, negatives), threshold_relative: calibrateThreshold(relPositives, relNegatives),
  };
}
