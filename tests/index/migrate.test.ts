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
