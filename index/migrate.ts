/**
 * Schema versions of the catalog database and the steps between them. Each step upgrades the
 * database made by the previous release in place; the caller (ImageStore) runs them inside the
 * transaction that opens the database, so a crash leaves the old version intact and the next open
 * simply runs the step again.
 *
 * 1 → 2: `images.sketch` (sketch.ts: the projection that ranks images inside a shared code),
 *        computed here from every stored embedding, with `sketch_dim`/`sketch_seed` in meta; the
 *        `copies` table (other paths whose bytes had the same SHA-256) is created by the schema.
 * 2 → 3: `images.ood_score` and `images.ood_basis` (how far the image is from the model's training
 *        data, and what that score means: model/ood.ts oodBasis). Rows made before are left NULL:
 *        computing them needs the image bytes and the model, so they are filled when the row is
 *        next encoded (`sightline reindex --model`), and read as "not scored" until then.
 */
import type Database from 'better-sqlite3';
import { IndexSchemaError } from './errors.js';
import { decodeHalf, halfView } from './float16.js';
import { DEFAULT_SKETCH_DIM, DEFAULT_SKETCH_SEED, SketchProjection } from './sketch.js';

export const SCHEMA_VERSION = 3;

type Step = (db: Database.Database) => void;

const STEPS: Record<number, Step> = {
  1: addSketches,
  2: addOodScores,
};

function metaValue(db: Database.Database, key: string): string | undefined {
  return db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get(key);
}

/** Upgrades `db` to SCHEMA_VERSION; a newer version than this build knows is left for readMeta to refuse. */
export function migrate(db: Database.Database, path: string): void {
  const raw = metaValue(db, 'schema_version');
  if (raw === undefined) return; // never initialised: the schema and meta are written fresh
  let version = Number(raw);
  if (!Number.isInteger(version)) throw new IndexSchemaError(`database '${path}': meta 'schema_version' is not an integer (${raw})`);
  while (version < SCHEMA_VERSION) {
    const step = STEPS[version];
    if (step === undefined) throw new IndexSchemaError(`database '${path}' has schema version ${version}, which this build cannot upgrade`);
    step(db);
    version++;
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(version));
  }
}

function addSketches(db: Database.Database): void {
  const dim = Number(metaValue(db, 'embedding_dim'));
  db.exec('ALTER TABLE images ADD COLUMN sketch BLOB');
  const put = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  put.run('sketch_dim', String(DEFAULT_SKETCH_DIM));
  put.run('sketch_seed', String(DEFAULT_SKETCH_SEED));
  const projection = new SketchProjection(dim, DEFAULT_SKETCH_DIM, DEFAULT_SKETCH_SEED);
  const update = db.prepare<[Buffer, number]>('UPDATE images SET sketch = ? WHERE id = ?');
  const rows = db.prepare('SELECT id, vector FROM embeddings ORDER BY id').raw().iterate() as Iterable<[number, Buffer]>;
  // Collected first: better-sqlite3 runs no other statement while an iterator is open.
  const sketches: [Buffer, number][] = [];
  for (const [id, vector] of rows) sketches.push([projection.encode(decodeHalf(halfView(vector))), id]);
  for (const [sketch, id] of sketches) update.run(sketch, id);
}

function addOodScores(db: Database.Database): void {
  db.exec('ALTER TABLE images ADD COLUMN ood_score REAL');
  db.exec('ALTER TABLE images ADD COLUMN ood_basis TEXT');
}
