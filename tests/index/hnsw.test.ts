import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hammingPacked } from '../../index/index.js';
import { CodeHnsw, DEFAULT_HNSW } from '../../index/hnsw.js';
import { CodeMatrix, recallWithTies } from '../../index/scan.js';
import { flipBits, randomCode, rng } from './fixtures/synthetic.js';

function clustered(n: number, bits: number, seed: number): Uint8Array[] {
  const rand = rng(seed);
  const centres = Array.from({ length: Math.ceil(n / 25) }, () => randomCode(rand, bits));
  return Array.from({ length: n }, () => flipBits(centres[Math.floor(rand() * centres.length)] as Uint8Array, bits, Math.floor(rand() * 12), rand));
}

describe('HNSW over ±1 codes', () => {
  it('recall@10 (ties count as hits) vs the exact scan is ≥ 0.95 on clustered codes', () => {
    const bits = 128;
    const codes = clustered(2000, bits, 5);
    const graph = CodeHnsw.create(bits, { ...DEFAULT_HNSW, efSearch: 32 }, 256);
    const exact = new CodeMatrix(bits);
    codes.forEach((c, i) => {
      graph.add(i + 1, c);
      exact.set(i + 1, c);
    });
    assert.equal(graph.size, 2000);
    assert.ok(graph.capacity >= 2000, 'grew by resizeIndex');
    const rand = rng(6);
    let recall = 0;
    const queries = 200;
    for (let t = 0; t < queries; t++) {
      const q = flipBits(codes[Math.floor(rand() * codes.length)] as Uint8Array, bits, 5, rand);
      const ann = graph.search(q, 10);
      const truth = exact.topK(q, 10);
      ann.ids.forEach((id, i) => assert.equal(ann.hamming[i], hammingPacked(codes[id - 1] as Uint8Array, q), 'distance/4 is the Hamming distance'));
      recall += recallWithTies(ann.hamming, truth.hamming, 10);
    }
    recall /= queries;
    assert.ok(recall >= 0.95, `recall@10 = ${recall}`);
  });

  it('markDelete hides an element and the slot is reused by the next add', () => {
    const bits = 64;
    const codes = clustered(300, bits, 8);
    const graph = CodeHnsw.create(bits, DEFAULT_HNSW, 300);
    codes.forEach((c, i) => graph.add(i + 1, c));
    const target = codes[41] as Uint8Array;
    assert.equal(graph.search(target, 1).ids[0] !== undefined, true);
    graph.remove(42);
    assert.ok(!graph.search(target, 300).ids.includes(42));
    assert.equal(graph.size, 299);
    const slots = graph.slots;
    graph.add(1000, target);
    assert.equal(graph.slots, slots, 'deleted slot reused, no growth');
    assert.deepEqual(graph.search(target, 1), { ids: [1000], hamming: [0] });
    assert.ok(graph.holds(1000, target));
    assert.ok(!graph.holds(42, target), 'deleted label is gone');
  });
});
