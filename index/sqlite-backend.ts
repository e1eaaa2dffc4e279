/**
 * The embedded backend: today's Catalog (SQLite truth + in-memory code matrix + hnswlib graph)
 * behind the async storage port, unchanged. Every call runs synchronously inside the promise, as
 * the catalog always did, so the behaviour (and the latency) of `npm start` stays what it was.
 */
import type { BackendMeta, BackendOpenReport, BackendStats, CatalogBackend } from './backend.js';
import { Catalog, type CatalogOptions } from './catalog.js';
import type { DuplicateGroup, DuplicateOptions } from './duplicates.js';
import type { ListOptions, ListPage } from './listing.js';
import type { AddResult, ImageRecord, NewImage } from './records.js';
import type { SearchOptions, SearchQuery, SearchResult } from './search.js';
import type { CopyRecord } from './store.js';

export class SqliteBackend implements CatalogBackend {
  readonly kind = 'sqlite';

  constructor(readonly catalog: Catalog) {}

  static async open(dir: string, options: CatalogOptions = {}): Promise<SqliteBackend> {
    return new SqliteBackend(await Catalog.open(dir, options));
  }

  get location(): string {
    return this.catalog.dir;
  }

  get meta(): BackendMeta {
    const m = this.catalog.meta;
    return { bits: m.bits, embeddingDim: m.embeddingDim, modelHash: m.modelHash, codesHash: m.codesHash };
  }

  get readOnly(): boolean {
    return this.catalog.readOnly;
  }

  get openReport(): BackendOpenReport {
    return this.catalog.openReport;
  }

  async count(): Promise<number> {
    return this.catalog.stats().images;
  }

  async generation(): Promise<number> {
    return this.catalog.meta.generation;
  }

  async list(options: ListOptions): Promise<ListPage> {
    return this.catalog.list(options);
  }

  async stats(): Promise<BackendStats> {
    const s = this.catalog.stats();
    return { images: s.images, indexSize: s.indexSize, model: s.model, codeModel: s.codeModel, bits: s.bits, embeddingDim: s.embeddingDim, generation: s.generation };
  }

  async add(image: NewImage): Promise<AddResult> {
    return this.catalog.add(image);
  }

  async addMany(images: readonly NewImage[]): Promise<AddResult[]> {
    return this.catalog.addMany(images);
  }

  async remove(id: number): Promise<boolean> {
    return this.catalog.remove(id);
  }

  async get(id: number): Promise<ImageRecord | undefined> {
    return this.catalog.get(id);
  }

  async findBySha256(sha256: string): Promise<number | undefined> {
    return this.catalog.findBySha256(sha256);
  }

  async embedding(id: number): Promise<Float32Array | undefined> {
    return this.catalog.embedding(id);
  }

  async search(query: SearchQuery, options: SearchOptions = {}): Promise<SearchResult> {
    return this.catalog.search(query, options);
  }

  async duplicates(options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
    return this.catalog.duplicatesAsync(options);
  }

  async copies(): Promise<CopyRecord[]> {
    return this.catalog.store.allCopies();
  }

  /** A local file: nothing to reach. */
  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.catalog.close();
  }
}
