/**
 * The catalog's option handling and its graph lifecycle: proving a saved graph current, rebuilding
 * it from the code matrix, and saving it with its sidecar.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { validateBits } from './codes.js';
import { type HashDifference, IndexModelMismatchError, IndexParamError } from './errors.js';
import { CodeHnsw, type HnswParams, validateHnswParams } from './hnsw.js';
import { atomicWrite, fileCrc32, HNSW_FILE, readSidecar, SIDECAR_FILE, type Sidecar } from './persist.js';
import type { CodeMatrix } from './scan.js';
import type { InitMeta, StoreMeta } from './store.js';

export interface CatalogOptions {
  /** Code length; required to create a database, checked against the stored one otherwise. */
  bits?: number;
  /** Embedding length for a new database (default 4096, AlexNet fc7). */
  embeddingDim?: number;
  /** Hash of the classification/embedding model; required to create, checked otherwise. */
  modelHash?: string;
  /** Hash of the autoencoder that makes the codes; required to create, checked otherwise. */
  codesHash?: string;
  M?: number;
  efConstruction?: number;
  efSearch?: number;
  /**
   * Collections with at most this many images are searched by the exact scan instead of HNSW
   * (default 100,000). Measured (`npm run bench -- index`, 128 bits, k = 100, 2-core machine): scan
   * 0.13 ms at 10k, 0.8 ms at 100k, 6–11 ms at 1M (linear); HNSW 0.14 / 0.39 / 0.4–0.8 ms. Up to
   * 100k both are small next to the re-rank (~1.6 ms), and the scan is exact, so it wins there;
   * beyond, its linear cost does not. (HNSW recall@10 on the bundled model's 60k real codes: 0.999,
   * with one graph node per distinct code, see hnsw.ts.)
   */
  scanThreshold?: number;
  /** Label filters that pass fewer than this fraction of images use the exact scan (default 0.1). */
  filterScanFraction?: number;
  /** Save the graph this long after the last change (default 2000 ms); null = only flush()/close(). */
  saveDelayMs?: number | null;
  /** ...but at most this long after the first unsaved change, under a steady stream of adds (default 30 s). */
  saveMaxDelayMs?: number;
  /** Create the directory and database if missing (default true). */
  create?: boolean;
  /** Ignore the saved graph and rebuild it from SQLite (`sightline reindex`). */
  forceRebuild?: boolean;
  /**
   * Open for reading only (default false): no lock, no writes, a stale graph is rebuilt in memory
   * and not saved. Safe beside a running server, which holds the write lock (`sightline search`).
   */
  readOnly?: boolean;
  /** Rebuild progress. */
  onProgress?: (done: number, total: number) => void;
  /** Background save failures (default: a process warning); the next flush retries. */
  onSaveError?: (err: unknown) => void;
}

export interface OpenReport {
  /** True when the HNSW file was missing, stale or corrupt and was rebuilt from SQLite (false for an empty database). */
  rebuilt: boolean;
  /** Why the file was not used (present when rebuilt). */
  reason?: string;
  /** Temp files of an interrupted save that were removed. */
  removedTemps: string[];
  /** What was repaired or lost at open (damaged WAL, rows gone since the last save): log at warn level. */
  warnings: string[];
}

export interface CatalogStats {
  images: number;
  /** Images reachable through the HNSW graph (equals `images` when consistent). */
  indexSize: number;
  /** Distinct codes, i.e. graph nodes (images that share a code share a node). */
  distinctCodes: number;
  model: string;
  codeModel: string;
  bits: number;
  embeddingDim: number;
  generation: number;
  /** True when the graph has changes not yet written to index.hnsw. */
  unsaved: boolean;
}

export interface ResolvedOptions {
  hnsw: HnswParams;
  scanThreshold: number;
  filterScanFraction: number;
  saveDelayMs: number | null;
  saveMaxDelayMs: number;
  create: boolean;
  forceRebuild: boolean;
  readOnly: boolean;
  onProgress: ((done: number, total: number) => void) | undefined;
  onSaveError: (err: unknown) => void;
  expected: { bits?: number; modelHash?: string; codesHash?: string };
  init(dir: string): InitMeta;
}

