/**
 * `sightline reindex --codes / --model` on a PostgreSQL catalog (the SQLite one: ../reembed.ts).
 *
 * Replicas may be serving while it runs, so nothing they read changes until the end: new codes,
 * embeddings, sketches, labels and scores are computed in batches into a staging table
 * (`reembed_rows`, one committed transaction per batch, the target hashes in `reembed_target`),
 * and one final transaction switches the catalog: it locks the meta rows (adds wait; see
 * PostgresBackend.addMany) and the images table against writes, computes the rows added since,
 * rewrites every staged row, retypes `code` when the bits change, rebuilds the code indexes,
 * switches the meta hashes and bumps the generation. A crash or kill before that transaction
 * commits leaves the catalog serving the old model and codes, untouched; rerunning the same
 * command resumes (staged rows are kept while the target is the same; another target discards
 * them). Searches wait while the switch rebuilds the pgvector index.
 *
 * Replicas still running the old model afterwards refuse searches and adds and report not ready
 * (IndexModelMismatchError: the stored hashes no longer match theirs) until restarted with the new
 * model; they never mix old-model codes into the new catalog.
 */
import { type CodeInput, toPackedCode, validateBits } from '../codes.js';
import { IndexParamError } from '../errors.js';
import { decodeHalf, encodeHalf } from '../float16.js';
import { checkEmbedding, checkOod, normaliseLabels } from '../records.js';
import type { ReembedOptions, ReembedOutput, ReembedReport } from '../reembed.js';
import type { PostgresBackend } from './backend.js';
import type { SqlQuery } from './client.js';
import { bitString, halvesOf, num, vectorBytesSql, vectorParam } from './rows.js';

/** Any fixed key, distinct from the migration lock: one switch at a time. */
const REEMBED_LOCK = 0x5197_11e1;

export interface PgReembedOptions extends ReembedOptions {
  /** pgvector HNSW parameters for the index rebuilt at the switch (default m 16, ef_construction 64). */
  index?: { M?: number | undefined; efConstruction?: number | undefined };
}

interface Target {
  modelHash: string;
  codesHash: string;
  bits: number;
  oodBasis: string | null;
}

/** Thrown inside the switch to roll it back: a row added meanwhile cannot be recomputed. */
class Unavailable extends Error {}

export async function reembedPostgres(cat: PostgresBackend, opts: PgReembedOptions): Promise<ReembedReport> {
  cat.assertWritableFor('re-embed the catalog');
  const meta = cat.pgMeta;
  const target: Target = { modelHash: opts.modelHash, codesHash: opts.codesHash, bits: opts.bits === undefined ? meta.bits : validateBits(opts.bits), oodBasis: opts.oodBasis ?? null };
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new IndexParamError('batchSize', batchSize, 'a positive integer');
  const switching = target.modelHash !== meta.modelHash || target.codesHash !== meta.codesHash || target.bits !== meta.bits;
  // Same model and codes: only rows without a score on the basis (the SQLite rule); else every row.
  if (!switching && target.oodBasis === null) return { updated: 0, removed: 0, unavailable: [], complete: true };
  const stage = new Stage(cat, target, switching);
  await stage.prepare();
  const pending = await stage.pending();
  const report: ReembedReport = { updated: 0, removed: 0, unavailable: [], complete: false };
  opts.onProgress?.(0, pending.length);
  for (let start = 0; start < pending.length; start += batchSize) {
    const ids = pending.slice(start, start + batchSize);
    const outs = await stage.compute(cat.db, ids, opts);
    report.unavailable.push(...outs.filter((o) => o.out === null).map((o) => o.id));
    await cat.db.transaction(async (tx) => {
      await stage.checkTarget(tx);
      await stage.write(tx, outs);
    });
    opts.onProgress?.(Math.min(start + batchSize, pending.length), pending.length);
  }
  if (report.unavailable.length > 0 && opts.dropUnavailable !== true) return report;
  try {
    const done = await cat.db.transaction((tx) => stage.switchOver(tx, report.unavailable, opts));
    const m = cat.pgMeta;
    if (switching) Object.assign(m, { bits: target.bits, modelHash: target.modelHash, codesHash: target.codesHash, hnsw: m.vector === 'halfvec' || m.hnsw });
    return { ...done, unavailable: [], complete: true };
  } catch (err) {
    if (err instanceof Unavailable) return report;
    throw err;
  }
}

class Stage {
  private readonly json: string;

