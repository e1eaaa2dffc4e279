/**
 * `eval retrieval`: database = training images, queries = test images, relevant = same class.
 * Five rankings per query, all over the same embeddings (crop policy of the codes model):
 *   euclidean  exact Euclidean distance on fc7
 *   hamming    exact Hamming distance on the codes model's codes (ties by database index)
 *   served     the index's own search on a real catalog (HNSW or scan as the catalog decides,
 *              re-rank by fc7 Euclidean): the k=100 result list, continued by the remaining
 *              images in exact Hamming order for mAP; P@10 from the default search (k=10)
 *   classifier Euclidean distance between the averaged softmax vectors
 *   lsh        Hamming distance on sign random projections of centered fc7, same bit count
 * Metric definitions (ties, AP@k normalization): training/retrieval-eval.ts.
 */
import { codeWords, hammingWords } from '../../index/codes.js';
import { checkCodesFor, createCodesSession, type CodesSession } from '../../model/codes.js';
import type { CropCount } from '../../model/image/crops.js';
import { sha256File } from '../../model/embedder.js';
import { createSession, type ModelSession } from '../../model/session.js';
import { kthSmallestInt, MetricMeans, metricsFromRanks as metricsOf, Ranker, recallWithTies, type RankingMetrics } from '../retrieval-eval.js';
import { embedDataset, type DatasetEmbeddings } from './embed.js';
import { columnMean, lshCodes, makeLsh } from './lsh.js';
import { createDotSession, rowNormsSquared, type DotSession } from './ort-math.js';
import { loadCodesDataset } from './run.js';
import { buildServedIndex, type ServedIndex } from './served.js';

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
}

export interface RetrievalReport {
  map: Record<Method, number>;
  map_at_1000: Record<Method, number>;
  p_at_10: Record<Method, number>;
  recall_at_10: number;
  bytes_per_image: number;
  qps: number;
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

async function rankAll(c: Ctx, onProgress?: (done: number, total: number) => void): Promise<{ means: Record<Method, RankingMetrics>; recall: number; qps: number; engines: Set<string> }> {
  const { db, q, bits } = c;
  const n = db.n;
  const words = bits >>> 5;
  const ranker = new Ranker(n);
  const acc = Object.fromEntries(METHODS.map((m) => [m, new MetricMeans()])) as Record<Method, MetricMeans>;
  const dbNorms = rowNormsSquared(db.embeddings, n, db.dim);
  const dist = new Float64Array(n);
  const ham = new Uint16Array(n);
  const skip = new Uint8Array(n);
  const served10 = new MetricMeans();
  let recallSum = 0;
  let searchMs = 0;
  const engines = new Set<string>();
  for (let start = 0; start < q.n; start += QUERY_BLOCK) {
    const m = Math.min(QUERY_BLOCK, q.n - start);
    const dots = await c.dot.dot(q.embeddings.subarray(start * q.dim, (start + m) * q.dim), m, db.embeddings, n);
    for (let j = 0; j < m; j++) {
      const qi = start + j;
      const label = c.qLabels[qi] as number;
      const relevant = (i: number): boolean => c.dbLabels[i] === label;
      const qEmb = q.embeddings.subarray(qi * q.dim, (qi + 1) * q.dim);
      let qNorm = 0;
      for (let d = 0; d < q.dim; d++) qNorm += (qEmb[d] as number) ** 2;
      for (let i = 0; i < n; i++) dist[i] = qNorm + (dbNorms[i] as number) - 2 * (dots[j * n + i] as number);
      const euclid = ranker.byDistance(dist, relevant);
      if (euclid.length === 0) continue;
      acc.euclidean.add(metricsOf(euclid));
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < q.k; k++) s += ((q.probabilities[qi * q.k + k] as number) - (db.probabilities[i * db.k + k] as number)) ** 2;
        dist[i] = s;
      }
      acc.classifier.add(metricsOf(ranker.byDistance(dist, relevant)));
      hammingAll(c.qLsh.subarray(qi * words, (qi + 1) * words), c.dbLsh, n, words, ham);
      acc.lsh.add(metricsOf(ranker.byHamming(ham, bits, relevant)));
      const qCode = c.qCodes.subarray(qi * words, (qi + 1) * words);
      hammingAll(qCode, c.dbCodes, n, words, ham);
      acc.hamming.add(metricsOf(ranker.byHamming(ham, bits, relevant)));
      const packed = new Uint8Array(qCode.buffer, qCode.byteOffset, bits >>> 3);
      const query = { code: packed, embedding: qEmb };
      const t0 = performance.now();
      const top10 = c.served.catalog.search(query, { k: 10 });
      searchMs += performance.now() - t0;
      engines.add(top10.engine);
      served10.add(metricsOf(Int32Array.from(top10.hits.flatMap((h, pos) => (relevant(c.served.indexOf(h.id)) ? [pos + 1] : [])))));
      const head = c.served.catalog.search(query, { k: SERVED_K, oversample: SERVED_OVERSAMPLE }).hits.map((h) => c.served.indexOf(h.id));
      acc.served.add(metricsOf(ranker.byHeadThenHamming(head, ham, bits, relevant, skip)));
      const ann = c.served.catalog.hnsw.search(packed, 10);
      recallSum += recallWithTies(ann.hamming, kthSmallestInt(ham, bits, 10), 10);
    }
    onProgress?.(start + m, q.n);
  }
  const means = Object.fromEntries(METHODS.map((m) => [m, acc[m].means()])) as Record<Method, RankingMetrics>;
  means.served = { ...means.served, pAt10: served10.means().pAt10 };
  const counted = Math.max(1, acc.euclidean.count);
  return { means, recall: recallSum / counted, qps: (counted * 1000) / Math.max(searchMs, 1e-9), engines };
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
    lap('rank', t);
    bytes = served.close();
    closed = true;
    const pick = (f: (m: RankingMetrics) => number): Record<Method, number> => Object.fromEntries(METHODS.map((m) => [m, f(r.means[m])])) as Record<Method, number>;
    return {
      map: pick((m) => m.ap), map_at_1000: pick((m) => m.apAtK), p_at_10: pick((m) => m.pAt10),
      recall_at_10: r.recall, bytes_per_image: bytes, qps: r.qps,
      info: { db: db.n, queries: q.n, bits: codes.bits, crops, engine: [...r.engines].join(', '), seconds },
    };
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  }
}
