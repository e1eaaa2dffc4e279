import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Catalog } from '../../index/index.js';
import { hammingPacked } from '../../index/index.js';
import { roundToHalf } from '../../index/float16.js';
import { search, type SearchContext } from '../../index/search.js';
import { selectSmallest } from '../../index/pool.js';
import { dataset, euclidean, flipBits, rng } from './fixtures/synthetic.js';
import { openTest, tempDir } from './fixtures/catalog.js';

describe('two-stage search', () => {
  const { dir, cleanup } = tempDir();
  // 30 clusters × ~40 images, 6 top labels; one rare label on 12 images spread over all clusters.
  const items = dataset({ n: 1200, clusters: 30, labels: 6, seed: 61 });
  const rand = rng(62);
  for (const [i, it] of items.entries()) {
    if (i % 100 === 7) {
      it.label = 'rare';
      it.image = { ...it.image, labels: [{ label: 'rare', probability: 0.9 }] };
    }
  }
  let cat: Catalog;
  let stored: Float32Array[];
  before(async () => {
    cat = await openTest(dir, { scanThreshold: 0 });
    cat.addMany(items.map((x) => x.image));
    stored = items.map((_, i) => cat.embedding(i + 1)!);
  });
  after(() => {
    cat.close();
    cleanup();
  });

  /** Exact answer: Euclidean over the stored (float16) embeddings of the eligible images. */
  function bruteForce(q: Float32Array, k: number, label?: string): number[] {
    return items
      .map((it, i) => ({ id: i + 1, d: euclidean(stored[i]!, q), label: it.label }))
      .filter((x) => label === undefined || x.label === label)
      .sort((a, b) => a.d - b.d || a.id - b.id)
      .slice(0, k)
      .map((x) => x.id);
  }

  it('HNSW candidates + re-rank equal brute-force Euclidean top-k for near-duplicate queries', () => {
    for (let t = 0; t < 30; t++) {
      const src = items[Math.floor(rand() * items.length)]!;
      const q = { code: flipBits(src.code, 128, 2, rand), embedding: roundToHalf(stored[items.indexOf(src)]!.map((v) => v * (1 + 0.01 * (rand() - 0.5)))) };
      // Pre-rounded to float16 like the search does, so brute force sees the same query.
      const res = cat.search(q, { k: 10 });
      assert.equal(res.engine, 'hnsw');
      assert.ok(res.candidates >= 100, 'at least k × oversample, ties at the cut-off included');
      assert.deepEqual(res.hits.map((h) => h.id), bruteForce(q.embedding, 10));
      for (const h of res.hits) {
        assert.equal(h.hamming, hammingPacked(items[h.id - 1]!.code, q.code));
        assert.ok(Math.abs(h.distance! - euclidean(stored[h.id - 1]!, q.embedding)) < 1e-3);
      }
    }
  });

  it('rerank off orders by Hamming distance, ties by id, and needs no embedding', () => {
    for (let t = 0; t < 10; t++) {
      const q = flipBits(items[t * 37]!.code, 128, 3, rand);
      const res = cat.search({ code: q }, { k: 20, rerank: false });
      assert.ok(res.hits.every((h) => h.distance === null));
      const exact = cat.scan(q, 20);
      assert.deepEqual(res.hits.map((h) => h.hamming), exact.hamming, 'same distances as the exact scan');
      for (let i = 1; i < res.hits.length; i++) {
        const a = res.hits[i - 1]!;
        const b = res.hits[i]!;
        assert.ok(a.hamming < b.hamming || (a.hamming === b.hamming && a.id < b.id));
      }
    }
  });

  it('a selective label filter (1% of images) is exact: it falls back to the scan', () => {
    const q = items[3]!;
    const res = cat.search({ code: q.code, embedding: q.embedding }, { k: 10, label: 'rare' });
    assert.equal(res.engine, 'scan');
    assert.deepEqual(res.hits.map((h) => h.id), bruteForce(stored[3]!, 10, 'rare'));
    assert.ok(res.hits.every((h) => h.labels[0]!.label === 'rare'));
  });

  it('a label filter through HNSW (forced) still returns only matching images, exactly ranked', () => {
    // The catalog's own context with the scan shortcuts disabled, so the filter runs inside HNSW.
    const ctx: SearchContext = {
      bits: 128,
      embeddingDim: 4096,
      matrix: cat.matrix,
      hnsw: cat.hnsw,
      store: cat.store,
      sketch: cat.sketch,
      scanThreshold: 0,
      filterScanFraction: 0,
      labelIndex: (l) => cat.labelIndex(l),
      labelCount: (i) => cat.labelCount(i),
    };
    for (let t = 0; t < 10; t++) {
      const q = { code: items[t * 91]!.code, embedding: stored[t * 91]! };
      const label = `class-${t % 6}`;
      const res = search(ctx, q, { k: 5, label, oversample: 20 });
      assert.notEqual(res.engine, 'scan');
      assert.equal(res.hits.length, 5);
      assert.ok(res.hits.every((h) => h.labels[0]!.label === label));
      const rare = search(ctx, q, { k: 10, label: 'rare' });
      assert.notEqual(rare.engine, 'scan');
      assert.deepEqual(rare.hits.map((h) => h.id), bruteForce(q.embedding, 10, 'rare'), 'all 12 rare images are candidates, re-rank is exact');
    }
  });

  it('an unknown label returns nothing', () => {
    assert.deepEqual(cat.search({ code: items[0]!.code, embedding: items[0]!.embedding }, { label: 'no-such-label' }).hits, []);
  });

  it('k larger than the collection returns every eligible image once', () => {
    const res = cat.search({ code: items[0]!.code, embedding: items[0]!.embedding }, { k: 100, label: 'rare' });
    assert.equal(res.hits.length, 12);
    assert.equal(new Set(res.hits.map((h) => h.id)).size, 12);
  });
});

describe('selectSmallest (the sketch narrowing selects before it sorts)', () => {
  it('puts exactly the k smallest distinct keys first, for every k, with duplicates-free keys like the search', () => {
    const rand = rng(71);
    for (const n of [1, 2, 7, 100, 1000]) {
      // The search's keys: float32 distance bits × 2^21 + position, so all distinct; many equal distances.
      const keys = Float64Array.from({ length: n }, (_, i) => Math.floor(rand() * 20) * 2 ** 21 + i);
      const sorted = [...keys].sort((a, b) => a - b);
      for (const k of [0, 1, Math.floor(n / 3), n - 1, n]) {
        const a = keys.slice();
        selectSmallest(a, n, k);
        assert.deepEqual([...a.subarray(0, k)].sort((x, y) => x - y), sorted.slice(0, k), `n=${n} k=${k}`);
        assert.deepEqual([...a].sort((x, y) => x - y), sorted, 'a permutation');
      }
    }
  });
});
