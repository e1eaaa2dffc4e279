/**
 * `reindex --codes` on a PostgreSQL catalog (index/pg/reembed.ts) against the SQLite catalog
 * re-encoded with the same codes model (an ONNX projection to 64 bits): the same stored codes and
 * the same search ids afterwards. An interrupted run leaves the old catalog serving unchanged and
 * the rerun resumes from the staged rows; an image added meanwhile is re-encoded at the switch; a
 * replica still holding the old codes model is refused (search, add, readiness) instead of mixing
 * codes. On PGlite + pgvector (the HNSW index is rebuilt at 64 bits) through the library, and on
 * Debian's PostgreSQL 15 through the `sightline reindex --db URL` command (skipped without it;
 * Debian package: postgresql).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { register as registerReindex } from '../../cli/commands/reindex.js';
import { Catalog, type CatalogBackend, IndexModelMismatchError, openPostgresWith, poolClient, PostgresBackend, reembed, reembedPostgres, type ReembedOptions, type SqlClient } from '../../index/index.js';
import { createCodesSession } from '../../model/index.js';
import { runCli } from '../../testing/cli.js';
import { pgliteClient } from '../../testing/pglite.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { writeCodesModel } from './fixtures/codes-model.js';
import { dataset, gaussian, rng } from './fixtures/synthetic.js';
import { openTest, tempDir } from './fixtures/catalog.js';

const DIM = 256;
const MODEL = 'ab'.repeat(32);
const items = dataset({ n: 300, dim: DIM, clusters: 15, seed: 61 });
// Added to PostgreSQL while the rerun's batches run (to SQLite before its re-encoding, same id).
const late = dataset({ n: 1, dim: DIM, seed: 62, offset: 300 })[0]!;
const rand = rng(63);
const queries = items.filter((_, i) => i % 23 === 0).map((it) => ({ code: it.code, embedding: it.embedding.map((v) => Math.max(0, v + 0.02 * gaussian(rand))) }));
const OPTS = { bits: 128, embeddingDim: DIM, modelHash: MODEL, codesHash: 'codes-v1' };

/** Runs `sightline reindex` in-process; returns stdout. */
const reindexCli = (args: string[]): Promise<string> => runCli([registerReindex], ['reindex', ...args]);

let cluster: PgCluster | undefined;
after(async () => cluster?.stop());

interface Setup {
  name: string;
  skip: string | false;
  /** A fresh database: a client for the catalog, another for the stale replica, and the URL for the CLI (none for PGlite). */
  connect(): Promise<{ main: SqlClient; replica: SqlClient; url?: string }>;
}

const setups: Setup[] = [
  {
    name: 'PGlite + pgvector (library)',
    skip: false,
    async connect() {
      const main = await pgliteClient();
      // One in-process database: the "replica" shares the connection (closing it is the catalog's job).
      return { main, replica: { ...main, close: async () => undefined } };
    },
  },
  {
    name: 'PostgreSQL 15 (sightline reindex --db URL)',
    skip: postgresSkipReason(),
    async connect() {
      cluster ??= await startPostgres();
      const url = await cluster.createDatabase();
      return { main: poolClient(url, url), replica: poolClient(url, url), url };
    },
  },
];

