/**
 * Opening a PostgreSQL catalog: connect (pg.Pool, or any SqlClient such as PGlite), create or
 * migrate the schema (writable opens only), then check the stored model, code model and bits
 * against the loaded ones exactly as the SQLite catalog does (IndexModelMismatchError).
 */
import { checkHashes, resolveOptions } from '../catalog-support.js';
import type { CatalogBackend } from '../backend.js';
import type { DbLocation } from '../location.js';
import type { BackendOptions } from '../open.js';
import { poolClient, type SqlClient } from './client.js';
import { PostgresBackend } from './backend.js';
import { PgJobQueue } from './jobs.js';
import { migrate } from './schema.js';

type PgLocation = Extract<DbLocation, { kind: 'postgres' }>;

/** Opens the catalog over `db`; closes `db` when opening fails. */
export async function openPostgresWith(db: SqlClient, options: BackendOptions = {}): Promise<PostgresBackend> {
  try {
    const opts = resolveOptions(options);
    const meta = await migrate(db, opts.readOnly || !opts.create ? undefined : () => opts.init(db.display), opts.readOnly);
    checkHashes(db.display, meta, opts);
    return new PostgresBackend(db, meta, { readOnly: opts.readOnly, scanThreshold: opts.scanThreshold, filterScanFraction: opts.filterScanFraction, efSearch: opts.hnsw.efSearch });
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export async function openPostgres(location: PgLocation, options: BackendOptions = {}): Promise<PostgresBackend> {
  return openPostgresWith(poolClient(location.url, location.display, { max: options.poolSize ?? 10 }), options);
}

/** The stored codes-model hash, or undefined (no catalog yet, or unreachable: the real open says why). */
export async function recordedPostgresCodesHash(location: PgLocation): Promise<string | undefined> {
  const db = poolClient(location.url, location.display, { max: 1 });
  try {
    const t = (await db.query<{ t: string | null }>(`SELECT to_regclass('meta')::text AS t`)).rows[0]?.t;
    if (t == null) return undefined;
    return (await db.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'code_model_hash'`)).rows[0]?.value;
  } catch {
    return undefined;
  } finally {
    await db.close();
  }
}

/** The shared job queue of a PostgreSQL catalog; undefined for SQLite (its server keeps DATA/jobs.json). */
export function jobQueueOf(catalog: CatalogBackend): PgJobQueue | undefined {
  return catalog instanceof PostgresBackend ? new PgJobQueue(catalog.db) : undefined;
}