function nonNegInt(name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new IndexParamError(name, v, 'an integer ≥ 0');
  return v;
}

function hash(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 200) throw new IndexParamError(name, v, 'a non-empty string of at most 200 characters');
  return v;
}

/** AlexNet's fc7 width. index/ does not import model/; the server and CLI always pass their model's width. */
const DEFAULT_EMBEDDING_DIM = 4096;

export function resolveOptions(o: CatalogOptions): ResolvedOptions {
  const bits = o.bits === undefined ? undefined : validateBits(o.bits);
  const modelHash = hash('modelHash', o.modelHash);
  const codesHash = hash('codesHash', o.codesHash);
  const embeddingDim = o.embeddingDim ?? DEFAULT_EMBEDDING_DIM;
  if (!Number.isInteger(embeddingDim) || embeddingDim < 1 || embeddingDim > 65536) throw new IndexParamError('embeddingDim', embeddingDim, 'an integer in [1, 65536]');
  const fraction = o.filterScanFraction ?? 0.1;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) throw new IndexParamError('filterScanFraction', fraction, 'a number in [0, 1]');
  const saveDelayMs = o.saveDelayMs === null ? null : nonNegInt('saveDelayMs', o.saveDelayMs, 2000);
  return {
    hnsw: validateHnswParams({ M: o.M, efConstruction: o.efConstruction, efSearch: o.efSearch }),
    scanThreshold: nonNegInt('scanThreshold', o.scanThreshold, 100_000),
    filterScanFraction: fraction,
    saveDelayMs,
    saveMaxDelayMs: nonNegInt('saveMaxDelayMs', o.saveMaxDelayMs, 30_000),
    create: o.create ?? true,
    forceRebuild: o.forceRebuild ?? false,
    readOnly: o.readOnly ?? false,
    onProgress: o.onProgress,
    onSaveError: o.onSaveError ?? ((err) => process.emitWarning(`index: saving the HNSW graph failed: ${(err as Error).message}`)),
    expected: { bits, modelHash, codesHash },
    init(dir) {
      if (bits === undefined) throw new IndexParamError('bits', undefined, `set to create a new index in '${dir}' (64, 128 or 256)`);
      if (modelHash === undefined) throw new IndexParamError('modelHash', undefined, `set to create a new index in '${dir}'`);
      if (codesHash === undefined) throw new IndexParamError('codesHash', undefined, `set to create a new index in '${dir}'`);
      return { bits, embeddingDim, modelHash, codesHash };
    },
  };
}

/** Options left undefined adopt the stored values (admin tools); given ones must match. */
export function checkHashes(dir: string, meta: StoreMeta, opts: ResolvedOptions): void {
  const { bits, modelHash, codesHash } = opts.expected;
  const diffs: HashDifference[] = [];
  if (modelHash !== undefined && modelHash !== meta.modelHash) diffs.push({ field: 'model', stored: meta.modelHash, loaded: modelHash });
  if (codesHash !== undefined && codesHash !== meta.codesHash) diffs.push({ field: 'code model', stored: meta.codesHash, loaded: codesHash });
  if (bits !== undefined && bits !== meta.bits) diffs.push({ field: 'bits', stored: String(meta.bits), loaded: String(bits) });
  if (diffs.length > 0) throw new IndexModelMismatchError(dir, diffs);
}

/**
 * The sidecar records the generation and row count of the last save. A database *behind* it lost
 * committed changes since (a damaged or deleted WAL, a restored older copy): say how many.
 */
export function lostSinceSave(dir: string, generation: number, rows: number): string | undefined {
  const sc = readSidecar(dir);
  if (typeof sc === 'string' || sc.generation <= generation) return undefined;
  const fewer = sc.count - rows;
  return (
    `database is at generation ${generation} but the index was saved at generation ${sc.generation}: ` +
    `${sc.generation - generation} committed changes are lost (${sc.count} images then, ${rows} now${fewer > 0 ? `: ${fewer} fewer` : ''}); the index is rebuilt from the database`
  );
}

