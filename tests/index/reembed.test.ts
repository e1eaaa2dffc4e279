import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IndexModelMismatchError, reembed, type ReembedRow } from '../../index/index.js';
import { dataset } from './fixtures/synthetic.js';
import { HASHES, openTest, tempDir } from './fixtures/catalog.js';

/** A stand-in "new autoencoder": bit i = e[i] > e[i + 128], computed from the stored embedding alone. */
function newCode(row: ReembedRow): number[] {
  return Array.from({ length: 128 }, (_, i) => (row.embedding[i]! > row.embedding[i + 128]! ? 1 : -1));
}

describe('reembed (model / autoencoder change)', () => {
  it('recomputes codes, switches hashes only when complete, resumes, and the graph is rebuilt', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const items = dataset({ n: 200, seed: 91 });
      let cat = await openTest(dir);
      cat.addMany(items.map((x) => x.image));
      cat.close();

      const v2 = { modelHash: HASHES.modelHash, codesHash: 'codes-v2' };
      const progress: number[] = [];
      const r1 = await reembed(dir, { ...v2, compute: async (row) => ({ code: newCode(row) }), batchSize: 64, onProgress: (d) => progress.push(d) });
      assert.deepEqual(r1, { updated: 200, removed: 0, unavailable: [], complete: true });
      assert.deepEqual(progress, [0, 64, 128, 192, 200]);
      await assert.rejects(openTest(dir), (e: unknown) => e instanceof IndexModelMismatchError && e.differences[0]!.field === 'code model');

      cat = await openTest(dir, v2);
      assert.equal(cat.openReport.rebuilt, true);
      assert.match(cat.openReport.reason!, /stale/);
      const rec = cat.get(17)!;
      assert.equal(rec.codesHash, 'codes-v2');
      const hit = cat.search({ code: rec.code, embedding: items[16]!.embedding }, { k: 1 }).hits[0]!;
      assert.deepEqual([hit.id, hit.hamming, hit.distance], [17, 0, 0]);
      cat.close();

      // Sources gone for 1 image in 10: the run stops short, meta keeps the old hashes.
      const v3 = { modelHash: 'model-v3', codesHash: 'codes-v3' };
      const compute = async (row: ReembedRow) =>
        row.id % 10 === 0 ? null : { code: newCode(row), embedding: row.embedding.map((v) => v * 2), labels: [{ label: 'relabelled', probability: 0.8 }] };
      const r2 = await reembed(dir, { ...v3, compute });
      assert.equal(r2.complete, false);
      assert.equal(r2.updated, 180);
      assert.deepEqual(r2.unavailable, Array.from({ length: 20 }, (_, i) => (i + 1) * 10));
      await assert.rejects(openTest(dir, v3), IndexModelMismatchError);

      // Resuming touches only the 20 rows still on the old hashes; they are dropped this time.
      let calls = 0;
      const r3 = await reembed(dir, { ...v3, dropUnavailable: true, compute: async (row) => (calls++, compute(row)) });
      assert.deepEqual(r3, { updated: 0, removed: 20, unavailable: [], complete: true });
      assert.equal(calls, 20);

      cat = await openTest(dir, v3);
      try {
        assert.equal(cat.stats().images, 180);
        assert.equal(cat.stats().indexSize, 180);
        assert.equal(cat.get(10), undefined);
        assert.deepEqual(cat.get(11)!.labels, [{ label: 'relabelled', probability: 0.8 }]);
        const e = cat.embedding(11)!;
        assert.ok(Math.abs(e[5]! - 2 * items[10]!.embedding[5]!) <= 4 * items[10]!.embedding[5]! * 2 ** -11 + 1e-6);
        const res = cat.search({ code: cat.get(11)!.code, embedding: e }, { k: 3, label: 'relabelled' });
        assert.equal(res.hits[0]!.id, 11);
      } finally {
        cat.close();
      }
    } finally {
      cleanup();
    }
  });

  it('out-of-distribution scores: unscored rows are re-encoded with oodBasis, kept by a codes-only run, cleared by a new embedding without one', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const items = dataset({ n: 30, seed: 7 });
      let cat = await openTest(dir);
      // Ten rows scored on the 'energy' basis, twenty unscored (as rows from before schema 3 are).
      cat.addMany(items.map((x, i) => (i < 10 ? { ...x.image, ood: { score: -i, basis: 'energy' } } : x.image)));
      cat.close();

      // Same model and codes: only the rows not scored on the basis are pending.
      const seen: number[] = [];
      const scored = await reembed(dir, { ...HASHES, oodBasis: 'energy', compute: async (row) => (seen.push(row.id), { code: newCode(row), embedding: row.embedding, ood: { score: row.id / 10, basis: 'energy' } }) });
      assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 11));
      assert.deepEqual(scored, { updated: 20, removed: 0, unavailable: [], complete: true });

      // A codes-only run (no oodBasis, no new embedding) leaves every score alone.
      const v2 = { modelHash: HASHES.modelHash, codesHash: 'codes-v2' };
      await reembed(dir, { ...v2, compute: async (row) => ({ code: newCode(row) }) });
      cat = await openTest(dir, v2);
      assert.deepEqual(cat.get(3)!.ood, { score: -2, basis: 'energy' });
      assert.deepEqual(cat.get(25)!.ood, { score: 2.5, basis: 'energy' });
      cat.close();

      // A new model whose compute gives no score: the old model's scores must not survive.
      const v3 = { modelHash: 'model-v3', codesHash: 'codes-v2' };
      await reembed(dir, { ...v3, compute: async (row) => ({ code: newCode(row), embedding: row.embedding }) });
      cat = await openTest(dir, v3);
      try {
        for (const id of [1, 3, 25]) assert.equal(cat.get(id)!.ood, null, `image ${id}`);
      } finally {
        cat.close();
      }
    } finally {
      cleanup();
    }
  });
});
