/**
 * Opening a catalog from a `--db` location: a folder opens the embedded SQLite catalog, a
 * postgres:// URL the PostgreSQL backend (pg/open.ts).
 */
import type { CatalogBackend } from './backend.js';
import type { CatalogOptions } from './catalog.js';
import { recordedCodesHash } from './inspect.js';
import type { DbLocation } from './location.js';
import { openPostgres, recordedPostgresCodesHash } from './pg/open.js';
import { SqliteBackend } from './sqlite-backend.js';

export interface BackendOptions extends CatalogOptions {
  /** PostgreSQL only: most connections this process opens (default 10). */
  poolSize?: number;
}

export async function openBackend(location: DbLocation, options: BackendOptions = {}): Promise<CatalogBackend> {
  if (location.kind === 'sqlite') return SqliteBackend.open(location.dir, options);
  return openPostgres(location, options);
}

/**
 * The codes-model hash (or fallback code name) the catalog at `location` records, read without
 * opening it for writing; undefined when there is none yet (or it cannot be read: the real open
 * then reports why).
 */
export async function recordedCodesHashAt(location: DbLocation): Promise<string | undefined> {
  if (location.kind === 'sqlite') return recordedCodesHash(location.dir);
  return recordedPostgresCodesHash(location);
}
