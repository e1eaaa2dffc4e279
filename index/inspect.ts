/**
 * Read-only views for admin commands (`sightline stats`, `sightline duplicates`). They take no
 * writer lock and never touch the graph file, so they run beside a live server: SQLite's WAL lets
 * a reader see the last committed state while the writer works.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join, resolve } from 'node:path';
import { findDuplicates, type DuplicateGroup, type DuplicateOptions } from './duplicates.js';
import { IndexMissingError } from './errors.js';
import { decodeHalf } from './float16.js';
import { loadRows } from './loader.js';
import type { SearchContext } from './search.js';
import { SketchProjection } from './sketch.js';
import { DB_FILE, readSidecar } from './persist.js';
import { openStore } from './integrity.js';
import type { ImageStore } from './store.js';
import type { CatalogBackend } from './backend.js';

export interface IndexSummary {
  dir: string;
  images: number;
  /** Live elements in the saved graph file (0 when there is none). */
  indexSize: number;
  model: string;
  codeModel: string;
  bits: number;
  embeddingDim: number;
  generation: number;
  /** Generation the saved graph reflects, null without a readable sidecar. */
  indexGeneration: number | null;
  /** False when the saved graph lags the database (a writer has unsaved changes, or it needs a rebuild). */
  indexCurrent: boolean;
}

function openReadOnly(dir: string): { abs: string; store: ImageStore } {
  const abs = resolve(dir);
  const path = join(abs, DB_FILE);
  if (!existsSync(path)) throw new IndexMissingError(abs);
  return { abs, store: openStore(path, { readonly: true }) };
}

export function inspectIndex(dir: string): IndexSummary {
  const { abs, store } = openReadOnly(dir);
  try {
    const meta = store.meta();
    const sc = readSidecar(abs);
    const side = typeof sc === 'string' ? undefined : sc;
    return {
      dir: abs,
      images: store.count(),
      indexSize: side?.count ?? 0,
      model: meta.modelHash,
      codeModel: meta.codesHash,
      bits: meta.bits,
      embeddingDim: meta.embeddingDim,
      generation: meta.generation,
      indexGeneration: side?.generation ?? null,
      indexCurrent: side !== undefined && side.generation === meta.generation,
    };
  } finally {
    store.close();
  }
}

export interface DuplicateMember {
  id: number;
  source: string;
}

export interface DuplicateReport extends DuplicateGroup {
  members: DuplicateMember[];
}

/** An indexed image and the other paths whose bytes had the same SHA-256 (skipped at index time). */
export interface ExactCopies {
  id: number;
  source: string;
  copies: string[];
}

export interface DuplicatesReport {
  groups: DuplicateReport[];
  exact: ExactCopies[];
}

export function findDuplicatesIn(dir: string, options: DuplicateOptions = {}): DuplicatesReport {
  const { store } = openReadOnly(dir);
  try {
    const meta = store.meta();
    const { matrix, labels } = loadRows(store);
    // The exact scan only: a read-only tool never builds the graph.
    const ctx: SearchContext = {
      bits: meta.bits, embeddingDim: meta.embeddingDim, matrix, hnsw: undefined, store,
      sketch: new SketchProjection(meta.embeddingDim, meta.sketchDim, meta.sketchSeed),
      scanThreshold: Infinity, filterScanFraction: 0, labelIndex: (l) => labels.indexOf(l), labelCount: (i) => labels.count(i),
    };
    const groups = findDuplicates(ctx, options).map((g) => ({ ...g, members: g.ids.map((id) => ({ id, source: store.summary(id)?.source ?? '?' })) }));
    const byImage = new Map<number, string[]>();
    for (const c of store.allCopies()) byImage.set(c.imageId, [...(byImage.get(c.imageId) ?? []), c.source]);
    const exact = [...byImage].map(([id, copies]) => ({ id, source: store.summary(id)?.source ?? '?', copies }));
    return { groups, exact };
  } finally {
    store.close();
  }
}

/**
 * The codes-model hash (or fallback code name) a catalog in `dir` records, read straight from its
 * meta table: no integrity check, no lock, so it is cheap enough to ask before the real open.
 * Undefined when there is no readable database.
 */
export function recordedCodesHash(dir: string): string | undefined {
  const path = join(resolve(dir), DB_FILE);
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    return db.prepare<[], string>("SELECT value FROM meta WHERE key = 'code_model_hash'").pluck().get();
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

export interface CatalogEmbeddings {
  n: number;
  dim: number;
  /** n × dim, in id order (float16 precision, as stored). */
  embeddings: Float32Array;
  /** The image model the embeddings come from (SHA-256), as the catalog records it. */
  modelHash: string;
  /** The code the catalog uses now (a codes-model hash or the fallback's name). */
  codesHash: string;
}

/** Every stored embedding (the first `limit` by id), read-only: what `train-codes --db` learns from. */
export function catalogEmbeddings(dir: string, limit?: number): CatalogEmbeddings {
  const { store } = openReadOnly(dir);
  try {
    const meta = store.meta();
    const n = Math.min(store.count(), limit ?? Infinity);
    const dim = meta.embeddingDim;
    const embeddings = new Float32Array(n * dim);
    let i = 0;
    for (const halves of store.allEmbeddings()) {
      if (i >= n) break;
      embeddings.set(decodeHalf(halves), i * dim);
      i++;
    }
    return { n: i, dim, embeddings: embeddings.subarray(0, i * dim), modelHash: meta.modelHash, codesHash: meta.codesHash };
  } finally {
    store.close();
  }
}

/** The same report from any backend (PostgreSQL: the groups come from searches in the database). */
export async function backendDuplicates(cat: CatalogBackend, options: DuplicateOptions = {}): Promise<DuplicatesReport> {
  const sourceOf = async (id: number): Promise<string> => (await cat.get(id))?.source ?? '?';
  const groups: DuplicateReport[] = [];
  for (const g of await cat.duplicates(options)) groups.push({ ...g, members: await Promise.all(g.ids.map(async (id) => ({ id, source: await sourceOf(id) }))) });
  const byImage = new Map<number, string[]>();
  for (const c of await cat.copies()) byImage.set(c.imageId, [...(byImage.get(c.imageId) ?? []), c.source]);
  const exact: ExactCopies[] = [];
  for (const [id, copies] of byImage) exact.push({ id, source: await sourceOf(id), copies });
  return { groups, exact };
}
