/**
 * The PostgreSQL catalog: the storage port over a SqlClient (pg.Pool, or PGlite in tests). Every
 * replica reads and writes the database directly and keeps nothing that could go stale: no graph,
 * no code matrix, no cached count (a delete made through one replica is seen by the next query of
 * every other). Adds are idempotent by SHA-256 across replicas (`ON CONFLICT (sha256) DO NOTHING`);
 * rows are inserted in the caller's order (ids follow it, as in SQLite), after a batch has taken
 * one advisory lock per SHA-256 in sorted order, so two replicas adding overlapping batches wait
 * for each other instead of deadlocking on the unique index.
 */
import type { BackendMeta, BackendOpenReport, BackendStats, CatalogBackend } from '../backend.js';
import type { DuplicateGroup, DuplicateOptions } from '../duplicates.js';
import { checkListOptions, type ListOptions, type ListPage } from '../listing.js';
import { type HashDifference, IndexModelMismatchError, IndexParamError, IndexReadOnlyError } from '../errors.js';
import { decodeHalf } from '../float16.js';
import { type AddResult, type ImageRecord, type NewImage, type PreparedImage, prepareImage } from '../records.js';
import type { SearchOptions, SearchQuery, SearchResult } from '../search.js';
import { SketchProjection } from '../sketch.js';
import type { CopyRecord } from '../store.js';
import type { SqlClient, SqlQuery } from './client.js';
import { pgDuplicates } from './duplicates.js';
import { bitString, halvesOf, num, RECORD_COLUMNS, STORED_HASHES, type StoredHashes, toRecord, vectorBytesSql, vectorParam } from './rows.js';
import type { PgMeta } from './schema.js';
import { hnswIndexSql } from './reembed.js';
import { pgSearch, type PgSearchContext } from './search.js';

export interface PgBackendOptions {
  readOnly: boolean;
  scanThreshold: number;
  filterScanFraction: number;
  efSearch: number;
}

export class PostgresBackend implements CatalogBackend {
  readonly kind = 'postgres';
  readonly openReport: BackendOpenReport = { rebuilt: false, removedTemps: [], warnings: [] };
  readonly sketch: SketchProjection;
  private closed = false;

  constructor(
    readonly db: SqlClient,
    readonly pgMeta: PgMeta,
    private readonly opts: PgBackendOptions,
  ) {
    this.sketch = new SketchProjection(pgMeta.embeddingDim, pgMeta.sketchDim, pgMeta.sketchSeed);
  }

  get location(): string {
    return this.db.display;
  }

  get meta(): BackendMeta {
    const m = this.pgMeta;
    return { bits: m.bits, embeddingDim: m.embeddingDim, modelHash: m.modelHash, codesHash: m.codesHash };
  }

  get readOnly(): boolean {
    return this.opts.readOnly;
  }

  /** Which stage-1 engine large collections use here. */
  get engine(): 'hnsw' | 'scan' {
    return this.pgMeta.hnsw ? 'hnsw' : 'scan';
  }

  async count(): Promise<number> {
    return (await this.state()).images;
  }

  /**
   * The row count and generation, and a check that the catalog still belongs to this process's
   * model and codes: after `sightline reindex --codes/--model` (pg/reembed.ts) a replica started
   * before it would compare its queries' codes with another model's. Read in the same round trip.
   */
  private async state(): Promise<{ images: number; generation: number }> {
    const r = (await this.db.query<{ images: unknown; generation: unknown } & StoredHashes>(`SELECT images, generation, ${STORED_HASHES} FROM catalog_state WHERE id = 1`)).rows[0];
    if (r !== undefined) this.checkCurrent(r);
    return { images: num(r?.images ?? 0), generation: num(r?.generation ?? 0) };
  }

  /** Throws IndexModelMismatchError when the stored hashes are not this process's (a reindex switched them). */
  checkCurrent(stored: StoredHashes): void {
    const m = this.pgMeta;
    const diffs: HashDifference[] = [];
    if (stored.model_hash !== m.modelHash) diffs.push({ field: 'model', stored: String(stored.model_hash), loaded: m.modelHash });
    if (stored.code_model_hash !== m.codesHash) diffs.push({ field: 'code model', stored: String(stored.code_model_hash), loaded: m.codesHash });
    if (Number(stored.bits) !== m.bits) diffs.push({ field: 'bits', stored: String(stored.bits), loaded: String(m.bits) });
    if (diffs.length > 0) throw new IndexModelMismatchError(this.location, diffs);
  }

  async generation(): Promise<number> {
    return (await this.state()).generation;
  }

