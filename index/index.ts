/** Public surface of the retrieval index. */
export type { BackendMeta, BackendOpenReport, BackendStats, CatalogBackend } from './backend.js';
export { type DbLocation, looksLikeUrl, parseDbLocation, redactUrl } from './location.js';
export { type BackendOptions, openBackend, recordedCodesHashAt } from './open.js';
export { SqliteBackend } from './sqlite-backend.js';
export { type PoolOptions, poolClient, type SqlClient, type SqlQuery } from './pg/client.js';
export { PostgresBackend } from './pg/backend.js';
export { openPostgresWith } from './pg/open.js';
export { Catalog, openCatalog, type CatalogOptions, type CatalogStats, type OpenReport } from './catalog.js';
export {
  type CodeInput,
  codeToHex,
  codeWords,
  hammingWords,
  hammingPacked,
  hexToCode,
  packSigns,
  popcount32,
  toPackedCode,
  toPlusMinusOne,
  unpackBits,
  validateBits,
} from './codes.js';
export { DEFAULT_NEAR_DUP_RELATIVE, type DuplicateGroup, type DuplicateOptions, type DuplicatePair } from './duplicates.js';
export {
  type HashDifference,
  IndexCorruptError,
  IndexError,
  type IndexErrorKind,
  IndexLocationError,
  IndexLockedError,
  IndexMissingError,
  IndexReadOnlyError,
  IndexModelMismatchError,
  IndexParamError,
  IndexSchemaError,
  IndexSchemaTooNewError,
  IndexUnavailableError,
  IndexStorageFullError,
  isStorageFull,
} from './errors.js';
export { DEFAULT_HNSW, type HnswParams } from './hnsw.js';
export { backendDuplicates, catalogEmbeddings, type CatalogEmbeddings, type DuplicatesReport, type ExactCopies, findDuplicatesIn, inspectIndex, recordedCodesHash, type DuplicateMember, type DuplicateReport, type IndexSummary } from './inspect.js';
/** Engines the benchmarks measure directly (bench/index.ts). */
export { CodeHnsw } from './hnsw.js';
export { CodeMatrix, recallWithTies } from './scan.js';
export { halfView, squaredDistanceHalf } from './float16.js';
export { DB_FILE, HNSW_FILE, SIDECAR_FILE } from './persist.js';
export type { ListOptions, ListPage } from './listing.js';
export { reembedAt, storedMetaAt } from './reembed-at.js';
export { type PgReembedOptions, reembedPostgres } from './pg/reembed.js';
export { reembed, type ReembedOptions, type ReembedOutput, type ReembedReport, type ReembedRow } from './reembed.js';
export { type AddResult, type ImageRecord, type ImageSummary, type LabelScore, type NewImage, type OodScore, sha256Hex } from './records.js';
export { search, type SearchContext, type SearchHit, type SearchOptions, type SearchQuery, type SearchResult, validateSearchOptions } from './search.js';
export { type FileKind, JOB_TABLES_SQL, type JobState, PgJobQueue, type Queryable, type StoredJob } from './pg/jobs.js';
export { jobQueueOf } from './pg/open.js';
export { transferCatalog, TransferIncompleteError, type TransferOptions, type TransferReport } from './transfer.js';
