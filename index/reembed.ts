/**
 * Recomputing stored vectors after the model or the autoencoder changed (`sightline reindex`).
 *
 * What it needs: a `compute` function from the caller. For a new autoencoder only, the stored fc7
 * embedding (given to `compute`) is enough to make the new code, no image needed. For a new
 * embedding model the image itself is needed: the index keeps `source` (the path or upload name)
 * and the sha256, not the bytes, so `compute` must re-read the file and may return null when the
 * source is gone (with `dropUnavailable` those rows are deleted; otherwise the run stops short).
 *
 * It is resumable: rows are rewritten in batches with their new hashes, rows already carrying the
 * new hashes are skipped, and the meta hashes switch only when no old row remains. The graph is
 * rebuilt by the next Catalog.open (the generation changed).
 */
import { join, resolve } from 'node:path';
import { type CodeInput, toPackedCode, validateBits } from './codes.js';
import { IndexParamError } from './errors.js';
import { decodeHalf, encodeHalf, halfView } from './float16.js';
import { acquireLock } from './lock.js';
import { DB_FILE } from './persist.js';
import { checkEmbedding, checkOod, type LabelScore, normaliseLabels, type OodScore } from './records.js';
import { openStore } from './integrity.js';
import type { ImageStore } from './store.js';
import { SketchProjection } from './sketch.js';

export interface ReembedRow {
  id: number;
  source: string;
  sha256: string;
  /** The stored embedding (float16 precision), enough to recompute codes with a new autoencoder. */
  embedding: Float32Array;
}

export interface ReembedOutput {
  code: CodeInput;
  /** New embedding (new model); omit to keep the stored one (new autoencoder only). */
  embedding?: ArrayLike<number>;
  /** New predicted labels; omit to keep the stored ones. */
  labels?: readonly LabelScore[];
  /**
   * New out-of-distribution score; omitted, the stored one is kept when the embedding is (same
   * model) and cleared when a new embedding comes (another model's score would be judged wrongly).
   */
  ood?: OodScore;
}

export interface ReembedOptions {
  modelHash: string;
  codesHash: string;
  /** New code length if the autoencoder's differs. */
  bits?: number;
  /**
   * Also recompute rows whose out-of-distribution score is missing or on another basis than this
   * one (rows from before schema 3, or scored before a re-fit of class means): re-running the same
   * model scores them. Omitted (new autoencoder only), the scores are left as they are.
   */
  oodBasis?: string;
  /** Null = the image cannot be recomputed (its source file is gone). */
  compute: (row: ReembedRow) => Promise<ReembedOutput | null>;
  dropUnavailable?: boolean;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ReembedReport {
  updated: number;
  removed: number;
  /** Ids left with the old vectors (compute returned null and dropUnavailable was off). */
  unavailable: number[];
  /** True when every row now carries the new hashes and the meta switched to them. */
  complete: boolean;
}

export async function reembed(dir: string, opts: ReembedOptions): Promise<ReembedReport> {
  const abs = resolve(dir);
  const release = acquireLock(abs);
  let store: ImageStore;
  try {
    store = openStore(join(abs, DB_FILE), {});
  } catch (err) {
    release();
    throw err;
  }
  try {
    const meta = store.meta();
    const bits = opts.bits === undefined ? meta.bits : validateBits(opts.bits);
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new IndexParamError('batchSize', batchSize, 'a positive integer');
    const db = store.handle;
    const pending = db
      .prepare('SELECT id FROM images WHERE model_hash != ? OR code_model_hash != ? OR (? IS NOT NULL AND ood_basis IS NOT ?) ORDER BY id')
      .pluck()
      .all(opts.modelHash, opts.codesHash, opts.oodBasis ?? null, opts.oodBasis ?? null) as number[];
    const getRow = db.prepare<[number], { id: number; source: string; sha256: string; vector: Buffer }>(
      'SELECT i.id, i.source, i.sha256, e.vector FROM images i JOIN embeddings e ON e.id = i.id WHERE i.id = ?',
    );
    const update = db.prepare(
      `UPDATE images SET code = @code, labels = coalesce(@labels, labels), top_label = CASE WHEN @labels IS NULL THEN top_label ELSE @top END,
       model_hash = @modelHash, code_model_hash = @codesHash, updated_at = @now WHERE id = @id`,
    );
    const updateEmb = db.prepare<[Buffer, number]>('UPDATE embeddings SET vector = ? WHERE id = ?');
    const updateSketch = db.prepare<[Buffer, number]>('UPDATE images SET sketch = ? WHERE id = ?');
    const updateOod = db.prepare<[number | null, string | null, number]>('UPDATE images SET ood_score = ?, ood_basis = ? WHERE id = ?');
    const sketch = new SketchProjection(meta.embeddingDim, meta.sketchDim, meta.sketchSeed);
    const report: ReembedReport = { updated: 0, removed: 0, unavailable: [], complete: false };
    opts.onProgress?.(0, pending.length);
    for (let start = 0; start < pending.length; start += batchSize) {
      const batch: { id: number; out: ReembedOutput | null }[] = [];
      for (const id of pending.slice(start, start + batchSize)) {
        const row = getRow.get(id);
        if (!row) continue;
        const out = await opts.compute({ id, source: row.source, sha256: row.sha256, embedding: decodeHalf(halfView(row.vector)) });
        batch.push({ id, out });
      }
      store.transaction(() => {
        const now = new Date().toISOString();
        for (const { id, out } of batch) {
          if (out === null) {
            if (opts.dropUnavailable) {
              if (store.deleteById(id)) report.removed++;
            } else report.unavailable.push(id);
            continue;
          }
          const code = toPackedCode(out.code, bits, `code of image ${id}`);
          const labels = out.labels === undefined ? null : normaliseLabels(out.labels);
          update.run({ id, code: Buffer.from(code), labels: labels && JSON.stringify(labels), top: labels?.[0]?.label ?? null, modelHash: opts.modelHash, codesHash: opts.codesHash, now });
          if (out.embedding !== undefined) {
            const halves = encodeHalf(checkEmbedding(out.embedding, meta.embeddingDim, `embedding of image ${id}`));
            updateEmb.run(Buffer.from(halves.buffer), id);
            updateSketch.run(sketch.encode(out.embedding), id);
          }
          if (out.ood !== undefined || out.embedding !== undefined) {
            const ood = checkOod(out.ood, `ood of image ${id}`);
            updateOod.run(ood?.score ?? null, ood?.basis ?? null, id);
          }
          report.updated++;
        }
        store.bumpGeneration();
      });
      opts.onProgress?.(Math.min(start + batchSize, pending.length), pending.length);
    }
    if (report.unavailable.length === 0) {
      store.setMeta({ modelHash: opts.modelHash, codesHash: opts.codesHash, bits });
      report.complete = true;
    }
    return report;
  } finally {
    store.close();
    release();
  }
}