  /** listing.ts's page, in SQL: keyset on id, label and verdict filters as in SQLite. */
  async list(o: ListOptions): Promise<ListPage> {
    checkListOptions(o);
    const params: unknown[] = [o.afterId ?? 0, o.limit + 1];
    const where = ['id > $1'];
    if (o.label !== undefined) where.push(`top_label = $${params.push(o.label)}`);
    if (o.ood !== undefined) where.push(`ood_basis = $${params.push(o.ood.basis)} AND ood_score ${o.ood.unknown ? '>' : '<='} $${params.push(o.ood.threshold)}`);
    const rows = (await this.db.query(`SELECT ${RECORD_COLUMNS} FROM images WHERE ${where.join(' AND ')} ORDER BY id LIMIT $2`, params)).rows.map(toRecord);
    return { images: rows.slice(0, o.limit), more: rows.length > o.limit };
  }

  async stats(): Promise<BackendStats> {
    const s = await this.state();
    const m = this.pgMeta;
    return { images: s.images, indexSize: s.images, model: m.modelHash, codeModel: m.codesHash, bits: m.bits, embeddingDim: m.embeddingDim, generation: s.generation };
  }

  async add(image: NewImage): Promise<AddResult> {
    return (await this.addMany([image]))[0] as AddResult;
  }

  async addMany(images: readonly NewImage[]): Promise<AddResult[]> {
    this.assertWritable('add images');
    if (!Array.isArray(images)) throw new IndexParamError('images', images, 'an array of images');
    const { bits, embeddingDim } = this.pgMeta;
    const prepared = images.map((img) => prepareImage(img, bits, embeddingDim, this.sketch));
    return this.db.transaction(async (tx) => {
      // Shared locks on the meta rows: a reindex's switch (pg/reembed.ts) waits for this add, and
      // an add after the switch sees the new hashes and is refused instead of mixing models.
      const rows = (await tx.query<{ key: string; value: string }>(`SELECT key, value FROM meta WHERE key IN ('bits', 'model_hash', 'code_model_hash') FOR SHARE`)).rows;
      this.checkCurrent(Object.fromEntries(rows.map((r) => [r.key, r.value])) as unknown as StoredHashes);
      if (prepared.length > 1) await lockHashes(tx, prepared);
      const out = new Array<AddResult>(prepared.length);
      const seen = new Map<string, { id: number; source: string }>();
      let added = 0;
      for (const [i, p] of prepared.entries()) {
        const prior = seen.get(p.sha256);
        const res = prior ? { id: prior.id, existed: true, source: prior.source } : await this.insertOne(tx, p);
        // Another path to bytes already stored: recorded so it stays listable (duplicates command).
        if (res.existed && res.source !== p.source) await tx.query('INSERT INTO copies (image_id, source) VALUES ($1, $2) ON CONFLICT DO NOTHING', [res.id, p.source]);
        if (!res.existed) added++;
        if (!prior) seen.set(p.sha256, { id: res.id, source: res.existed ? res.source : p.source });
        out[i] = { id: res.id, existed: res.existed };
      }
      if (added > 0) await tx.query('UPDATE catalog_state SET generation = generation + 1, images = images + $1 WHERE id = 1', [added]);
      return out;
    });
  }

  /**
   * Looked up first, so that stored bytes consume no id (a conflicting INSERT takes one from the
   * sequence and leaves a gap); ON CONFLICT covers the race with another replica, waiting for its
   * insert and then yielding to it.
   */
  private async insertOne(tx: SqlQuery, p: PreparedImage): Promise<{ id: number; existed: boolean; source: string }> {
    const m = this.pgMeta;
    const stored = (await tx.query<{ id: unknown; source: string }>('SELECT id, source FROM images WHERE sha256 = $1', [p.sha256])).rows[0];
    if (stored !== undefined) return { id: num(stored.id), existed: true, source: stored.source };
    const ins = await tx.query<{ id: unknown }>(
      `INSERT INTO images (source, sha256, width, height, labels, top_label, code, sketch, ood_score, ood_basis, model_hash, code_model_hash)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::bit(${m.bits}), $8, $9, $10, $11, $12) ON CONFLICT (sha256) DO NOTHING RETURNING id`,
      [p.source, p.sha256, p.width, p.height, p.labelsJson, p.topLabel, bitString(p.code, m.bits), p.sketch, p.ood?.score ?? null, p.ood?.basis ?? null, m.modelHash, m.codesHash],
    );
    const row = ins.rows[0];
    if (row !== undefined) {
      const id = num(row.id);
      await tx.query(`INSERT INTO embeddings (id, vector) VALUES ($1, $2${m.vector === 'halfvec' ? '::halfvec' : ''})`, [id, vectorParam(m.vector, p.embedding)]);
      return { id, existed: false, source: p.source };
    }
    const existing = (await tx.query<{ id: unknown; source: string }>('SELECT id, source FROM images WHERE sha256 = $1', [p.sha256])).rows[0];
    if (existing === undefined) throw new Error(`image ${p.sha256} conflicted on insert but is not stored`);
    return { id: num(existing.id), existed: true, source: existing.source };
  }

