import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrateThreshold, makeCopies, rankOf, RecallTally, sampleIndices, TRANSFORMS, transformSquare } from '../../training/codes/near-dup.js';
import type { SquareDataset } from '../../training/data/dataset.js';

describe('instance retrieval helpers (near-duplicate eval)', () => {
  it('rank with ties broken by index, recall@1/@10 from ranks', () => {
    assert.equal(rankOf([3, 1, 2, 1], 3), 1, 'index 1 ties at 1 and comes first');
    assert.equal(rankOf([3, 1, 2, 1], 1), 0);
    assert.equal(rankOf([3, 1, 2, 1], 0), 3);
    const t = new RecallTally();
    for (const r of [0, 0, 5, 12, -1]) t.add(r);
    assert.deepEqual(t.result(), { recall_at_1: 0.4, recall_at_10: 0.6 });
  });

  it('the threshold with the best F1, its precision and recall', () => {
    // Copies at 0.1–0.4 from their originals; nearest other images at 0.35 and beyond.
    const th = calibrateThreshold([0.1, 0.2, 0.3, 0.4], [0.35, 0.9, 1.2, 2]);
    assert.equal(th.distance, 0.4);
    assert.equal(th.recall, 1);
    assert.equal(th.precision, 0.8);
    const clean = calibrateThreshold([0.1, 0.2], [0.5, 0.6]);
    assert.deepEqual(clean, { distance: 0.2, precision: 1, recall: 1 });
  });

  it('a seeded sample without repeats; three transformed copies per original, each different from it', async () => {
    const s = sampleIndices(50, 20, 7);
    assert.equal(new Set(s).size, 20);
    assert.deepEqual(s, sampleIndices(50, 20, 7));
    const size = 16;
    const pixels = new Uint8Array(2 * size * size);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 200;
    const ds: SquareDataset = { n: 2, size, channels: 1, pixels, labels: Int32Array.from([3, 5]), classNames: [] };
    const { copies, origin } = await makeCopies(ds, Int32Array.from([1, 0]));
    assert.equal(copies.n, 2 * TRANSFORMS.length);
    assert.deepEqual([...origin], [1, 1, 1, 0, 0, 0]);
    assert.deepEqual([...copies.labels], [5, 5, 5, 3, 3, 3]);
    const src = pixels.subarray(size * size);
    for (let t = 0; t < TRANSFORMS.length; t++) {
      const out = copies.pixels.subarray(t * size * size, (t + 1) * size * size);
      assert.notDeepEqual(out, src, `${TRANSFORMS[t]} changed the pixels`);
    }
    const bright = await transformSquare(src, size, 1, 'brightness');
    assert.equal(bright[5], Math.min(255, Math.round((src[5] as number) * 1.25)));
  });
});