/** Returns the saved graph if it provably reflects the database, else the reason it does not. */
export function tryLoadGraph(dir: string, meta: StoreMeta, matrix: CodeMatrix, fingerprint: string, params: HnswParams): CodeHnsw | string {
  const sc = readSidecar(dir);
  if (typeof sc === 'string') return sc;
  if (sc.generation !== meta.generation) return `stale: index generation ${sc.generation}, database generation ${meta.generation}`;
  if (sc.bits !== meta.bits || sc.modelHash !== meta.modelHash || sc.codesHash !== meta.codesHash) return 'index was built for other codes';
  if (sc.count !== matrix.size || sc.fingerprint !== fingerprint) return `index rows differ from the database (${sc.count} vs ${matrix.size} rows)`;
  const path = join(dir, HNSW_FILE);
  if (!existsSync(path)) return 'index file missing';
  const sum = fileCrc32(path);
  if (sum.bytes !== sc.bytes || sum.crc32 !== sc.crc32) return `index file corrupt (size ${sum.bytes}/${sc.bytes}, crc ${sum.crc32}/${sc.crc32})`;
  let graph: CodeHnsw | string;
  try {
    graph = CodeHnsw.load(path, meta.bits, { ...params, M: sc.M, efConstruction: sc.efConstruction }, matrix);
  } catch (err) {
    return `index file unreadable (${(err as Error).message})`;
  }
  if (typeof graph === 'string') return graph;
  if (graph.slots !== sc.slots) return `index element count ${graph.slots}, sidecar says ${sc.slots}`;
  // Every image was attached to the node of its code by load(); spot-check that the vectors are exact.
  const probes = Math.min(matrix.size, 32);
  for (let i = 0; i < probes; i++) {
    const row = Math.floor((i * matrix.size) / probes);
    if (!graph.holds(matrix.idAt(row), matrix.codeAt(row))) return `index vector of image ${matrix.idAt(row)} differs from the database`;
  }
  return graph;
}

/**
 * Builds a graph from the matrix, yielding to the event loop every 1024 rows (progress bars
 * redraw, signals are handled). Rows added or removed meanwhile are reconciled at the end.
 */
export async function buildGraph(matrix: CodeMatrix, bits: number, params: HnswParams, onProgress?: (done: number, total: number) => void): Promise<CodeHnsw> {
  const total = matrix.size;
  const ids = Array.from({ length: total }, (_, r) => matrix.idAt(r));
  const graph = CodeHnsw.create(bits, params, Math.ceil(total * 1.25) + 64);
  const added = new Map<number, Uint8Array>();
  onProgress?.(0, total);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    const code = matrix.code(id);
    if (code) {
      graph.add(id, code);
      added.set(id, code);
    }
    if ((i + 1) % 1024 === 0) {
      onProgress?.(i + 1, total);
      await yieldToLoop();
    }
  }
  for (let r = 0; r < matrix.size; r++) {
    const id = matrix.idAt(r);
    if (!added.delete(id)) graph.add(id, matrix.codeAt(r));
  }
  // What is left in `added` was deleted while we were building.
  for (const [id, code] of added) graph.remove(id, code);
  onProgress?.(total, total);
  return graph;
}

/** Graph first, sidecar last: the sidecar's rename is the commit point (see persist.ts). */
export function saveGraph(dir: string, graph: CodeHnsw, meta: StoreMeta, fingerprint: string): void {
  let sum = { bytes: 0, crc32: 0 };
  atomicWrite(join(dir, HNSW_FILE), (tmp) => {
    graph.writeSync(tmp);
    sum = fileCrc32(tmp);
  });
  const sidecar: Sidecar = {
    format: 1,
    generation: meta.generation,
    bits: meta.bits,
    modelHash: meta.modelHash,
    codesHash: meta.codesHash,
    count: graph.size,
    slots: graph.slots,
    M: graph.params.M,
    efConstruction: graph.params.efConstruction,
    fingerprint,
    bytes: sum.bytes,
    crc32: sum.crc32,
    savedAt: new Date().toISOString(),
  };
  atomicWrite(join(dir, SIDECAR_FILE), `${JSON.stringify(sidecar, null, 2)}\n`);
}
