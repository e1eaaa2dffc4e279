/**
 * Opening a PostgreSQL catalog on a real server (Debian package: postgresql; the cases skip without
 * it): replicas creating the schema at once, idempotent adds from two processes' pools at once, a
 * database that cannot be reached, a schema from a newer release, a catalog of another model.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256Hex, IndexModelMismatchError, IndexSchemaTooNewError, IndexUnavailableError, openBackend, parseDbLocation, type CatalogBackend } from '../../index/index.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { dataset } from './fixtures/synthetic.js';
import { HASHES } from './fixtures/catalog.js';

const OPTS = { bits: 128, embeddingDim: 64, ...HASHES };

describe('PostgreSQL catalog on a real server', { skip: postgresSkipReason() }, () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => cluster?.stop());

  it('two replicas creating the schema at once both open it; concurrent overlapping adds store each image once', async () => {
    const loc = parseDbLocation(await cluster.createDatabase());
    const [a, b] = await Promise.all([openBackend(loc, OPTS), openBackend(loc, OPTS)]);
    try {
      const items = dataset({ n: 60, dim: 64, seed: 5 }).map((x) => x.image);
      // Same images, opposite orders, batches and single adds interleaved: no deadlock, no double.
      const results = await Promise.all([a.addMany(items.slice(0, 40)), b.addMany(items.slice(20).reverse()), ...items.slice(10, 30).map((x, i) => (i % 2 ? a : b).add(x))]);
      assert.equal(await a.count(), 60);
      assert.equal(await b.count(), 60);
      const ids = new Map<string, number>();
      for (const r of results.flat()) assert.ok(r.id >= 1);
      for (const x of items) {
        const id = await a.findBySha256(sha256Hex(x.bytes as Uint8Array));
        assert.ok(id !== undefined && !ids.has(String(id)));
        ids.set(String(id), 1);
      }
      const created = results.flat().filter((r) => !r.existed).length;
      assert.equal(created, 60, 'each image created exactly once');
      // A delete through one replica is seen by the other's next query.
      assert.equal(await a.remove(1), true);
      assert.equal(await b.get(1), undefined);
      assert.equal(await b.count(), 59);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('refuses a catalog of another model, and a schema from a newer release', async () => {
    const url = await cluster.createDatabase();
    const loc = parseDbLocation(url);
    await (await openBackend(loc, OPTS)).close();
    await assert.rejects(openBackend(loc, { ...OPTS, modelHash: 'model-other' }), IndexModelMismatchError);
    const cat: CatalogBackend = await openBackend(loc, OPTS);
    const pgCat = cat as unknown as { db: { query(t: string): Promise<unknown> } };
    await pgCat.db.query('INSERT INTO schema_version (version) VALUES (99)');
    await cat.close();
    await assert.rejects(openBackend(loc, OPTS), (err: unknown) => {
      assert.ok(err instanceof IndexSchemaTooNewError);
      assert.equal(err.kind, 'conflict');
      assert.match(err.message, /schema version 99, made by a newer Sightline; this build knows up to version \d+: upgrade Sightline/);
      return true;
    });
    await assert.rejects(openBackend(loc, { readOnly: true }), IndexSchemaTooNewError);
  });

  it('an unreachable database is an `unavailable` error naming the URL without its password', async () => {
    // A database that does not exist on a live server, and a port where nothing listens.
    for (const url of [`postgres://app:hunter2@127.0.0.1:${cluster.port}/nope_no_such_db`, 'postgres://app:hunter2@127.0.0.1:1/sightline']) {
      await assert.rejects(openBackend(parseDbLocation(url), OPTS), (err: unknown) => {
        assert.ok(err instanceof IndexUnavailableError, String(err));
        assert.equal(err.kind, 'unavailable');
        assert.match(err.message, /database 'postgres:\/\/app:\*\*\*@127\.0\.0\.1:\d+\/\w+' is unreachable/);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    }
  });
});
