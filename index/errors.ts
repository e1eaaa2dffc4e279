/**
 * Typed errors of the retrieval index. Each carries a `kind` (what went wrong for the caller;
 * server/errors.ts alone turns kinds into HTTP statuses) and a stable, specific `code`; the CLI
 * prints the message as is.
 */

/** The kinds of index/ errors (a subset of server/errors.ts's ErrorKind, checked there). */
export type IndexErrorKind = 'invalid_argument' | 'not_found' | 'conflict' | 'internal' | 'insufficient_storage' | 'unavailable';

export abstract class IndexError extends Error {
  abstract readonly kind: IndexErrorKind;
  abstract readonly code: string;
}

/** A caller-supplied argument is out of range or malformed; the message names it and its value. */
export class IndexParamError extends IndexError {
  override readonly name = 'IndexParamError';
  readonly kind = 'invalid_argument';
  readonly code = 'invalid_argument';
  constructor(
    readonly param: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`'${param}' must be ${expected}, got ${describe(value)}`);
  }
}

export interface HashDifference {
  field: 'model' | 'code model' | 'bits';
  stored: string;
  loaded: string;
}

/**
 * The database was built with another model or autoencoder than the one loaded: its embeddings
 * and codes live in another space, so mixing them would silently return garbage.
 */
export class IndexModelMismatchError extends IndexError {
  override readonly name = 'IndexModelMismatchError';
  readonly kind = 'conflict';
  readonly code = 'index_model_mismatch';
  constructor(
    readonly dir: string,
    readonly differences: readonly HashDifference[],
  ) {
    const what = differences.map((d) => `${d.field} differs (stored '${d.stored}', loaded '${d.loaded}')`).join('; ');
    super(
      `index at '${dir}' was built with another model: ${what}. ` +
        `Recompute it with \`npx sightline reindex --db ${dir} --model MODEL.onnx --codes CODES.onnx\` (a new codes model only: --codes alone), or load the matching model.`,
    );
  }
}

/** Another live process holds the database directory for writing. */
export class IndexLockedError extends IndexError {
  override readonly name = 'IndexLockedError';
  readonly kind = 'conflict';
  readonly code = 'index_locked';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`index at '${dir}' is open for writing by process ${pid}; stop it first (lock file '${dir}/index.lock')`);
  }
}

/** A write on a catalog opened with `readOnly: true`. */
export class IndexReadOnlyError extends IndexError {
  override readonly name = 'IndexReadOnlyError';
  readonly kind = 'conflict';
  readonly code = 'index_read_only';
  constructor(
    readonly dir: string,
    readonly operation: string,
  ) {
    super(`cannot ${operation}: index at '${dir}' was opened read-only`);
  }
}

/** A read-only command pointed at a directory that holds no database. */
export class IndexMissingError extends IndexError {
  override readonly name = 'IndexMissingError';
  readonly kind = 'not_found';
  readonly code = 'index_missing';
  constructor(
    readonly dir: string,
    message = `no index database in '${dir}' (expected '${dir}/sightline.db'); pass --db DIR or add images first`,
  ) {
    super(message);
  }
}

/** The stored database is not something this code can use (unknown schema version, bad meta). */
export class IndexSchemaError extends IndexError {
  override readonly name = 'IndexSchemaError';
  readonly kind = 'internal';
  readonly code = 'index_schema';
}

/**
 * The database file is damaged (fails `PRAGMA quick_check`, or SQLite reports corruption): it is
 * refused at open rather than served, since every request touching a bad page would fail.
 */
export class IndexCorruptError extends IndexError {
  override readonly name = 'IndexCorruptError';
  readonly kind = 'internal';
  readonly code = 'index_corrupt';
  constructor(
    readonly dbPath: string,
    readonly problems: readonly string[],
  ) {
    super(
      `database '${dbPath}' is damaged (${problems.slice(0, 3).join('; ')}): it will not be opened. ` +
        `Stop every process using it, then restore it from a backup, or salvage what SQLite can read: ` +
        `\`sqlite3 '${dbPath}' .recover | sqlite3 recovered.db\`, check it with \`sqlite3 recovered.db 'PRAGMA integrity_check'\`, ` +
        `and move recovered.db to '${dbPath}' (delete the old -wal and -shm files first); the HNSW index is rebuilt from it at the next start.`,
    );
  }
}

/** A `--db` value (or SIGHTLINE_DATABASE_URL) that names no database this build can open. */
export class IndexLocationError extends IndexError {
  override readonly name = 'IndexLocationError';
  readonly kind = 'invalid_argument';
  readonly code = 'invalid_database_url';
}

/** The database server cannot be reached (down, refused, timed out, authentication failed). */
export class IndexUnavailableError extends IndexError {
  override readonly name = 'IndexUnavailableError';
  readonly kind = 'unavailable';
  readonly code = 'database_unavailable';
}

/** The database was created or migrated by a newer release: this one must not write to it. */
export class IndexSchemaTooNewError extends IndexError {
  override readonly name = 'IndexSchemaTooNewError';
  readonly kind = 'conflict';
  readonly code = 'schema_too_new';
}

/** The disk (or quota) is full: the write was not done, and nothing half-written was kept. */
export class IndexStorageFullError extends IndexError {
  override readonly name = 'IndexStorageFullError';
  readonly kind = 'insufficient_storage';
  readonly code = 'storage_full';
  constructor(
    readonly operation: string,
    readonly reason: string,
  ) {
    super(`cannot ${operation}: no space left on the storage device (${reason}); free some space and retry`);
  }
}

/** ENOSPC / EDQUOT from the file system, SQLITE_FULL from SQLite (better-sqlite3 puts either in `code`). */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || (code === 'SQLITE_IOERR_WRITE' && /no space|disk is full/i.test(String((err as Error).message)));
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 80 ? `${value.slice(0, 80)}…` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<number>).length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  return typeof value;
}
