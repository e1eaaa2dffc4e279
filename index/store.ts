/**
 * SQLite, the source of truth: every image row, its code and embedding, and a `meta` table whose
 * `generation` is bumped in the same transaction as every add/delete, so an index file that records
 * the generation it reflects can be proven current (or stale) at open.
 *
 * Durability: WAL with synchronous=NORMAL. A process crash (even SIGKILL) never loses a committed
 * transaction in WAL mode; only an OS crash/power loss can roll back the last few commits, and
 * then the HNSW sidecar's generation no longer matches and the index is rebuilt from what SQLite
 * kept. FULL would fsync the WAL on every single-image commit, which uploads pay for; NORMAL
 * fsyncs at checkpoints only.
 *
 * Embeddings live in their own 1:1 table: an 8 KiB blob spills into overflow pages and would make
 * the `images` b-tree one row per page, so loading all codes at open would read every embedding.
 * The 68-byte sketch (sketch.ts) does live in `images`: it is loaded with the codes.
 *
 * Schema versions: a database made by an older release is upgraded in place by a writable open
 * (migrate.ts, one transaction per step); a read-only open of an older version is refused with a
 * message saying how to upgrade it.
 */
import Database from 'better-sqlite3';
import { IndexSchemaError } from './errors.js';
import { halfView } from './float16.js';
import { migrate, SCHEMA_VERSION } from './migrate.js';
import type { AddResult, ImageRecord, ImageSummary, LabelScore, OodScore, PreparedImage } from './records.js';
import { DEFAULT_SKETCH_DIM, DEFAULT_SKETCH_SEED } from './sketch.js';

export { SCHEMA_VERSION } from './migrate.js';

export interface StoreMeta {
  schemaVersion: number;
  bits: number;
  embeddingDim: number;
  modelHash: string;
  codesHash: string;
  generation: number;
  /** Size and seed of the embedding projection behind each row's sketch (sketch.ts). */
  sketchDim: number;
  sketchSeed: number;
}

export type InitMeta = Omit<StoreMeta, 'schemaVersion' | 'generation' | 'sketchDim' | 'sketchSeed'>;

