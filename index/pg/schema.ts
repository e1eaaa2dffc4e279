/**
 * The PostgreSQL schema and its versioned migrations. The server (any writable open) creates and
 * upgrades it; a read-only open only checks it. Migrations run in one transaction under a
 * transaction-level advisory lock, so replicas starting together apply each step once, and a crash
 * leaves the old or the new version, never half of one. A database migrated by a newer release
 * is refused (IndexSchemaTooNewError) rather than written with assumptions it no longer meets.
 *
 * Codes are `bit(<bits>)` (Hamming distance `bit_count(code # q)`, or pgvector's `<~>` with an
 * HNSW index, `bit_hamming_ops`); the fc7 embedding is pgvector `halfvec(<dim>)` when the extension
 * can be created, else `bytea` holding the same little-endian float16 values as the SQLite catalog
 * (float16.ts). The sketch (sketch.ts) and the near-duplicate arithmetic are the SQLite catalog's,
 * so both backends rank alike. `ood_score` / `ood_basis` (the unknown-image score and what it
 * was computed against) are nullable, as in SQLite schema 3; double precision, as SQLite's REAL is.
 */
import { IndexMissingError, IndexSchemaTooNewError } from '../errors.js';
import type { InitMeta, StoreMeta } from '../store.js';
import { DEFAULT_SKETCH_DIM, DEFAULT_SKETCH_SEED } from '../sketch.js';
import type { SqlClient, SqlQuery } from './client.js';
import { JOB_TABLES_SQL } from './jobs.js';

export const PG_SCHEMA_VERSION = 2;

/** Any fixed key: every Sightline process agrees on it. */
const MIGRATION_LOCK = 0x5197_11e0;

export type VectorKind = 'halfvec' | 'bytea';

export interface PgMeta extends StoreMeta {
  vector: VectorKind;
  /** The pgvector HNSW index on the codes exists (`<~>` candidates); else the exact scan only. */
  hnsw: boolean;
}

function v1(init: InitMeta, vector: VectorKind): string[] {
  const bits = Math.trunc(init.bits);
  const dim = Math.trunc(init.embeddingDim);
  return [
    `CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)`,
    // One row: bumped in the same transaction as every add and delete (generation, images).
    `CREATE TABLE catalog_state (id int PRIMARY KEY CHECK (id = 1), generation bigint NOT NULL, images bigint NOT NULL)`,
    `INSERT INTO catalog_state VALUES (1, 0, 0)`,
    `CREATE TABLE images (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       source text NOT NULL,
       sha256 text NOT NULL UNIQUE,
       width int NOT NULL,
       height int NOT NULL,
       labels jsonb NOT NULL,
       top_label text,
       code bit(${bits}) NOT NULL,
       sketch bytea,
       ood_score double precision,
       ood_basis text,
       model_hash text NOT NULL,
       code_model_hash text NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE INDEX images_top_label ON images (top_label)`,
    // Equality on codes: the images sharing a code at the cut-off (hash centres hold whole classes).
    `CREATE INDEX images_code ON images (code)`,
    `CREATE TABLE embeddings (id bigint PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE, vector ${vector === 'halfvec' ? `halfvec(${dim})` : 'bytea'} NOT NULL)`,
    `CREATE TABLE copies (image_id bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE, source text NOT NULL, added_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (image_id, source))`,
    `CREATE TABLE jobs (id text PRIMARY KEY, state text NOT NULL, spec jsonb NOT NULL, progress jsonb, owner text, heartbeat_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
    ...(vector === 'halfvec' ? [`CREATE INDEX images_code_hnsw ON images USING hnsw (code bit_hamming_ops)`] : []),
  ];
}

function metaRows(init: InitMeta, vector: VectorKind): [string, string][] {
  return [
    ['bits', String(init.bits)],
    ['embedding_dim', String(init.embeddingDim)],
    ['model_hash', init.modelHash],
    ['code_model_hash', init.codesHash],
    ['sketch_dim', String(DEFAULT_SKETCH_DIM)],
    ['sketch_seed', String(DEFAULT_SKETCH_SEED)],
    ['vector', vector],
  ];
}

async function hasPgvector(tx: SqlQuery): Promise<boolean> {
  const r = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`);
  return (r.rows[0]?.n ?? 0) > 0;
}