describe('reindex --codes on PostgreSQL = the SQLite catalog re-encoded with the same codes model', () => {
  const tmp = tempDir();
  const codesPath = join(tmp.dir, 'codes-64.onnx');
  const otherPath = join(tmp.dir, 'codes-other.onnx');
  let codesHash: string;
  let sqlite: Catalog;
  let encode: ReembedOptions['compute'];
  let closeCodes: () => Promise<void>;
  let codeOf: (e: Float32Array) => Promise<Uint8Array>;

  before(async () => {
    writeCodesModel(codesPath, { bits: 64, modelHash: MODEL, dim: DIM, seed: 9 });
    writeCodesModel(otherPath, { bits: 64, modelHash: 'cd'.repeat(32), dim: DIM, seed: 9 });
    codesHash = createHash('sha256').update(readFileSync(codesPath)).digest('hex');
    const codes = await createCodesSession(codesPath);
    // What the CLI computes per row (cli/commands/reindex.ts).
    encode = async (row) => ({ code: await codes.encode(row.embedding, 1) });
    closeCodes = () => codes.close();
    codeOf = (e) => codes.encode(e, 1);
    const sq = await openTest(join(tmp.dir, 'sqlite'), OPTS);
    sq.addMany([...items.map((x) => x.image), late.image]);
    sq.close();
    await reembed(join(tmp.dir, 'sqlite'), { modelHash: MODEL, codesHash, bits: 64, compute: encode });
    sqlite = await openTest(join(tmp.dir, 'sqlite'), { ...OPTS, bits: 64, codesHash });
  });
  after(async () => {
    sqlite?.close();
    await closeCodes?.();
    tmp.cleanup();
  });

  for (const s of setups) {
    describe(s.name, { skip: s.skip }, () => {
      let db: { main: SqlClient; replica: SqlClient; url?: string };
      let pg: PostgresBackend;
      let stale: CatalogBackend;
      const searchAll = async (cat: CatalogBackend) => Promise.all(queries.map(async (q) => (await cat.search(q, { k: 10 })).hits.map((h) => h.id)));

      before(async () => {
        db = await s.connect();
        pg = await openPostgresWith(db.main, OPTS);
        await pg.addMany(items.map((x) => x.image));
        stale = await openPostgresWith(db.replica, OPTS);
      });
      after(async () => {
        await stale?.close();
        await pg?.close();
      });

      it('an interrupted run changes nothing the catalog serves; the rerun resumes from the staged rows', async () => {
        const before = await searchAll(pg);
        const generation = await pg.generation();
        let calls = 0;
        const crashing: ReembedOptions['compute'] = async (row) => {
          if (++calls > 100) throw new Error('killed');
          return encode(row);
        };
        await assert.rejects(reembedPostgres(pg, { modelHash: MODEL, codesHash, bits: 64, compute: crashing, batchSize: 64 }), /killed/);
        assert.deepEqual(await searchAll(pg), before, 'same answers as before the run');
        assert.equal(await pg.generation(), generation);
        assert.equal(pg.meta.bits, 128);
        assert.equal(num((await db.main.query<{ n: unknown }>('SELECT count(*) AS n FROM reembed_rows')).rows[0]?.n), 64, 'the first batch is staged');
        assert.deepEqual(await stale.search(queries[0]!, { k: 10 }).then((r) => r.hits.map((h) => h.id)), before[0]);
      });

      it('finishes (resuming), re-encodes an image added meanwhile, and stores the codes SQLite stores', async () => {
        if (db.url === undefined) {
          let calls = 0;
          const report = await reembedPostgres(pg, {
            modelHash: MODEL,
            codesHash,
            bits: 64,
            batchSize: 64,
            compute: async (row) => {
              // An upload through another replica while the batches run: staged at the switch.
              if (++calls === 1) assert.equal((await stale.add(late.image)).existed, false);
              return encode(row);
            },
          });
          assert.equal(calls, items.length - 64 + 1, 'the rows not staged by the interrupted run, and the late image at the switch');
          assert.deepEqual(report, { updated: items.length + 1, removed: 0, unavailable: [], complete: true });
        } else {
          await stale.add(late.image);
          const out = await reindexCli(['--db', db.url, '--codes', codesPath]);
          assert.match(out, new RegExp(`^recomputed ${items.length + 1} codes \\(64 bits\\)`));
          assert.match(out, /64-bit codes, exact scan \(no pgvector\)/);
        }
        const fresh = await openPostgresWith(db.url === undefined ? { ...db.main, close: async () => undefined } : poolClient(db.url, db.url), { ...OPTS, bits: 64, codesHash });
        try {
          assert.equal(await fresh.count(), items.length + 1);
          for (let id = 1; id <= items.length + 1; id++) assert.deepEqual((await fresh.get(id))!.code, sqlite.get(id)!.code, `code of image ${id}`);
          const type = (await db.main.query<{ t: string }>(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'images'::regclass AND attname = 'code'`)).rows[0]?.t;
          assert.equal(type, 'bit(64)');
          assert.equal((await db.main.query<{ t: string | null }>(`SELECT to_regclass('reembed_rows')::text AS t`)).rows[0]?.t, null, 'staging dropped');
          for (const q of queries) {
            const query = { code: await codeOf(q.embedding), embedding: q.embedding };
            const want = sqlite.search(query, { k: 10 });
            const got = await fresh.search(query, { k: 10 });
            assert.deepEqual(got.hits.map((h) => h.id), want.hits.map((h) => h.id));
          }
          const pgvector = db.url === undefined;
          assert.equal((fresh as PostgresBackend).pgMeta.hnsw, pgvector, 'the pgvector index is rebuilt on the new codes');
          if (pgvector) {
            const ann = new PostgresBackend(fresh.db, fresh.pgMeta, { readOnly: true, scanThreshold: 0, filterScanFraction: 0.1, efSearch: 40 });
            const own = sqlite.embedding(17)!;
            const r = await ann.search({ code: sqlite.get(17)!.code, embedding: own }, { k: 5 });
            assert.deepEqual([r.engine, r.hits[0]?.id, r.hits[0]?.distance], ['hnsw', 17, 0]);
          }
        } finally {
          await fresh.close();
        }
      });

      it('a replica still on the old codes model refuses searches, adds and readiness', async () => {
        const mismatch = (e: unknown) => e instanceof IndexModelMismatchError && /code model differs/.test(e.message) && /bits differs \(stored '64', loaded '128'\)/.test(e.message);
        await assert.rejects(stale.search(queries[0]!, { k: 10 }), mismatch);
        await assert.rejects(stale.add(dataset({ n: 1, dim: DIM, seed: 64, offset: 400 })[0]!.image), mismatch);
        await assert.rejects(stale.ping(), mismatch);
      });

      // The CLI takes a URL: PostgreSQL 15 only.
      if (!s.name.startsWith('PGlite')) it('bad arguments: a codes model of another image model, --drop-unavailable without --model', async () => {
        await assert.rejects(reindexCli(['--db', db.url!, '--codes', otherPath]), /was trained for the image model/);
        await assert.rejects(reindexCli(['--db', db.url!, '--codes', codesPath, '--drop-unavailable']), /'--drop-unavailable' applies to --model only/);
        await assert.rejects(reindexCli(['--db', db.url!, '--codes', join(tmp.dir, 'nope.onnx')]), /nope\.onnx/);
      });
    });
  }
});

describe('reindex --model with the serving model on PostgreSQL: only the unscored rows, nothing else switched', () => {
  it('scores the rows without a score on the basis, keeps codes, hashes and the replicas current', async () => {
    const db = await pgliteClient();
    const pg = await openPostgresWith(db, OPTS);
    const replica = await openPostgresWith({ ...db, close: async () => undefined }, OPTS);
    try {
      const few = items.slice(0, 30);
      // Ten rows scored on the 'energy' basis, twenty unscored (indexed before scores existed).
      await pg.addMany(few.map((x, i) => (i < 10 ? { ...x.image, ood: { score: -i, basis: 'energy' } } : x.image)));
      const generation = await pg.generation();
      const seen: number[] = [];
      const report = await reembedPostgres(pg, {
        modelHash: MODEL,
        codesHash: 'codes-v1',
        oodBasis: 'energy',
        compute: async (row) => (seen.push(row.id), { code: items[row.id - 1]!.code, embedding: row.embedding, ood: { score: row.id / 10, basis: 'energy' } }),
      });
      assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 11));
      assert.deepEqual(report, { updated: 20, removed: 0, unavailable: [], complete: true });
      assert.deepEqual((await pg.get(3))!.ood, { score: -2, basis: 'energy' });
      assert.deepEqual((await pg.get(25))!.ood, { score: 2.5, basis: 'energy' });
      assert.deepEqual((await pg.get(25))!.code, items[24]!.code);
      assert.equal(await pg.generation(), generation + 1);
      // Same model and codes: a replica started before is still current and answers.
      assert.equal((await replica.search({ code: items[4]!.code, embedding: items[4]!.embedding }, { k: 1 })).hits[0]?.id, 5);
      assert.deepEqual(await reembedPostgres(pg, { modelHash: MODEL, codesHash: 'codes-v1', oodBasis: 'energy', compute: async () => assert.fail('nothing left to score') }), {
        updated: 0,
        removed: 0,
        unavailable: [],
        complete: true,
      });
      assert.equal(await pg.generation(), generation + 1, 'a run that rewrites nothing leaves the generation');
    } finally {
      await replica.close();
      await pg.close();
    }
  });
});

function num(v: unknown): number {
  return Number(v);
}
