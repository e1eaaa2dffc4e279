/**
 * Near-duplicates inside a shared code: the bundled codes model puts a whole class on one code, and
 * the search used to cut stage 1 at k × oversample in (Hamming, id) order, so a near-copy of an
 * image with a high id inside that code was never a candidate. These queries fail on that behaviour.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Catalog } from '../../index/index.js';
import { dataset, gaussian, rng, type SynthItem } from './fixtures/synthetic.js';
import { openTest, tempDir } from './fixtures/catalog.js';

describe('search inside a shared code (tie-heavy codes)', () => {
  // 600 images of one cluster, all with exactly the same code; 200 others elsewhere.
  const tied = dataset({ n: 600, clusters: 1, flips: 0, dim: 256, seed: 131 });
  const others = dataset({ n: 200, clusters: 20, dim: 256, seed: 132, offset: 600 });
  const rand = rng(133);
  const nearCopy = (e: Float32Array): Float32Array => e.map((v) => Math.max(0, v + 0.02 * gaussian(rand)));

  for (const [name, scanThreshold] of [['exact scan', 100_000], ['HNSW', 0]] as const) {
    describe(name, () => {
      const { dir, cleanup } = tempDir();
      let cat: Catalog;
      before(async () => {
        cat = await openTest(dir, { embeddingDim: 256, scanThreshold });
        cat.addMany([...tied, ...others].map((x) => x.image));
      });
      after(() => {
        cat.close();
        cleanup();
      });

      it('finds the near-copy of a high id first, with every image of the shared code a candidate', () => {
        for (const id of [599, 500, 450, 300, 150]) {
          const src = tied[id - 1]!;
          const res = cat.search({ code: src.code, embedding: nearCopy(src.embedding) }, { k: 10 });
          assert.equal(res.hits[0]?.id, id, `near-copy of image ${id}`);
          assert.ok(res.candidates >= 600, `the whole tie of 600 is the pool (got ${res.candidates})`);
        }
      });

      it('a smaller k × oversample than the tie still finds it', () => {
        const src = tied[577]!;
        const res = cat.search({ code: src.code, embedding: nearCopy(src.embedding) }, { k: 1, oversample: 1 });
        assert.deepEqual(res.hits.map((h) => h.id), [578]);
      });

      it('without the re-rank the order stays Hamming, then id', () => {
        const res = cat.search({ code: tied[577]!.code }, { k: 5, rerank: false });
        assert.deepEqual(res.hits.map((h) => h.id), [1, 2, 3, 4, 5]);
      });
    });
  }

  // The pool reads past k × oversample images: the original sits 2 bits from the query's code, and
  // a code 1 bit away holds 150 images, more than k × oversample = 100 on its own. HNSW pools used
  // to stop there (the scan's pool went on to 1000), so above the scan threshold the copy was lost.
  describe('the pool goes past a nearer shared code (scan and HNSW engines)', () => {
    const bits = (c: Uint8Array, ...at: number[]): Uint8Array => {
      const out = new Uint8Array(c);
      for (const b of at) out[b >>> 3] = (out[b >>> 3] as number) ^ (1 << (b & 7));
      return out;
    };
    const home = dataset({ n: 10, clusters: 1, flips: 0, dim: 256, seed: 141, offset: 1000 });
    const queryCode = bits(home[0]!.code, 3, 77);
    const crowd = dataset({ n: 150, clusters: 1, flips: 0, dim: 256, seed: 142, offset: 2000 }).map((x): SynthItem => {
      const code = bits(queryCode, 120);
      return { ...x, code, image: { ...x.image, code } };
    });
    for (const [name, scanThreshold] of [['exact scan', 100_000], ['HNSW (scan threshold lowered to 0)', 0]] as const) {
      it(name, async () => {
        const { dir, cleanup } = tempDir();
        const cat = await openTest(dir, { embeddingDim: 256, scanThreshold });
        try {
          cat.addMany([...crowd, ...home].map((x) => x.image));
          const target = home[7]!;
          const res = cat.search({ code: queryCode, embedding: nearCopy(target.embedding) }, { k: 10 });
          assert.equal(res.engine, scanThreshold === 0 ? 'hnsw' : 'scan');
          assert.equal(res.candidates, 160, 'both codes whole: 150 at 1 bit, 10 at 2 bits');
          assert.equal(res.hits[0]?.id, 158, 'the near-copy of the 8th image of the farther code');
        } finally {
          cat.close();
          cleanup();
        }
      });
    }
  });
});