  constructor(
    private readonly cat: PostgresBackend,
    private readonly target: Target,
    private readonly switching: boolean,
  ) {
    this.json = JSON.stringify(target);
  }

  /** Creates the staging tables; staged rows of another target are discarded. */
  async prepare(): Promise<void> {
    const vector = this.cat.pgMeta.vector === 'halfvec' ? `halfvec(${this.cat.pgMeta.embeddingDim})` : 'bytea';
    await this.cat.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [REEMBED_LOCK]);
      await tx.query('CREATE TABLE IF NOT EXISTS reembed_target (id int PRIMARY KEY CHECK (id = 1), target text NOT NULL)');
      await tx.query(
        `CREATE TABLE IF NOT EXISTS reembed_rows (id bigint PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE, code varbit NOT NULL,
         vector ${vector}, sketch bytea, labels jsonb, top_label text, ood_set boolean NOT NULL, ood_score double precision, ood_basis text)`,
      );
      const prior = (await tx.query<{ target: string }>('SELECT target FROM reembed_target WHERE id = 1')).rows[0]?.target;
      if (prior === this.json) return;
      await tx.query('TRUNCATE reembed_rows');
      await tx.query('INSERT INTO reembed_target (id, target) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET target = excluded.target', [this.json]);
    });
  }

  /** Ids still to compute, in id order: every row not staged, or (same model) the unscored ones. */
  async pending(q: SqlQuery = this.cat.db): Promise<number[]> {
    const scoreFilter = this.switching ? '' : 'AND i.ood_basis IS DISTINCT FROM $1';
    const params = this.switching ? [] : [this.target.oodBasis];
    const rows = (await q.query<{ id: unknown }>(`SELECT i.id FROM images i WHERE NOT EXISTS (SELECT 1 FROM reembed_rows r WHERE r.id = i.id) ${scoreFilter} ORDER BY i.id`, params)).rows;
    return rows.map((r) => num(r.id));
  }

  /** Another run switched the target meanwhile: stop rather than mix two targets' rows. */
  async checkTarget(tx: SqlQuery): Promise<void> {
    const now = (await tx.query<{ target: string }>('SELECT target FROM reembed_target WHERE id = 1 FOR SHARE')).rows[0]?.target;
    if (now !== this.json) throw new IndexParamError('reindex', this.target.codesHash, 'the only re-embedding of this catalog (another `sightline reindex` with other models started meanwhile)');
  }

  async compute(q: SqlQuery, ids: number[], opts: ReembedOptions): Promise<{ id: number; out: ReembedOutput | null }[]> {
    const { vector } = this.cat.pgMeta;
    const rows = (
      await q.query<{ id: unknown; source: string; sha256: string; v: unknown }>(
        `SELECT i.id, i.source, i.sha256, ${vectorBytesSql(vector)} AS v FROM images i JOIN embeddings e ON e.id = i.id WHERE i.id = ANY($1::bigint[]) ORDER BY i.id`,
        [ids],
      )
    ).rows;
    const out: { id: number; out: ReembedOutput | null }[] = [];
    for (const r of rows) {
      const id = num(r.id);
      out.push({ id, out: await opts.compute({ id, source: r.source, sha256: r.sha256, embedding: decodeHalf(halvesOf(vector, r.v)) }) });
    }
    return out;
  }

  /** Stages computed rows (null: not computable, left out). */
  async write(tx: SqlQuery, outs: { id: number; out: ReembedOutput | null }[]): Promise<void> {
    const m = this.cat.pgMeta;
    for (const { id, out } of outs) {
      if (out === null) continue;
      const code = bitString(toPackedCode(out.code as CodeInput, this.target.bits, `code of image ${id}`), this.target.bits);
      const labels = out.labels === undefined ? null : normaliseLabels(out.labels);
      let emb: string | Buffer | null = null;
      let sketch: Buffer | null = null;
      if (out.embedding !== undefined) {
        const halves = encodeHalf(checkEmbedding(out.embedding, m.embeddingDim, `embedding of image ${id}`));
        emb = vectorParam(m.vector, Buffer.from(halves.buffer, halves.byteOffset, halves.byteLength));
        sketch = this.cat.sketch.encode(out.embedding);
      }
      const oodSet = out.ood !== undefined || out.embedding !== undefined;
      const ood = checkOod(out.ood, `ood of image ${id}`);
      await tx.query(
        `INSERT INTO reembed_rows (id, code, vector, sketch, labels, top_label, ood_set, ood_score, ood_basis)
         VALUES ($1, $2::varbit, $3${m.vector === 'halfvec' ? '::halfvec' : ''}, $4, $5::jsonb, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET code = excluded.code, vector = excluded.vector, sketch = excluded.sketch, labels = excluded.labels,
           top_label = excluded.top_label, ood_set = excluded.ood_set, ood_score = excluded.ood_score, ood_basis = excluded.ood_basis`,
        [id, code, emb, sketch, labels && JSON.stringify(labels), labels?.[0]?.label ?? null, oodSet, ood?.score ?? null, ood?.basis ?? null],
      );
    }
  }

  /** The final transaction (see the file comment). */
  async switchOver(tx: SqlQuery, unavailable: number[], opts: PgReembedOptions): Promise<{ updated: number; removed: number }> {
    const m = this.cat.pgMeta;
    const t = this.target;
    await tx.query('SELECT pg_advisory_xact_lock($1)', [REEMBED_LOCK]);
    await this.checkTarget(tx);
    await tx.query(`SELECT key FROM meta WHERE key IN ('bits', 'model_hash', 'code_model_hash') FOR UPDATE`);
    await tx.query('LOCK TABLE images IN SHARE ROW EXCLUSIVE MODE');
    const drop = [...unavailable];
    // Rows added while the batches ran (no add can start now): computed here, under the locks.
    const known = new Set(unavailable);
    const late = (await this.pending(tx)).filter((id) => !known.has(id));
    if (late.length > 0) {
      const outs = await this.compute(tx, late, opts);
      for (const o of outs) if (o.out === null) drop.push(o.id);
      if (outs.some((o) => o.out === null) && opts.dropUnavailable !== true) throw new Unavailable();
      await this.write(tx, outs);
    }
    const removed = drop.length === 0 ? 0 : (await tx.query('DELETE FROM images WHERE id = ANY($1::bigint[]) RETURNING id', [drop])).rows.length;
    if (this.switching) {
      await tx.query('DROP INDEX IF EXISTS images_code_hnsw');
      await tx.query('DROP INDEX IF EXISTS images_code');
      // The values are replaced just below; the cast only gives the column its new width.
      if (t.bits !== m.bits) await tx.query(`ALTER TABLE images ALTER COLUMN code TYPE bit(${t.bits}) USING code::bit(${t.bits})`);
    }
    const updated = (
      await tx.query(
        `UPDATE images i SET code = r.code::bit(${t.bits}), sketch = coalesce(r.sketch, i.sketch),
           labels = coalesce(r.labels, i.labels), top_label = CASE WHEN r.labels IS NULL THEN i.top_label ELSE r.top_label END,
           ood_score = CASE WHEN r.ood_set THEN r.ood_score ELSE i.ood_score END, ood_basis = CASE WHEN r.ood_set THEN r.ood_basis ELSE i.ood_basis END,
           model_hash = $1, code_model_hash = $2, updated_at = now()
         FROM reembed_rows r WHERE r.id = i.id RETURNING i.id`,
        [t.modelHash, t.codesHash],
      )
    ).rows.length;
    await tx.query('UPDATE embeddings e SET vector = r.vector FROM reembed_rows r WHERE r.id = e.id AND r.vector IS NOT NULL');
    if (this.switching) {
      await tx.query('CREATE INDEX images_code ON images (code)');
      if (m.vector === 'halfvec') await tx.query(hnswIndexSql(opts.index));
    }
    for (const [key, value] of [['bits', String(t.bits)], ['model_hash', t.modelHash], ['code_model_hash', t.codesHash]]) {
      await tx.query('UPDATE meta SET value = $2 WHERE key = $1', [key, value]);
    }
    // Nothing rewritten (a rerun with every row scored already): derived results stay valid.
    if (this.switching || updated > 0 || removed > 0) await tx.query('UPDATE catalog_state SET generation = generation + 1, images = images - $1 WHERE id = 1', [removed]);
    await tx.query('DROP TABLE reembed_rows, reembed_target');
    return { updated, removed };
  }
}

/** The pgvector HNSW index on the codes (bit_hamming_ops). */
export function hnswIndexSql(params: { M?: number | undefined; efConstruction?: number | undefined } = {}): string {
  const m = Math.trunc(params.M ?? 16);
  const ef = Math.trunc(params.efConstruction ?? 64);
  return `CREATE INDEX images_code_hnsw ON images USING hnsw (code bit_hamming_ops) WITH (m = ${m}, ef_construction = ${ef})`;
}