/** pgvector when it is installed or can be created here; a savepoint keeps a refusal harmless. */
async function ensurePgvector(tx: SqlQuery): Promise<boolean> {
  if (await hasPgvector(tx)) return true;
  const available = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'vector'`);
  if ((available.rows[0]?.n ?? 0) === 0) return false;
  await tx.query('SAVEPOINT pgvector');
  try {
    await tx.query('CREATE EXTENSION IF NOT EXISTS vector');
    return true;
  } catch {
    await tx.query('ROLLBACK TO SAVEPOINT pgvector');
    return false;
  }
}

async function installedVersion(tx: SqlQuery): Promise<number> {
  const t = await tx.query<{ t: string | null }>(`SELECT to_regclass('schema_version')::text AS t`);
  if (t.rows[0]?.t == null) return 0;
  const r = await tx.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_version');
  return r.rows[0]?.v ?? 0;
}

function missing(display: string): IndexMissingError {
  return new IndexMissingError(display, `database '${display}' holds no Sightline catalog yet; \`sightline serve --db URL\` or \`sightline index DIR --db URL\` creates it`);
}

function tooNew(display: string, version: number): IndexSchemaTooNewError {
  return new IndexSchemaTooNewError(`database '${display}' has schema version ${version}, made by a newer Sightline; this build knows up to version ${PG_SCHEMA_VERSION}: upgrade Sightline`);
}

/**
 * Creates or upgrades the schema (writable opens) and reads the meta. `init` supplies a new
 * catalog's meta; without it (read-only, or create: false) an empty database is IndexMissingError.
 */
export async function migrate(db: SqlClient, init: (() => InitMeta) | undefined, readOnly: boolean): Promise<PgMeta> {
  if (readOnly) {
    const version = await installedVersion(db);
    if (version === 0) throw missing(db.display);
    if (version > PG_SCHEMA_VERSION) throw tooNew(db.display, version);
    return readMeta(db);
  }
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const version = await installedVersion(tx);
    if (version > PG_SCHEMA_VERSION) throw tooNew(db.display, version);
    if (version === 0) {
      if (!init) throw missing(db.display);
      const meta = init();
      const vector: VectorKind = (await ensurePgvector(tx)) ? 'halfvec' : 'bytea';
      await tx.query('CREATE TABLE schema_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const statement of v1(meta, vector)) await tx.query(statement);
      for (const [k, v] of metaRows(meta, vector)) await tx.query('INSERT INTO meta (key, value) VALUES ($1, $2)', [k, v]);
      await tx.query('INSERT INTO schema_version (version) VALUES ($1)', [1]);
    }
    if (version < 2) {
      // Indexing jobs shared by replicas (jobs.ts); v1's placeholder table was never used.
      await tx.query('DROP TABLE IF EXISTS jobs');
      for (const statement of JOB_TABLES_SQL) await tx.query(statement);
      await tx.query('INSERT INTO schema_version (version) VALUES ($1)', [2]);
    }
    // Later versions: `if (version < 3) { …; INSERT INTO schema_version VALUES (3) }`, each idempotent.
    return readMeta(tx);
  });
}

export async function readMeta(q: SqlQuery): Promise<PgMeta> {
  const rows = (await q.query<{ key: string; value: string }>('SELECT key, value FROM meta')).rows;
  const m = new Map(rows.map((r) => [r.key, r.value]));
  const state = (await q.query<{ generation: string }>('SELECT generation::text AS generation FROM catalog_state WHERE id = 1')).rows[0];
  const num = (k: string): number => Number(m.get(k));
  const vector = m.get('vector') === 'halfvec' ? 'halfvec' : 'bytea';
  return {
    schemaVersion: PG_SCHEMA_VERSION,
    bits: num('bits'),
    embeddingDim: num('embedding_dim'),
    modelHash: m.get('model_hash') ?? '',
    codesHash: m.get('code_model_hash') ?? '',
    generation: Number(state?.generation ?? 0),
    sketchDim: num('sketch_dim'),
    sketchSeed: num('sketch_seed'),
    vector,
    hnsw: (await q.query<{ t: string | null }>(`SELECT to_regclass('images_code_hnsw')::text AS t`)).rows[0]?.t != null,
  };
}
