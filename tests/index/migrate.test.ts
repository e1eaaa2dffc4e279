import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { IndexSchemaError, openCatalog } from '../../index/index.js';
import { SCHEMA_VERSION } from '../../index/store.js';
import { tempDir } from './fixtures/catalog.js';

const FIXTURE = new URL('./fixtures/catalog-v1/sightline.db', import.meta.url).pathname;
const HASHES = { modelHash: 'model-v1-fixture', codesHash: 'codes-v1-fixture' };

describe('schema migration from a catalog made by the previous release (version 1)', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('a read-only open refuses it and says how to upgrade', async () => {
    const ro = join(dir, 'ro');
    await openCatalog(ro, { ...HASHES, create: true, bits: 32, embeddingDim: 16 }).then((c) => c.close());
    copyFileSync(FIXTURE, join(ro, 'sightline.db'));
    await assert.rejects(openCatalog(ro, { readOnly: true }), (err: unknown) => err instanceof IndexSchemaError && /version 1.*open it once for writing/.test(err.message));
  });

  it('a writable open upgrades it in place: rows kept, sketches computed, copies recorded from now on', async () => {
    const rw = join(dir, 'rw');
    await openCatalog(rw, { ...HASHES, bits: 32, embeddingDim: 16 }).then((c) => c.close());
    copyFileSync(FIXTURE, join(rw, 'sightline.db'));
    const cat = await openCatalog(rw, HASHES);
    try {
      assert.equal(cat.meta.schemaVersion, SCHEMA_VERSION);
      assert.equal(cat.stats().images, 6);
      assert.equal(cat.get(3)?.source, 'photos/img-2.png');
      for (let id = 1; id <= 6; id++) {
        const row = cat.matrix.rowOfId(id)!;
        const q = cat.sketch.project(cat.embedding(id)!);
        const qn = q.reduce((s, v) => s + v * v, 0);
        // The stored sketch of an image is (up to int8 rounding) its own projection.
        assert.ok(cat.matrix.sketchDistance(row, q, qn) < 1e-3 * qn + 1e-6, `sketch of image ${id}`);
      }
      const e = cat.embedding(5)!;
      assert.equal(cat.search({ code: cat.get(5)!.code, embedding: e }, { k: 1 }).hits[0]?.id, 5);
      // The copy v1 skipped silently is re-indexed: now it is recorded.
      const again = cat.add({ source: 'photos/copy-of-img-2.png', bytes: Buffer.from('fixture image 2'), width: 28, height: 28, labels: [], code: cat.get(3)!.code, embedding: cat.embedding(3)! });
      assert.deepEqual(again, { id: 3, existed: true });
      assert.deepEqual(cat.store.copiesOf(3).map((c) => c.source), ['photos/copy-of-img-2.png']);
    } finally {
      cat.close();
    }
    const reopened = await openCatalog(rw, { ...HASHES, readOnly: true });
    assert.equal(reopened.meta.schemaVersion, SCHEMA_VERSION);
    assert.equal(reopened.store.copiesOf(3).length, 1);
    reopened.close();
  });
});

const FIXTURE_V2 = new URL('./fixtures/catalog-v2/sightline.db', import.meta.url).pathname;
const HASHES_V2 = { modelHash: 'model-v2-fixture', codesHash: 'codes-v2-fixture' };

describe('schema migration from a catalog made by the previous release (version 2)', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('a read-only open refuses it and says how to upgrade', async () => {
    const ro = join(dir, 'ro');
    await openCatalog(ro, { ...HASHES_V2, create: true, bits: 32, embeddingDim: 16 }).then((c) => c.close());
    copyFileSync(FIXTURE_V2, join(ro, 'sightline.db'));
    await assert.rejects(openCatalog(ro, { readOnly: true }), (err: unknown) => err instanceof IndexSchemaError && /version 2.*open it once for writing/.test(err.message));
  });

  it('a writable open upgrades it in place: rows, sketches and copies kept, old rows unscored, new rows scored', async () => {
    const rw = join(dir, 'rw');
    await openCatalog(rw, { ...HASHES_V2, bits: 32, embeddingDim: 16 }).then((c) => c.close());
    copyFileSync(FIXTURE_V2, join(rw, 'sightline.db'));
    const cat = await openCatalog(rw, HASHES_V2);
    try {
      assert.equal(cat.meta.schemaVersion, SCHEMA_VERSION);
      assert.equal(SCHEMA_VERSION, 3);
      assert.equal(cat.stats().images, 6);
      assert.equal(cat.get(4)?.source, 'photos/img-3.png');
      assert.deepEqual(cat.get(4)?.labels, [{ label: 'odd', probability: 0.9 }, { label: 'even', probability: 0.1 }]);
      // Rows from version 2 have no score: null, never a made-up number.
      for (let id = 1; id <= 6; id++) assert.equal(cat.get(id)?.ood, null, `image ${id}`);
      assert.deepEqual(cat.store.copiesOf(3).map((c) => c.source), ['photos/copy-of-img-2.png']);
      const e = cat.embedding(2)!;
      const hit = cat.search({ code: cat.get(2)!.code, embedding: e }, { k: 1 }).hits[0];
      assert.equal(hit?.id, 2);
      assert.equal(hit?.ood, null);
      const added = cat.add({ source: 'photos/new.png', bytes: Buffer.from('new image'), width: 8, height: 8, labels: [{ label: 'odd', probability: 1 }], code: new Uint8Array([1, 2, 3, 4]), embedding: e, ood: { score: -3.25, basis: 'energy' } });
      assert.deepEqual(cat.get(added.id)?.ood, { score: -3.25, basis: 'energy' });
    } finally {
      cat.close();
    }
    const reopened = await openCatalog(rw, { ...HASHES_V2, readOnly: true });
    assert.equal(reopened.meta.schemaVersion, 3);
    assert.deepEqual(reopened.get(7)?.ood, { score: -3.25, basis: 'energy' });
    assert.equal(reopened.get(1)?.ood, null);
    reopened.close();
  });
});