/** Another path whose bytes had the same SHA-256 as a stored image (skipped at index time, kept listable). */
export interface CopyRecord {
  imageId: number;
  source: string;
  addedAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS images (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  labels TEXT NOT NULL,
  top_label TEXT,
  code BLOB NOT NULL,
  sketch BLOB,
  ood_score REAL,
  ood_basis TEXT,
  model_hash TEXT NOT NULL,
  code_model_hash TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_top_label ON images(top_label);
CREATE TABLE IF NOT EXISTS embeddings (
  id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS copies (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  added_at TEXT NOT NULL,
  PRIMARY KEY (image_id, source)
) WITHOUT ROWID;`;

/** Upper bound of the read map (SQLite clamps it to its compile-time maximum, 2 GiB by default). */
const MMAP_BYTES = 2 ** 34;

/** AUTOINCREMENT: ids are never reused, so an id a client kept cannot silently point at another image. */
type Row = Record<string, unknown>;

export class ImageStore {
  private readonly db: Database.Database;
  private cachedMeta: StoreMeta;
  private readonly st: ReturnType<ImageStore['prepare']>;
  private readonly listStatements = new Map<string, Database.Statement<[Record<string, string | number>], Row>>();

  private constructor(
    readonly path: string,
    readonly readonly: boolean,
    init: (() => InitMeta) | undefined,
  ) {
    this.db = new Database(path, { readonly, fileMustExist: readonly || init === undefined });
    if (!readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.pragma('foreign_keys = ON');
    // Reads through a memory map instead of read() into SQLite's page cache: the search's re-rank
    // fetches ~100 embeddings of 8 KiB (3 pages each) per query, and at 60k images this halved that
    // fetch (0.81 → 0.43 ms p50 in one run). The map is address space over the OS's file cache, not
    // extra memory; writes still go through write() (SQLite maps for reading only by default).
    this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
    // Schema, meta and any migration in one transaction: a crash leaves the old or the new state.
    if (!readonly) {
      this.db.transaction(() => {
        const fresh = this.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").pluck().get() === 0;
        if (!fresh) migrate(this.db, path);
        this.db.exec(SCHEMA);
        if (init && this.db.prepare('SELECT count(*) FROM meta').pluck().get() === 0) this.initMeta(init());
      })();
    }
    this.cachedMeta = this.readMeta();
    this.st = this.prepare();
  }

  /** `init` supplies the meta of a new (or never initialised) database; without it the file must exist. */
  static open(path: string, opts: { readonly?: boolean; init?: () => InitMeta } = {}): ImageStore {
    return new ImageStore(path, opts.readonly ?? false, opts.init);
  }

  private prepare() {
    const db = this.db;
    return {
      bySha: db.prepare<[string], { id: number; source: string }>('SELECT id, source FROM images WHERE sha256 = ?'),
      insert: db.prepare(
        `INSERT INTO images (source, sha256, width, height, labels, top_label, code, sketch, ood_score, ood_basis, model_hash, code_model_hash, created_at, updated_at)
         VALUES (@source, @sha256, @width, @height, @labelsJson, @topLabel, @code, @sketch, @oodScore, @oodBasis, @modelHash, @codesHash, @now, @now)`,
      ),
      addCopy: db.prepare<[number, string, string]>('INSERT OR IGNORE INTO copies (image_id, source, added_at) VALUES (?, ?, ?)'),
      copiesOf: db.prepare<[number], { source: string; added_at: string }>('SELECT source, added_at FROM copies WHERE image_id = ? ORDER BY added_at, source'),
      allCopies: db.prepare<[], { image_id: number; source: string; added_at: string }>('SELECT image_id, source, added_at FROM copies ORDER BY image_id, added_at, source'),
      insertEmb: db.prepare<[number | bigint, Buffer]>('INSERT INTO embeddings (id, vector) VALUES (?, ?)'),
      del: db.prepare<[number]>('DELETE FROM images WHERE id = ?'),
      delEmb: db.prepare<[number]>('DELETE FROM embeddings WHERE id = ?'),
      bump: db.prepare("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation' RETURNING value").pluck(),
      get: db.prepare<[number], Row>('SELECT * FROM images WHERE id = ?'),
      emb: db.prepare<[number], Buffer>('SELECT vector FROM embeddings WHERE id = ?').pluck(),
      embMany: db.prepare<[string], [number, Buffer]>('SELECT id, vector FROM embeddings WHERE id IN (SELECT value FROM json_each(?))').raw(),
      count: db.prepare('SELECT count(*) FROM images').pluck(),
      codes: db.prepare('SELECT id, code, top_label, sketch FROM images ORDER BY id').raw(),
      summary: db.prepare<[number], Row>('SELECT id, source, labels, ood_score, ood_basis FROM images WHERE id = ?'),
      summaries: db.prepare<[string], Row>('SELECT id, source, labels, ood_score, ood_basis FROM images WHERE id IN (SELECT value FROM json_each(?))'),
    };
  }

  private initMeta(init: InitMeta): void {
    const put = this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
    this.db.transaction(() => {
      put.run('schema_version', String(SCHEMA_VERSION));
      put.run('bits', String(init.bits));
      put.run('embedding_dim', String(init.embeddingDim));
      put.run('model_hash', init.modelHash);
      put.run('code_model_hash', init.codesHash);
      put.run('generation', '0');
      put.run('sketch_dim', String(DEFAULT_SKETCH_DIM));
      put.run('sketch_seed', String(DEFAULT_SKETCH_SEED));
    })();
  }

  private readMeta(): StoreMeta {
    const rows = this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[];
    const m = new Map(rows.map((r) => [r.key, r.value]));
    const num = (k: string): number => {
      const v = Number(m.get(k));
      if (!Number.isInteger(v)) throw new IndexSchemaError(`database '${this.path}': meta '${k}' is missing or not an integer (${m.get(k)})`);
      return v;
    };
    const str = (k: string): string => {
      const v = m.get(k);
      if (v === undefined) throw new IndexSchemaError(`database '${this.path}': meta '${k}' is missing`);
      return v;
    };
    const schemaVersion = num('schema_version');
    if (schemaVersion !== SCHEMA_VERSION) {
      const how = schemaVersion < SCHEMA_VERSION ? ': open it once for writing (e.g. `sightline index` or `sightline serve`) to upgrade it in place' : '';
      throw new IndexSchemaError(`database '${this.path}' has schema version ${schemaVersion}; this build reads version ${SCHEMA_VERSION}${how}`);
    }
    return {
      schemaVersion, bits: num('bits'), embeddingDim: num('embedding_dim'), modelHash: str('model_hash'), codesHash: str('code_model_hash'),
      generation: num('generation'), sketchDim: num('sketch_dim'), sketchSeed: num('sketch_seed'),
    };
  }

  /** Cached for the writer (it is the only one, see the lock); re-read for read-only openers. */
  meta(): StoreMeta {
    if (this.readonly) this.cachedMeta = this.readMeta();
    return this.cachedMeta;
  }

  count(): number {
    return this.st.count.get() as number;
  }

  /** One transaction for the batch: all rows or none, and one generation bump if anything changed. */
  insertMany(items: readonly PreparedImage[]): AddResult[] {
    const meta = this.cachedMeta;
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      const out: AddResult[] = [];
      const seen = new Map<string, { id: number; source: string }>();
      for (const it of items) {
        const prior = seen.get(it.sha256) ?? this.st.bySha.get(it.sha256);
        if (prior !== undefined) {
          // The bytes are stored already; another path to them is recorded so it stays listable.
          if (prior.source !== it.source) this.st.addCopy.run(prior.id, it.source, now);
          out.push({ id: prior.id, existed: true });
          continue;
        }
        const info = this.st.insert.run({
          source: it.source,
          sha256: it.sha256,
          width: it.width,
          height: it.height,
          labelsJson: it.labelsJson,
          topLabel: it.topLabel,
          code: Buffer.from(it.code.buffer, it.code.byteOffset, it.code.length),
          sketch: it.sketch,
          oodScore: it.ood?.score ?? null,
          oodBasis: it.ood?.basis ?? null,
          modelHash: meta.modelHash,
          codesHash: meta.codesHash,
          now,
        });
        this.st.insertEmb.run(info.lastInsertRowid, it.embedding);
        const id = Number(info.lastInsertRowid);
        seen.set(it.sha256, { id, source: it.source });
        out.push({ id, existed: false });
      }
      if (out.some((r) => !r.existed)) this.bump();
      return out;
    })();
  }

  idBySha256(sha256: string): number | undefined {
    return this.st.bySha.get(sha256.toLowerCase())?.id;
  }

  deleteById(id: number): boolean {
    return this.db.transaction(() => {
      this.st.delEmb.run(id);
      const removed = this.st.del.run(id).changes > 0;
      if (removed) this.bump();
      return removed;
    })();
  }

  private bump(): void {
    this.cachedMeta = { ...this.cachedMeta, generation: Number(this.st.bump.get()) };
  }

  get(id: number): ImageRecord | undefined {
    const r = this.st.get.get(id);
    return r === undefined ? undefined : toRecord(r);
  }

  /** The stored float16 embedding bytes of `id`. */
  embedding(id: number): Buffer | undefined {
    return this.st.emb.get(id);
  }

  /** The same as 16-bit halves (see float16.ts). */
  embeddingHalves(id: number): Uint16Array | undefined {
    const blob = this.st.emb.get(id);
    return blob && halfView(blob);
  }

  /**
   * Embeddings of many ids in one statement (order not guaranteed, missing ids absent): about
   * faster than one lookup per id for the re-rank's 100 candidates (~1.0 vs ~1.9 ms in a micro-bench).
   */
  embeddings(ids: readonly number[]): [number, Buffer][] {
    return this.st.embMany.all(JSON.stringify(ids));
  }

  summary(id: number): ImageSummary | undefined {
    const r = this.st.summary.get(id);
    if (r === undefined) return undefined;
    return { id: Number(r['id']), source: String(r['source']), labels: JSON.parse(String(r['labels'])) as LabelScore[], ood: oodOf(r) };
  }

  /**
   * Rows selected by a clause built from fixed SQL (listing.ts) with named parameters; the few
   * clause shapes are prepared once each.
   */
  records(clause: string, params: Record<string, string | number>): ImageRecord[] {
    let st = this.listStatements.get(clause);
    if (!st) this.listStatements.set(clause, (st = this.db.prepare<[Record<string, string | number>], Row>(`SELECT * FROM images ${clause}`)));
    return st.all(params).map(toRecord);
  }

  /** summary() of many ids in one statement (the search's hits), by id; missing ids absent. */
  summaries(ids: readonly number[]): Map<number, ImageSummary> {
    const out = new Map<number, ImageSummary>();
    if (ids.length === 0) return out;
    for (const r of this.st.summaries.all(JSON.stringify(ids))) {
      const id = Number(r['id']);
      out.set(id, { id, source: String(r['source']), labels: JSON.parse(String(r['labels'])) as LabelScore[], ood: oodOf(r) });
    }
    return out;
  }

  /** Streams (id, code, top label, sketch) in id order without touching the embeddings table. */
  *codes(): Generator<[number, Uint8Array, string | null, Uint8Array | null]> {
    for (const row of this.st.codes.iterate() as Iterable<[number, Buffer, string | null, Buffer | null]>) yield row;
  }

  /** Every stored embedding as float16 halves, in id order (a copy per row). */
  *allEmbeddings(): Generator<Uint16Array> {
    for (const blob of this.db.prepare('SELECT vector FROM embeddings ORDER BY id').pluck().iterate() as Iterable<Buffer>) yield new Uint16Array(halfView(blob));
  }

  /** Other paths recorded for `id`'s bytes (exact copies skipped at index time). */
  copiesOf(id: number): CopyRecord[] {
    return this.st.copiesOf.all(id).map((r) => ({ imageId: id, source: r.source, addedAt: r.added_at }));
  }

  /** Every recorded copy, by image id. */
  allCopies(): CopyRecord[] {
    return this.st.allCopies.all().map((r) => ({ imageId: r.image_id, source: r.source, addedAt: r.added_at }));
  }

  /** Runs `fn` in one write transaction (used by re-embedding). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Raw handle for the few maintenance statements (re-embedding) that do not belong here. */
  get handle(): Database.Database {
    return this.db;
  }

  /** Rewrites meta fields and bumps the generation, in the caller's transaction or a new one. */
  setMeta(fields: Partial<InitMeta>): void {
    const keys: Record<keyof InitMeta, string> = { bits: 'bits', embeddingDim: 'embedding_dim', modelHash: 'model_hash', codesHash: 'code_model_hash' };
    const put = this.db.prepare('UPDATE meta SET value = ? WHERE key = ?');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(fields) as [keyof InitMeta, string | number][]) put.run(String(v), keys[k]);
      this.bump();
    })();
    this.cachedMeta = this.readMeta();
  }

  bumpGeneration(): void {
    this.bump();
  }

  close(): void {
    this.db.close();
  }
}

function toRecord(r: Row): ImageRecord {
  return {
    id: Number(r['id']),
    source: String(r['source']),
    sha256: String(r['sha256']),
    width: Number(r['width']),
    height: Number(r['height']),
    labels: JSON.parse(String(r['labels'])) as LabelScore[],
    code: new Uint8Array(r['code'] as Buffer),
    modelHash: String(r['model_hash']),
    codesHash: String(r['code_model_hash']),
    ood: oodOf(r),
    createdAt: String(r['created_at']),
    updatedAt: String(r['updated_at']),
  };
}

/** Null for rows made before schema 3 (or by a caller that did not score the image). */
function oodOf(r: Row): OodScore | null {
  const score = r['ood_score'];
  const basis = r['ood_basis'];
  return typeof score === 'number' && typeof basis === 'string' ? { score, basis } : null;
}