  async remove(id: number): Promise<boolean> {
    this.assertWritable('delete images');
    checkId(id);
    return this.db.transaction(async (tx) => {
      const gone = (await tx.query('DELETE FROM images WHERE id = $1 RETURNING id', [id])).rows.length > 0;
      if (gone) await tx.query('UPDATE catalog_state SET generation = generation + 1, images = images - 1 WHERE id = 1');
      return gone;
    });
  }

  async get(id: number): Promise<ImageRecord | undefined> {
    checkId(id);
    const r = (await this.db.query(`SELECT ${RECORD_COLUMNS} FROM images WHERE id = $1`, [id])).rows[0];
    return r === undefined ? undefined : toRecord(r);
  }

  async findBySha256(sha256: string): Promise<number | undefined> {
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new IndexParamError('sha256', sha256, '64 hex digits');
    const r = (await this.db.query<{ id: unknown }>('SELECT id FROM images WHERE sha256 = $1', [sha256.toLowerCase()])).rows[0];
    return r === undefined ? undefined : num(r.id);
  }

  /** The stored halves (float16, little-endian as in SQLite). */
  async embeddingHalves(id: number): Promise<Uint16Array | undefined> {
    const r = (await this.db.query<{ v: unknown }>(`SELECT ${vectorBytesSql(this.pgMeta.vector)} AS v FROM embeddings WHERE id = $1`, [id])).rows[0];
    return r === undefined ? undefined : halvesOf(this.pgMeta.vector, r.v);
  }

  async embedding(id: number): Promise<Float32Array | undefined> {
    checkId(id);
    const h = await this.embeddingHalves(id);
    return h && decodeHalf(h);
  }

  private searchContext(): PgSearchContext {
    return { db: this.db, meta: this.pgMeta, sketch: this.sketch, ...this.opts, count: () => this.count(), checkCurrent: (s) => this.checkCurrent(s) };
  }

  async search(query: SearchQuery, options: SearchOptions = {}): Promise<SearchResult> {
    this.assertOpen();
    return pgSearch(this.searchContext(), query, options);
  }

  async duplicates(options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
    this.assertOpen();
    return pgDuplicates(this, (q, o) => this.search(q, o), options);
  }

  async copies(): Promise<CopyRecord[]> {
    const rows = (await this.db.query<{ image_id: unknown; source: string; added_at: unknown }>('SELECT image_id, source, added_at FROM copies ORDER BY image_id, added_at, source')).rows;
    return rows.map((r) => ({ imageId: num(r.image_id), source: r.source, addedAt: r.added_at instanceof Date ? r.added_at.toISOString() : String(r.added_at) }));
  }

  /**
   * `sightline reindex`: rebuilds the pgvector HNSW index on the codes (new m / ef_construction
   * apply). Without pgvector there is no index to rebuild: the exact scan reads the table.
   */
  async rebuildIndex(params: { M?: number | undefined; efConstruction?: number | undefined } = {}): Promise<'rebuilt' | 'no index'> {
    this.assertWritable('rebuild the index');
    if (this.pgMeta.vector !== 'halfvec') return 'no index';
    await this.db.transaction(async (tx) => {
      await tx.query('DROP INDEX IF EXISTS images_code_hnsw');
      await tx.query(hnswIndexSql(params));
    });
    this.pgMeta.hnsw = true;
    return 'rebuilt';
  }

  /** Reachable, and still this process's model and codes (not ready after a reindex: restart it). */
  async ping(): Promise<void> {
    await this.state();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new IndexParamError('catalog', 'closed', 'open (it was closed)');
  }

  /** For maintenance (pg/reembed.ts): open and writable, else the reason. */
  assertWritableFor(operation: string): void {
    this.assertWritable(operation);
  }

  private assertWritable(operation: string): void {
    this.assertOpen();
    if (this.opts.readOnly) throw new IndexReadOnlyError(this.location, operation);
  }
}

/** Transaction-level advisory locks on the batch's SHA-256s (first 60 bits), taken in ascending order. */
async function lockHashes(tx: SqlQuery, prepared: readonly PreparedImage[]): Promise<void> {
  const keys = [...new Set(prepared.map((p) => BigInt(`0x${p.sha256.slice(0, 15)}`)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  await tx.query('SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n', [keys.map(String)]);
}

function checkId(id: unknown): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw new IndexParamError('id', id, 'a positive integer');
}
