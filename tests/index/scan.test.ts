import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hammingPacked } from '../../index/index.js';
import { CodeMatrix, recallWithTies } from '../../index/scan.js';
import { flipBits, randomCode, rng } from './fixtures/synthetic.js';

/** Brute force: every (id, distance), sorted by distance then id. */
function bruteForce(rows: Map<number, { code: Uint8Array; label: number }>, q: Uint8Array, k: number, label?: number): { ids: number[]; hamming: number[] } {
  const all = [...rows]
    .filter(([, r]) => label === undefined || r.label === label)
    .map(([id, r]) => ({ id, d: hammingPacked(r.code, q) }))
    .sort((a, b) => a.d - b.d || a.id - b.id)
    .slice(0, k);
  return { ids: all.map((x) => x.id), hamming: all.map((x) => x.d) };
}

describe('exact Hamming scan', () => {
  for (const bits of [64, 128, 256]) {
    it(`top-k equals brute force with ties broken by id (${bits} bits)`, () => {
      const rand = rng(bits);
      // Few distinct base codes → many exact ties at every distance.
      const bases = Array.from({ length: 8 }, () => randomCode(rand, bits));
      const m = new CodeMatrix(bits, 16);
      const rows = new Map<number, { code: Uint8Array; label: number }>();
      for (let i = 0; i < 1500; i++) {
        const id = 1 + Math.floor(rand() * 1e6);
        if (rows.has(id)) continue;
        const code = flipBits(bases[i % 8] as Uint8Array, bits, Math.floor(rand() * 4), rand);
        const label = i % 3;
        rows.set(id, { code, label });
        m.set(id, code, label);
      }
      assert.equal(m.size, rows.size);
      for (let t = 0; t < 40; t++) {
        const q = t % 2 ? flipBits(bases[t % 8] as Uint8Array, bits, 2, rand) : randomCode(rand, bits);
        for (const k of [1, 10, 100]) assert.deepEqual(m.topK(q, k), bruteForce(rows, q, k));
        assert.deepEqual(m.topK(q, 25, 1), bruteForce(rows, q, 25, 1), 'label filter');
      }
      assert.deepEqual(m.topK(randomCode(rand, bits), 1e6).ids.length, rows.size, 'k above size returns everything');
    });
  }

  it('stays exact after deletes (swap-remove) and replacements', () => {
    const rand = rng(99);
    const m = new CodeMatrix(128, 4);
    const rows = new Map<number, { code: Uint8Array; label: number }>();
    for (let id = 1; id <= 600; id++) {
      const code = randomCode(rand, 128);
      rows.set(id, { code, label: 0 });
      m.set(id, code);
    }
    for (let id = 1; id <= 600; id += 3) {
      assert.ok(m.delete(id));
      rows.delete(id);
    }
    assert.equal(m.delete(1), false);
    const replaced = randomCode(rand, 128);
    m.set(2, replaced);
    rows.set(2, { code: replaced, label: 0 });
    assert.equal(m.size, rows.size);
    assert.deepEqual(m.code(2), replaced);
    assert.equal(m.code(1), undefined);
    for (let t = 0; t < 20; t++) {
      const q = randomCode(rand, 128);
      assert.deepEqual(m.topK(q, 50), bruteForce(rows, q, 50));
    }
    assert.deepEqual(m.topK(replaced, 1), { ids: [2], hamming: [0] });
  });

  it('recallWithTies counts results at the k-th distance as hits', () => {
    assert.equal(recallWithTies([0, 1, 2, 2], [0, 1, 2, 2], 4), 1);
    assert.equal(recallWithTies([0, 2, 2, 2], [0, 1, 2, 2], 4), 1, 'a different member of the tie at distance 2');
    assert.equal(recallWithTies([0, 1, 3, 4], [0, 1, 2, 2], 4), 0.5);
    assert.equal(recallWithTies([0], [0, 1], 2), 0.5, 'missing results are misses');
  });

  it('maps ids to rows across swap-removes, dense and far-apart ids alike', () => {
    const rand = rng(91);
    const m = new CodeMatrix(128, 4);
    const ids = [1, 2, 3, 5000, 2 ** 30, 2 ** 31 + 7, 4]; // the id column is 32-bit
    const codes = new Map(ids.map((id) => [id, randomCode(rand, 128)]));
    for (const id of ids) m.set(id, codes.get(id)!);
    for (const gone of [2, 2 ** 30, 1]) assert.equal(m.delete(gone), true);
    assert.equal(m.delete(2), false, 'already gone');
    for (const id of ids) {
      const live = ![2, 2 ** 30, 1].includes(id);
      assert.equal(m.has(id), live, `has(${id})`);
      assert.deepEqual(m.code(id), live ? codes.get(id) : undefined, `code(${id})`);
      if (live) assert.equal(m.idAt(m.rowOfId(id)!), id, `row of ${id}`);
    }
    assert.equal(m.rowOfId(6), undefined);
    assert.equal(m.size, 4);
  });
});
