/**
 * Re-embedding an index with a new image model (`sightline reindex --model`). The index keeps each
 * image's `source` (a path: indexed files, or uploads under SIGHTLINE_BLOB_DIR) and its SHA-256, not its
 * bytes, so every source is read again and pushed through the same pipeline the server uses at
 * upload (InferenceService.encode: the codes model's crop policy, the stored number of labels),
 * which keeps stored vectors identical to what a fresh index would hold.
 *
 * A source that is gone or whose bytes changed cannot be re-embedded: its row keeps the old vectors
 * (and the index keeps refusing the new model) unless `dropUnavailable` deletes it. Resumable: rows
 * already carrying the new hashes are skipped (index/reembed.ts); on PostgreSQL nothing switches
 * until every row is computed, and rows staged by an interrupted run are kept (index/pg/reembed.ts). Rows without an out-of-distribution
 * score on the model's basis (indexed before schema 3) are re-encoded as well, so
 * `sightline reindex --model` with the serving model fills in their scores.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type DbLocation, IndexParamError, reembedAt, type ReembedReport, type ReembedRow, storedMetaAt } from '../../index/index.js';
import { createSession, type DeviceRequest, sha256File } from '../../model/index.js';
import { resolveCodes } from './codes.js';
import { InferenceService } from './inference.js';

export interface ReembedModelOptions {
  modelPath: string;
  codesPath: string;
  device?: DeviceRequest;
  threads?: number;
  /** Delete rows whose source cannot be read or changed (default false: keep them, report them). */
  dropUnavailable?: boolean;
  /** Labels stored per image (the server's default, 5). */
  storedLabels?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called with the reason when `codesPath` does not fit the model and the fallback code is used. */
  onFallback?: (reason: string) => void;
  /** PostgreSQL: pgvector HNSW parameters of the index rebuilt when the catalog switches. */
  index?: { M?: number | undefined; efConstruction?: number | undefined };
}

export interface ReembedModelReport extends ReembedReport {
  modelHash: string;
  codesHash: string;
  bits: number;
}

export async function reembedWithModel(location: DbLocation, o: ReembedModelOptions): Promise<ReembedModelReport> {
  const session = await createSession(o.modelPath, { device: o.device ?? 'cpu', ...(o.threads ? { threads: o.threads } : {}) });
  const modelHash = await sha256File(o.modelPath);
  // No codes model for the new image model: the data-independent fallback code, never a refusal.
  const { codes, codesHash } = await resolveCodes(o.codesPath, modelHash, session.contract.embeddingDim, { onFallback: o.onFallback }).catch(async (err: unknown) => {
    await session.close();
    throw err;
  });
  // Limits as generous as the CLI indexer's: this is a local batch, not an HTTP request.
  const inference = new InferenceService(session, codes, { maxBatch: 32, maxDelayMs: 2, maxQueue: 1024, requestTimeoutMs: 600_000, maxPixels: 50_000_000 });
  try {
    const stored = (await storedMetaAt(location)).embeddingDim;
    if (stored !== session.contract.embeddingDim) {
      throw new IndexParamError('model', o.modelPath, `a model with ${stored}-d embeddings like the index (it gives ${session.contract.embeddingDim}); start a new --db instead`);
    }
    const compute = async (row: ReembedRow) => {
      const bytes = await readFile(row.source).catch(() => undefined);
      if (bytes === undefined || createHash('sha256').update(bytes).digest('hex') !== row.sha256) return null;
      const e = await inference.encode(bytes, { labels: o.storedLabels ?? 5, priority: 'background' });
      return { embedding: e.embedding, code: e.code, labels: e.labels ?? [], ...(e.ood ? { ood: e.ood } : {}) };
    };
    // Rows without a score on this model's basis are re-encoded too: reindexing with the serving model scores old rows.
    const oodBasis = inference.oodBasis;
    const report = await reembedAt(location, { modelHash, codesHash, bits: codes.bits, oodBasis, compute, dropUnavailable: o.dropUnavailable ?? false, onProgress: o.onProgress, ...(o.index ? { index: o.index } : {}) });
    return { ...report, modelHash, codesHash, bits: codes.bits };
  } finally {
    await inference.close();
  }
}
