/**
 * The index facade: SQLite (truth) + the in-memory code matrix + the HNSW graph + its files.
 *
 * Write path: a row is committed to SQLite first, then mirrored into the matrix and the graph; the
 * graph is saved after a quiet period (debounce), on flush() and on close(), never per add, because
 * each save rewrites the whole file. At open the graph file is trusted only if its sidecar proves
 * it reflects exactly the database (generation, row fingerprint, size, CRC, element count, spot
 * checks); otherwise it is rebuilt from SQLite, so a crash can lose at most a rebuild's time.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { codeWords, toPackedCode, type CodeInput } from './codes.js';
import { checkWalBeforeOpen, openStore } from './integrity.js';
import { findDuplicates, findDuplicatesAsync, type DuplicateGroup, type DuplicateOptions } from './duplicates.js';
import { IndexMissingError, IndexParamError, IndexReadOnlyError, IndexStorageFullError, isStorageFull } from './errors.js';
import { decodeHalf } from './float16.js';
import { CodeHnsw } from './hnsw.js';
import { listImages, type ListOptions, type ListPage } from './listing.js';
import { loadRows, type LabelTable } from './loader.js';
import { acquireLock } from './lock.js';
import { DB_FILE, HNSW_FILE, removeStaleTemps, SIDECAR_FILE } from './persist.js';
import { type AddResult, type ImageRecord, type NewImage, prepareImage } from './records.js';
import { search, type SearchContext, type SearchOptions, type SearchQuery, type SearchResult } from './search.js';
import type { ImageStore, StoreMeta } from './store.js';
import {
  buildGraph,
  type CatalogOptions,
  type CatalogStats,
  checkHashes,
  lostSinceSave,
  type OpenReport,
  resolveOptions,
  type ResolvedOptions,
  saveGraph,
  tryLoadGraph,
} from './catalog-support.js';
import type { CodeMatrix } from './scan.js';
import type { Fingerprint } from './fingerprint.js';
import { SketchProjection } from './sketch.js';

export type { CatalogOptions, CatalogStats, OpenReport } from './catalog-support.js';

export class Catalog implements SearchContext {
  private saveTimer: NodeJS.Timeout | undefined;
  private firstDirtyAt = 0;
  private dirty = false;
  private closed = false;
  /** Set when a mirror update failed; see mirror(). */
  private broken = false;
  private readonly queryBuf: Float32Array;
  /** The projection behind the rows' sketches (seed and size from the database's meta). */
  readonly sketch: SketchProjection;

  private constructor(
    readonly dir: string,
    readonly store: ImageStore,
    readonly matrix: CodeMatrix,
    private readonly labels: LabelTable,
    private readonly fingerprint: Fingerprint,
    public hnsw: CodeHnsw,
    private readonly opts: ResolvedOptions,
    private readonly releaseLock: () => void,
    readonly openReport: OpenReport,
  ) {
    const meta = store.meta();
    this.queryBuf = new Float32Array(meta.embeddingDim);
    this.sketch = new SketchProjection(meta.embeddingDim, meta.sketchDim, meta.sketchSeed);
  }

  /** Opens (creating when needed) the index in `dir`; rebuilds the graph from SQLite if it cannot be trusted. */
  static async open(dir: string, options: CatalogOptions = {}): Promise<Catalog> {
    const opts = resolveOptions(options);
    const abs = resolve(dir);
    const dbPath = join(abs, DB_FILE);
    const exists = existsSync(dbPath);
    if (!exists && (opts.readOnly || !opts.create)) throw new IndexMissingError(abs);
    if (!opts.readOnly) mkdirSync(abs, { recursive: true });
    // A reader takes no lock: SQLite (WAL) lets it read beside the writer, and graph files are
    // replaced by rename, so it sees either the old or the new one whole.
    const release = opts.readOnly ? (): void => undefined : acquireLock(abs);
    let store: ImageStore | undefined;
    try {
      const removedTemps = opts.readOnly ? [] : removeStaleTemps(abs);
      // Before SQLite recovers the WAL: afterwards what it dropped can no longer be counted.
      const warnings = opts.readOnly || !exists ? [] : checkWalBeforeOpen(dbPath);
      store = openStore(dbPath, opts.readOnly ? { readonly: true } : { init: () => opts.init(abs) });
      checkHashes(abs, store.meta(), opts);
      const { matrix, labels, fingerprint } = loadRows(store);
      const meta = store.meta();
      const lost = lostSinceSave(abs, meta.generation, matrix.size);
      if (lost) warnings.push(lost);
      let report: OpenReport = { rebuilt: false, removedTemps, warnings };
      let saved = true;
      let hnsw = opts.forceRebuild ? 'rebuild requested' : tryLoadGraph(abs, meta, matrix, fingerprint.toString(), opts.hnsw);
      if (typeof hnsw === 'string') {
        // An empty database has nothing to rebuild; its first graph is written all the same.
        report = { rebuilt: matrix.size > 0, reason: hnsw, removedTemps, warnings };
        hnsw = await buildGraph(matrix, meta.bits, opts.hnsw, opts.onProgress);
        if (!opts.readOnly) saved = trySave(() => saveGraph(abs, hnsw as CodeHnsw, meta, fingerprint.toString()), warnings);
      }
      const cat = new Catalog(abs, store, matrix, labels, fingerprint, hnsw, opts, release, report);
      if (!saved) cat.markDirty(); // retried by the background save, flush() and close()
      return cat;
    } catch (err) {
      store?.close();
      release();
      throw err;
    }
  }

  get readOnly(): boolean {
    return this.opts.readOnly;
  }

  get bits(): number {
    return this.matrix.bits;
  }

  get embeddingDim(): number {
    return this.store.meta().embeddingDim;
  }

  get scanThreshold(): number {
    return this.opts.scanThreshold;
  }

  get filterScanFraction(): number {
    return this.opts.filterScanFraction;
  }

  get meta(): StoreMeta {
    return this.store.meta();
  }

  labelIndex(label: string): number | undefined {
    return this.labels.indexOf(label);
  }

  labelCount(index: number): number {
    return this.labels.count(index);
  }

  add(image: NewImage): AddResult {
    return this.addMany([image])[0] as AddResult;
  }

  /** One SQLite transaction for the batch (all or nothing), then the in-memory mirrors. */
  addMany(images: readonly NewImage[]): AddResult[] {
    this.assertWritable('add images');
    if (!Array.isArray(images)) throw new IndexParamError('images', images, 'an array of images');
    const { bits, embeddingDim } = this.store.meta();
    const prepared = images.map((img) => prepareImage(img, bits, embeddingDim, this.sketch));
    // Graph memory is allocated before the commit: if it cannot grow, nothing is written.
    this.hnsw.reserve(prepared.filter((p) => !this.hnsw.hasCode(p.code)).length);
    let results: AddResult[];
    try {
      results = this.store.insertMany(prepared);
    } catch (err) {
      // The transaction rolled back: nothing was written. A full disk is the caller's to report as such.
      if (isStorageFull(err)) throw new IndexStorageFullError('add images', (err as Error).message);
      throw err;
    }
    const words = new Uint32Array(bits >>> 5);
    this.mirror(() =>
      results.forEach((r, i) => {
        if (r.existed || this.matrix.has(r.id)) return;
        const p = prepared[i] as (typeof prepared)[number];
        const label = this.labels.intern(p.topLabel);
        this.hnsw.add(r.id, p.code);
        this.matrix.set(r.id, p.code, label, p.sketch);
        this.labels.inc(label, 1);
        this.fingerprint.add(r.id, codeWords(p.code, words));
      }),
    );
    if (results.some((r) => !r.existed)) this.markDirty();
    return results;
  }

  remove(id: number): boolean {
    this.assertWritable('delete images');
    checkId(id);
    const code = this.matrix.code(id);
    if (!this.store.deleteById(id)) return false;
    if (code) {
      this.mirror(() => {
        this.hnsw.remove(id, code);
        this.labels.inc(this.matrix.labelOf(id), -1);
        this.fingerprint.remove(id, codeWords(code));
        this.matrix.delete(id);
      });
    }
    this.markDirty();
    return true;
  }

  /**
   * Applies a committed change to the in-memory mirrors. If that fails (out of memory in hnswlib),
   * SQLite already has the change, so the mirrors can no longer be trusted: the saved sidecar is
   * removed and saving stops, which makes the next open rebuild from SQLite.
   */
  private mirror(apply: () => void): void {
    try {
      apply();
    } catch (err) {
      this.broken = true;
      this.clearTimer();
      rmSync(join(this.dir, SIDECAR_FILE), { force: true });
      throw err;
    }
  }

  get(id: number): ImageRecord | undefined {
    checkId(id);
    return this.store.get(id);
  }

  /** Id of the image whose bytes have this sha256 (hex), if stored. */
  findBySha256(sha256: string): number | undefined {
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new IndexParamError('sha256', sha256, '64 hex digits');
    return this.store.idBySha256(sha256);
  }

  /** The stored embedding (float16 precision, as float32). */
  embedding(id: number): Float32Array | undefined {
    checkId(id);
    const halves = this.store.embeddingHalves(id);
    return halves && decodeHalf(halves);
  }

  search(query: SearchQuery, options: SearchOptions = {}): SearchResult {
    this.assertOpen();
    return search(this, query, options, this.queryBuf);
  }

  /** Exact Hamming top-k over all codes (ties by id): ground truth, independent of the graph. */
  scan(code: CodeInput, k: number): { ids: number[]; hamming: number[] } {
    if (!Number.isInteger(k) || k < 1) throw new IndexParamError('k', k, 'a positive integer');
    return this.matrix.topK(toPackedCode(code, this.bits), k);
  }

  /** A page of images in id order (keyset paging, filters in SQL: listing.ts). */
  list(options: ListOptions): ListPage {
    this.assertOpen();
    return listImages(this.store, options);
  }

  duplicates(options: DuplicateOptions = {}): DuplicateGroup[] {
    this.assertOpen();
    return findDuplicates(this, options);
  }

  /** The same groups, examined a few images at a time between turns of the event loop (a server's). */
  duplicatesAsync(options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
    this.assertOpen();
    return findDuplicatesAsync(this, options);
  }

  stats(): CatalogStats {
    const meta = this.store.meta();
    return {
      images: this.store.count(),
      indexSize: this.hnsw.size,
      distinctCodes: this.hnsw.codes,
      model: meta.modelHash,
      codeModel: meta.codesHash,
      bits: meta.bits,
      embeddingDim: meta.embeddingDim,
      generation: meta.generation,
      unsaved: this.dirty,
    };
  }

  /** Rebuilds the graph from the stored codes (new M / efConstruction apply) and saves it. */
  async rebuild(onProgress?: (done: number, total: number) => void): Promise<void> {
    this.assertWritable('rebuild the graph');
    const graph = await buildGraph(this.matrix, this.bits, this.opts.hnsw, onProgress ?? this.opts.onProgress);
    this.hnsw = graph;
    this.dirty = true;
    this.flush();
  }

  /** Writes the graph and its sidecar now if anything changed since the last save. */
  flush(): void {
    this.assertOpen();
    this.clearTimer();
    if (!this.dirty || this.broken || this.opts.readOnly) return;
    saveGraph(this.dir, this.hnsw, this.store.meta(), this.fingerprint.toString());
    this.dirty = false;
  }

  /**
   * Saves the graph if needed and closes. A failed save (a full disk) is reported through
   * onSaveError, not thrown: SQLite already holds every row, the old sidecar no longer matches its
   * generation, and the next open rebuilds the graph, so nothing is lost by closing anyway.
   */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch (err) {
      this.opts.onSaveError(err);
    } finally {
      this.closed = true;
      this.store.close();
      this.releaseLock();
    }
  }

  get hnswPath(): string {
    return join(this.dir, HNSW_FILE);
  }

  private markDirty(): void {
    const now = Date.now();
    if (!this.dirty) this.firstDirtyAt = now;
    this.dirty = true;
    const { saveDelayMs, saveMaxDelayMs } = this.opts;
    if (saveDelayMs === null) return;
    this.clearTimer();
    const delay = Math.max(0, Math.min(saveDelayMs, this.firstDirtyAt + saveMaxDelayMs - now));
    this.saveTimer = setTimeout(() => this.backgroundSave(), delay);
    this.saveTimer.unref();
  }

  private backgroundSave(): void {
    this.saveTimer = undefined;
    if (this.closed) return;
    try {
      this.flush();
    } catch (err) {
      this.opts.onSaveError(err);
    }
  }

  private clearTimer(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new IndexParamError('catalog', 'closed', 'open (it was closed)');
  }

  private assertWritable(operation: string): void {
    this.assertOpen();
    if (this.opts.readOnly) throw new IndexReadOnlyError(this.dir, operation);
  }
}

/** A graph that cannot be saved at open (a full disk) is served from memory; the save is retried later. */
function trySave(save: () => void, warnings: string[]): boolean {
  try {
    save();
    return true;
  } catch (err) {
    if (!isStorageFull(err)) throw err;
    warnings.push(`the rebuilt HNSW graph could not be saved (${(err as Error).message}); it is served from memory and saved once there is space`);
    return false;
  }
}

function checkId(id: unknown): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw new IndexParamError('id', id, 'a positive integer');
}

export function openCatalog(dir: string, options: CatalogOptions = {}): Promise<Catalog> {
  return Catalog.open(dir, options);
}
