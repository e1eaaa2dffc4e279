/**
 * Two server runtimes (replicas) on one PostgreSQL catalog (Debian package: postgresql; skipped
 * without it), each with its own data folder and a shared blob folder: the same upload through both
 * at once is one image, both answer searches alike, a delete through one is seen by the other, and
 * when the database goes away readiness says so and requests get 503 `unavailable`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { demoImage, startTestServer, tempDir, type TestServer } from './helpers.js';

describe('replicas on one PostgreSQL catalog', { skip: postgresSkipReason() }, () => {
  let cluster: PgCluster;
  let a: TestServer;
  let b: TestServer;
  const blobs = tempDir();
  before(async () => {
    cluster = await startPostgres();
    const databaseUrl = await cluster.createDatabase();
    a = await startTestServer({ databaseUrl, blobDir: blobs.path });
    b = await startTestServer({ databaseUrl, blobDir: blobs.path });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
    blobs.cleanup();
  });

  it('uploads are idempotent across replicas; search and deletes agree', async () => {
    assert.equal(a.rt.catalog.kind, 'postgres');
    const bag = demoImage('bag/00.png');
    const [ra, rb] = await Promise.all([request(a.app).post('/v1/images').attach('image', bag, 'bag.png'), request(b.app).post('/v1/images').attach('image', bag, 'bag.png')]);
    assert.deepEqual([ra.status, rb.status].sort(), [200, 201]);
    assert.equal(ra.body.id, rb.body.id);
    for (const name of ['sandal/00.png', 'sandal/01.png', 'bag/01.png']) assert.equal((await request(b.app).post('/v1/images').attach('image', demoImage(name), 'x.png')).status, 201);
    assert.equal(await a.rt.gallery.size(), 4);
    const query = demoImage('sandal/02.png');
    const [sa, sb] = await Promise.all([request(a.app).post('/v1/search').attach('image', query, 'q.png'), request(b.app).post('/v1/search').attach('image', query, 'q.png')]);
    assert.equal(sa.status, 200);
    assert.deepEqual(sa.body.results.map((h: { id: number }) => h.id), sb.body.results.map((h: { id: number }) => h.id));
    assert.equal(sa.body.results.length, 4);
    const gone = sa.body.results[0].id as number;
    assert.equal((await request(a.app).delete(`/v1/images/${gone}`)).status, 204);
    assert.equal((await request(b.app).get(`/v1/images/${gone}`)).status, 404);
    const after = await request(b.app).post('/v1/search').attach('image', query, 'q.png');
    assert.ok(!after.body.results.some((h: { id: number }) => h.id === gone));
  });

  it('a database that goes away: not ready, with the reason, and 503 unavailable', async () => {
    assert.equal(a.rt.readiness().ready, true);
    await cluster.stop();
    const deadline = Date.now() + 10_000;
    while (a.rt.readiness().ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const r = a.rt.readiness();
    assert.equal(r.ready, false);
    assert.match(r.reason, /^database unreachable: database 'postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+' is unreachable/);
    const res = await request(a.app).get('/v1/images/1');
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'unavailable');
    assert.equal(res.body.error.reason, 'database_unavailable');
  });
});
