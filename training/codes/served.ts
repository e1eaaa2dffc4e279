/**
 * A real catalog (SQLite + code matrix + HNSW, index/) in a temporary folder, filled with the
 * evaluation database, so that the "served" numbers go through exactly the search the server runs.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCatalog, sha256Hex, type Catalog, type NewImage } from '../../index/index.js';
import { topK } from '../../model/index.js';

export interface ServedIndex {
  catalog: Catalog;
  dir: string;
  /** Database index of each catalog id (ids are assigned in insertion order). */
  indexOf(id: number): number;
  /**
   * Closes the catalog (SQLite checkpoints and removes its WAL) and deletes the folder; returns the
   * bytes per image of everything the index kept on disk (database, HNSW graph, sidecar).
   */
  close(): number;
}

export interface ServedInput {
  n: number;
  dim: number;
  bits: number;
  embeddings: Float32Array;
  codes: Uint8Array;
  /** n × k class probabilities; the top 5 are stored as an image's labels, as the gallery does. */
  probabilities: Float32Array;
  labels: readonly string[];
  modelHash: string;
  codesHash: string;
  /** Source name prefix of the rows (e.g. 'fashion-mnist/train'). */
  source: string;
  /** Width and height recorded for every image. */
  imageSize: number;
}

const STORED_LABELS = 5;
const CHUNK = 1000;

export async function buildServedIndex(input: ServedInput, onProgress?: (done: number, total: number) => void, parent = tmpdir()): Promise<ServedIndex> {
  const dir = mkdtempSync(join(parent, 'sightline-eval-index-'));
  const catalog = await openCatalog(dir, { bits: input.bits, embeddingDim: input.dim, modelHash: input.modelHash, codesHash: input.codesHash, saveDelayMs: null });
  const ids = new Int32Array(input.n);
  const byteCode = input.bits >>> 3;
  const k = input.labels.length;
  try {
    for (let start = 0; start < input.n; start += CHUNK) {
      const batch: NewImage[] = [];
      for (let i = start; i < Math.min(input.n, start + CHUNK); i++) {
        const source = `${input.source}/${i}`;
        const probs = input.probabilities.subarray(i * k, (i + 1) * k);
        batch.push({
          source,
          // Fashion-MNIST holds byte-identical images; rows are keyed by position, not by pixels.
          sha256: sha256Hex(Buffer.from(source)),
          width: input.imageSize,
          height: input.imageSize,
          labels: topK(probs, STORED_LABELS, input.labels).map((p) => ({ label: p.label, probability: Math.min(1, p.probability) })),
          code: input.codes.subarray(i * byteCode, (i + 1) * byteCode),
          embedding: input.embeddings.subarray(i * input.dim, (i + 1) * input.dim),
        });
      }
      catalog.addMany(batch).forEach((r, j) => {
        ids[start + j] = r.id;
      });
      onProgress?.(Math.min(input.n, start + CHUNK), input.n);
    }
    catalog.flush();
  } catch (err) {
    catalog.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const index = new Map<number, number>();
  ids.forEach((id, i) => index.set(id, i));
  return {
    catalog,
    dir,
    indexOf(id) {
      const i = index.get(id);
      if (i === undefined) throw new Error(`catalog id ${id} is not an evaluation image`);
      return i;
    },
    close() {
      catalog.close();
      const total = readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
      rmSync(dir, { recursive: true, force: true });
      return total / Math.max(1, input.n);
    },
  };
}
