/**
 * The PostgreSQL backend against the SQLite catalog on the same images: the same ids (and
 * distances) for the same queries, label filters, rerank off, max_distance, ties inside a shared
 * code, deletes and idempotent adds. On PGlite with pgvector (HNSW index present; the exact scan
 * below the threshold, HNSW above it) and, when Debian's PostgreSQL 15 is installed, on a real
 * server (exact `bit_count` scan: no pgvector there); without it those cases skip (Debian package: postgresql).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Catalog, type CatalogBackend, openPostgresWith, poolClient, PostgresBackend, type SearchOptions } from '../../index/index.js';
import { pgliteClient } from '../../testing/pglite.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { dataset, gaussian, rng, type SynthItem } from './fixtures/synthetic.js';
import { HASHES, openTest, tempDir } from './fixtures/catalog.js';

const DIM = 256;
const clustered = dataset({ n: 400, dim: DIM, clusters: 20, seed: 41 });
// One shared code for 150 images: the pool must hold the whole tie, never its lowest ids only.
const tied = dataset({ n: 150, dim: DIM, clusters: 1, flips: 0, seed: 42, offset: 400 });
// Every third image carries an unknown-image score (SQLite schema 3), the others none.
const items = [...clustered, ...tied].map((x, i) => (i % 3 === 0 ? { ...x, image: { ...x.image, ood: { score: 0.1 + i / 7, basis: 'energy' } } } : x));
const rand = rng(43);
const nearCopy = (e: Float32Array): Float32Array => e.map((v) => Math.max(0, v + 0.02 * gaussian(rand)));
const queries: SynthItem[] = [...clustered.filter((_, i) => i % 37 === 0), ...tied.filter((_, i) => i % 29 === 7)].map((it) => ({ ...it, embedding: nearCopy(it.embedding) }));
const OPTIONS: SearchOptions[] = [{ k: 10 }, { k: 5, label: 'class-2' }, { k: 10, rerank: false }, { k: 20, oversample: 3 }, { k: 10, maxDistance: 6 }];

type Backend = { name: string; open: (opts: { scanThreshold: number }) => Promise<CatalogBackend>; skip: string | false; cleanup?: () => Promise<void> };

let cluster: PgCluster | undefined;
const pgSkip = postgresSkipReason();
const backends: Backend[] = [
  { name: 'PGlite + pgvector', skip: false, open: async (o) => openPostgresWith(await pgliteClient(), { bits: 128, embeddingDim: DIM, ...HASHES, ...o }) },
  {
    name: 'PostgreSQL 15 (exact scan)',
    skip: pgSkip,
    open: async (o) => {
      cluster ??= await startPostgres();
      const url = await cluster.createDatabase();
      return openPostgresWith(poolClient(url, url), { bits: 128, embeddingDim: DIM, ...HASHES, ...o });
    },
  },
];
after(async () => cluster?.stop());

describe('PostgreSQL backend = SQLite catalog on the same images', () => {
  const tmp = tempDir();
  let sqlite: Catalog;
  before(async () => {
    sqlite = await openTest(tmp.dir, { embeddingDim: DIM });
    sqlite.addMany(items.map((x) => x.image));
  });
  after(() => {
    sqlite.close();
    tmp.cleanup();
  });

  for (const b of backends) {
    describe(b.name, { skip: b.skip }, () => {
      let pg: CatalogBackend;
      before(async () => {
        pg = await b.open({ scanThreshold: 100_000 });
        // Two batches, the second overlapping the first: idempotent by SHA-256.
        await pg.addMany(items.slice(0, 300).map((x) => x.image));
        const again = await pg.addMany(items.slice(250).map((x) => x.image));
        assert.deepEqual(again.slice(0, 50).map((r) => r.existed), new Array(50).fill(true));
      });
      after(async () => pg?.close());

      it('stores the same rows under the same ids', async () => {
        assert.equal(await pg.count(), items.length);
        for (const id of [1, 77, 400, 550]) {
          const [a, e] = [await pg.get(id), sqlite.get(id)];
          assert.deepEqual({ ...a, createdAt: '', updatedAt: '' }, { ...e, createdAt: '', updatedAt: '' });
          assert.deepEqual(await pg.embedding(id), sqlite.embedding(id));
        }
        assert.equal(await pg.findBySha256(sqlite.get(123)!.sha256), 123);
      });

      it('answers every query with the same ids, distances and flags (exact scan)', async () => {
        for (const q of queries) {
          for (const o of OPTIONS) {
            const want = sqlite.search({ code: q.code, embedding: q.embedding }, o);
            const got = await pg.search({ code: q.code, embedding: q.embedding }, o);
            assert.equal(got.engine, 'scan');
            assert.deepEqual(got.hits, want.hits, `query ${q.image.source} ${JSON.stringify(o)}`);
            assert.equal(got.candidates, want.candidates);
          }
        }
      });

      it('keeps embeddings as halfvec with an HNSW index when pgvector is there, else float16 bytea', () => {
        assert.ok(pg instanceof PostgresBackend);
        const pgvector = b.name.startsWith('PGlite');
        assert.equal(pg.pgMeta.vector, pgvector ? 'halfvec' : 'bytea');
        assert.equal(pg.pgMeta.hnsw, pgvector);
      });

      it('above the scan threshold: pgvector HNSW finds the near-copy first and the exact answer (else the scan)', async () => {
        assert.ok(pg instanceof PostgresBackend);
        const ann = new PostgresBackend(pg.db, pg.pgMeta, { readOnly: true, scanThreshold: 0, filterScanFraction: 0.1, efSearch: 40 });
        let same = 0;
        let total = 0;
        for (const q of queries) {
          const exact = sqlite.search({ code: q.code, embedding: q.embedding }, { k: 10 }).hits.map((h) => h.id);
          const got = await ann.search({ code: q.code, embedding: q.embedding }, { k: 10 });
          assert.equal(got.engine, pg.pgMeta.hnsw ? 'hnsw' : 'scan');
          assert.equal(got.hits[0]?.id, exact[0], `near-copy of ${q.image.source} first`);
          same += got.hits.filter((h) => exact.includes(h.id)).length;
          total += exact.length;
        }
        assert.ok(same / total >= 0.95, `recall@10 of the exact answer ${same}/${total}`);
      });

      it('lists the same pages (keyset, label and unknown-image filters)', async () => {
        const strip = (p: { images: { createdAt: string; updatedAt: string }[]; more: boolean }) => ({ ...p, images: p.images.map((r) => ({ ...r, createdAt: '', updatedAt: '' })) });
        const lists = [{ limit: 50 }, { limit: 20, afterId: 100, label: 'class-1' }, { limit: 1000, ood: { basis: 'energy', threshold: 40, unknown: true } }, { limit: 7, afterId: 30, ood: { basis: 'energy', threshold: 40, unknown: false } }];
        for (const o of lists) assert.deepEqual(strip(await pg.list(o)), strip(sqlite.list(o)), JSON.stringify(o));
        assert.ok((await pg.list(lists[2]!)).images.length > 10);
      });

      it('a delete is seen at once; an unknown label finds nothing', async () => {
        const q = queries[0]!;
        const first = (await pg.search({ code: q.code, embedding: q.embedding }, { k: 3 })).hits[0]!.id;
        assert.equal(await pg.remove(first), true);
        assert.equal(await pg.remove(first), false);
        assert.equal(await pg.get(first), undefined);
        assert.ok(!(await pg.search({ code: q.code, embedding: q.embedding }, { k: 3 })).hits.some((h) => h.id === first));
        assert.deepEqual((await pg.search({ code: q.code, embedding: q.embedding }, { label: 'no-such-label' })).hits, []);
        assert.equal(await pg.count(), items.length - 1);
        assert.equal((await pg.addMany([items[first - 1]!.image]))[0]!.existed, false, 'the bytes can come back, under a new id');
      });
    });
  }
});

describe('pgvector HNSW pool: the images within POOL_MARGIN_BITS of the cut, as SQLite takes them', () => {
  // 1,100 images share code A (more than the pool's 1,000: the cut falls at distance 0); the query's
  // near-copy holds code B, 2 bits from A. Without the margin the HNSW pool is A's images only and
  // the near-copy is never re-ranked; the exact scan and SQLite (scan and graph) take B in.
  const shared = dataset({ n: 1100, dim: DIM, clusters: 1, flips: 0, seed: 51, offset: 1000 });
  const codeA = shared[0]!.code;
  const codeB = Uint8Array.from(codeA, (b, i) => (i === 0 ? b ^ 0b101 : b));
  const copy = { ...dataset({ n: 1, dim: DIM, seed: 52, offset: 3000 })[0]!.image, code: codeB, embedding: shared[5]!.embedding.map((v) => v + 0.05) };
  const others = dataset({ n: 100, dim: DIM, clusters: 10, seed: 53, offset: 4000 });
  const all = [...others.map((x) => x.image), ...shared.map((x) => x.image), copy];
  const query = { code: codeA, embedding: copy.embedding.map((v) => Math.max(0, v + 0.01 * gaussian(rand))) };
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('PGlite + pgvector HNSW re-ranks the near-copy 2 bits away first, with the exact answer and pool', async () => {
    const exact = await openTest(join(tmp.dir, 'exact'), { embeddingDim: DIM });
    const graph = await openTest(join(tmp.dir, 'graph'), { embeddingDim: DIM, scanThreshold: 0 });
    const pg = await openPostgresWith(await pgliteClient(), { bits: 128, embeddingDim: DIM, ...HASHES, scanThreshold: 0 });
    try {
      exact.addMany(all);
      graph.addMany(all);
      for (let i = 0; i < all.length; i += 400) await pg.addMany(all.slice(i, i + 400));
      const want = exact.search(query, { k: 10 });
      const copyId = all.length;
      assert.equal(want.hits[0]?.id, copyId, 'the exact answer finds the near-copy');
      const viaGraph = graph.search(query, { k: 10 });
      const got = await pg.search(query, { k: 10 });
      assert.deepEqual([viaGraph.engine, got.engine], ['hnsw', 'hnsw']);
      assert.deepEqual(got.hits.map((h) => h.id), want.hits.map((h) => h.id));
      assert.deepEqual(viaGraph.hits.map((h) => h.id), want.hits.map((h) => h.id));
      assert.equal(got.candidates, want.candidates, 'the pool: code A whole, and B within the margin');
      assert.equal(got.candidates, 1101);
    } finally {
      exact.close();
      graph.close();
      await pg.close();
    }
  });
});
