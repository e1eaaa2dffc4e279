/**
 * The storage port: what the server's services and the CLI commands need from a catalog, whatever
 * holds it. Two implementations: the embedded SQLite + hnswlib catalog (sqlite-backend.ts, the
 * default) and PostgreSQL (pg/backend.ts), chosen by the `--db` value (location.ts).
 *
 * Async because PostgreSQL is a network round trip; the SQLite adapter resolves at once. Only
 * what callers use is here (grep `catalog.` in server/ and cli/): maintenance that only one engine
 * has (graph rebuild, re-embedding in place) stays on that engine's own type.
 */
import type { DuplicateGroup, DuplicateOptions } from './duplicates.js';
import type { ListOptions, ListPage } from './listing.js';
import type { AddResult, ImageRecord, NewImage } from './records.js';
import type { SearchOptions, SearchQuery, SearchResult } from './search.js';
import type { CopyRecord } from './store.js';

/** What a catalog is bound to: fixed for its lifetime (a change is an offline re-embedding). */
export interface BackendMeta {
  bits: number;
  embeddingDim: number;
  /** SHA-256 of the image model the embeddings come from. */
  modelHash: string;
  /** The codes model's SHA-256, or the fallback code's name. */
  codesHash: string;
}

export interface BackendStats {
  images: number;
  /** Images reachable by the candidate engine (the HNSW graph, or every row for a database scan). */
  indexSize: number;
  model: string;
  codeModel: string;
  bits: number;
  embeddingDim: number;
  /** Bumped by every committed add or delete. */
  generation: number;
}

/** What opening found and repaired: log each warning. */
export interface BackendOpenReport {
  /** The SQLite HNSW graph was rebuilt from the database (always false for PostgreSQL). */
  rebuilt: boolean;
  reason?: string;
  removedTemps: string[];
  warnings: string[];
}

export interface CatalogBackend {
  readonly kind: 'sqlite' | 'postgres';
  /** The folder, or the URL without its password: safe to print. */
  readonly location: string;
  readonly meta: BackendMeta;
  readonly readOnly: boolean;
  readonly openReport: BackendOpenReport;
  count(): Promise<number>;
  /** Bumped by every committed add or delete (what derived results are cached against). */
  generation(): Promise<number>;
  stats(): Promise<BackendStats>;
  /**
   * Adds one image; an image whose SHA-256 is stored already is not written again (`existed`),
   * also when another process or replica added it a moment before.
   */
  add(image: NewImage): Promise<AddResult>;
  /** All or nothing, in one transaction. */
  addMany(images: readonly NewImage[]): Promise<AddResult[]>;
  /** False when no such image was stored. */
  remove(id: number): Promise<boolean>;
  get(id: number): Promise<ImageRecord | undefined>;
  /** Id of the image whose bytes have this SHA-256 (hex). */
  findBySha256(sha256: string): Promise<number | undefined>;
  /** The stored embedding (float16 precision, as float32). */
  embedding(id: number): Promise<Float32Array | undefined>;
  search(query: SearchQuery, options?: SearchOptions): Promise<SearchResult>;
  /** A page of images in id order (keyset paging; label and unknown-image filters: listing.ts). */
  list(options: ListOptions): Promise<ListPage>;
  /** Near-duplicate groups; a server's event loop keeps turning while they are found. */
  duplicates(options?: DuplicateOptions): Promise<DuplicateGroup[]>;
  /** Other paths whose bytes had the SHA-256 of a stored image (skipped at index time), by image id. */
  copies(): Promise<CopyRecord[]>;
  /** Resolves when the store answers now (readiness); rejects with an `unavailable` error otherwise. */
  ping(): Promise<void>;
  /** Releases the files or connections; idempotent. */
  close(): Promise<void>;
}
