import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** The same codes in a graph and in the exact matrix (ids 1..n). */
function indexBoth(codes: Uint8Array[], bits: number, params = DEFAULT_HNSW, capacity = 64): { graph: CodeHnsw; exact: CodeMatrix } {
  const graph = CodeHnsw.create(bits, params, capacity);
  const exact = new CodeMatrix(bits);
  codes.forEach((c, i) => {
    graph.add(i + 1, c);
    exact.set(i + 1, c);
  });
  return { graph, exact };
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
    assert.ok(graph.remove(42, target));
    assert.ok(!graph.remove(42, target), 'already gone');
    assert.ok(!graph.search(target, 300).ids.includes(42));
    assert.equal(graph.size, 299);
    const slots = graph.slots;
    graph.add(1000, target);
    assert.equal(graph.slots, slots, 'deleted slot reused, no growth');
    assert.deepEqual(graph.search(target, 1), { ids: [1000], hamming: [0] });
    assert.ok(graph.holds(1000, target));
    assert.ok(!graph.holds(42, target), 'deleted label is gone');
  });

  // The bundled codes model pulls each class to one hash center, so most images of a class share
  // one code: the graph must still find them (one node per distinct code, expanded to its images).
  function centerHeavy(n: number, bits: number, seed: number): Uint8Array[] {
    const rand = rng(seed);
    const centres = Array.from({ length: 10 }, () => randomCode(rand, bits));
    return Array.from({ length: n }, () => {
      const c = centres[Math.floor(rand() * centres.length)] as Uint8Array;
      return rand() < 0.6 ? new Uint8Array(c) : flipBits(c, bits, 1 + Math.floor(rand() * 6), rand);
    });
  }

  it('codes shared by thousands of images: one node per code, recall@10 ≥ 0.95, ties in id order like the scan', () => {
    const bits = 128;
    const codes = centerHeavy(6000, bits, 11);
    const { graph, exact } = indexBoth(codes, bits);
    const distinct = new Set(codes.map((c) => Buffer.from(c).toString('hex'))).size;
    assert.equal(graph.size, 6000);
    assert.equal(graph.codes, distinct);
    assert.ok(distinct < 3000, `most codes are shared (${distinct} distinct)`);
    const rand = rng(12);
    let recall = 0;
    const queries = 300;
    for (let t = 0; t < queries; t++) {
      const q = flipBits(codes[Math.floor(rand() * codes.length)] as Uint8Array, bits, Math.floor(rand() * 4), rand);
      const ann = graph.search(q, 10);
      const truth = exact.topK(q, 10);
      assert.equal(ann.ids.length, 10);
      ann.ids.forEach((id, i) => assert.equal(ann.hamming[i], hammingPacked(codes[id - 1] as Uint8Array, q)));
      recall += recallWithTies(ann.hamming, truth.hamming, 10);
    }
    recall /= queries;
    assert.ok(recall >= 0.95, `recall@10 = ${recall}`);
    // A query equal to a shared code: its 10 smallest ids, exactly what the scan returns.
    const shared = codes[0] as Uint8Array;
    assert.deepEqual(graph.search(shared, 10), exact.topK(shared, 10));
  });

  it('removing images of a shared code keeps its node until the last one goes; a label filter sees image ids', () => {
    const bits = 64;
    const a = randomCode(rng(3), bits);
    const b = flipBits(a, bits, 3, rng(4));
    const graph = CodeHnsw.create(bits, DEFAULT_HNSW, 64);
    [1, 2, 3].forEach((id) => graph.add(id, a));
    graph.add(4, b);
    assert.equal(graph.codes, 2);
    assert.deepEqual(graph.search(a, 4), { ids: [1, 2, 3, 4], hamming: [0, 0, 0, 3] });
    assert.deepEqual(graph.search(a, 2, (id) => id !== 1), { ids: [2, 3], hamming: [0, 0] });
    assert.deepEqual(graph.search(a, 4, (id) => id === 4), { ids: [4], hamming: [3] });
    assert.ok(!graph.remove(2, b), 'image 2 is not stored under code b');
    assert.ok(graph.remove(2, a));
    assert.deepEqual(graph.search(a, 4), { ids: [1, 3, 4], hamming: [0, 0, 3] });
    assert.ok(graph.remove(1, a) && graph.remove(3, a));
    assert.equal(graph.codes, 1);
    assert.equal(graph.size, 1);
    assert.deepEqual(graph.search(a, 4), { ids: [4], hamming: [3] });
    const slots = graph.slots;
    graph.add(9, a);
    assert.equal(graph.slots, slots, 'the deleted node is reused');
    assert.deepEqual(graph.search(a, 4), { ids: [9, 4], hamming: [0, 3] });
  });

  it('nodes at the same distance are merged by id, reading no more ids than needed', () => {
    const bits = 64;
    const a = randomCode(rng(30), bits);
    const b = flipBits(a, bits, 1, rng(31));
    let c = flipBits(a, bits, 1, rng(32));
    if (hammingPacked(b, c) === 0) c = flipBits(b, bits, 2, rng(33));
    const graph = CodeHnsw.create(bits, DEFAULT_HNSW, 64);
    graph.add(1, a);
    [4, 10, 12].forEach((id) => graph.add(id, b));
    [5, 6, 20].forEach((id) => graph.add(id, c));
    const db = hammingPacked(a, b);
    const dc = hammingPacked(a, c);
    const expected = [
      [1, 0],
      ...[4, 10, 12].map((id) => [id, db]),
      ...[5, 6, 20].map((id) => [id, dc]),
    ].sort((x, y) => (x[1] as number) - (y[1] as number) || (x[0] as number) - (y[0] as number));
    for (const k of [1, 3, 5, 7]) {
      const top = expected.slice(0, k);
      assert.deepEqual(graph.search(a, k), { ids: top.map((e) => e[0]), hamming: top.map((e) => e[1]) }, `k = ${k}`);
    }
    // A shared code larger than k gives its k smallest ids.
    for (let id = 100; id < 3100; id++) graph.add(id, b);
    assert.deepEqual(graph.search(b, 5), { ids: [4, 10, 12, 100, 101], hamming: [0, 0, 0, 0, 0] });
  });

  it('load() re-attaches images to nodes by code and refuses rows the file does not match', () => {
    const bits = 128;
    const codes = centerHeavy(500, bits, 21);
    const { graph, exact: rows } = indexBoth(codes, bits);
    graph.remove(500, codes[499] as Uint8Array);
    rows.delete(500);
    const dir = mkdtempSync(join(tmpdir(), 'sightline-hnsw-'));
    try {
      const file = join(dir, 'g.hnsw');
      graph.writeSync(file);
      const loaded = CodeHnsw.load(file, bits, DEFAULT_HNSW, rows);
      assert.ok(typeof loaded !== 'string', String(loaded));
      assert.equal(loaded.size, 499);
      assert.equal(loaded.codes, graph.codes);
      for (const q of codes.slice(0, 20)) assert.deepEqual(loaded.search(q, 10), graph.search(q, 10));
      const extra = new CodeMatrix(bits);
      codes.slice(0, 499).forEach((c, i) => extra.set(i + 1, c));
      extra.set(1000, flipBits(codes[0] as Uint8Array, bits, 40, rng(5)));
      assert.match(String(CodeHnsw.load(file, bits, DEFAULT_HNSW, extra)), /no node for the code of image 1000/);
      const fewer = new CodeMatrix(bits);
      const lonely = codes.findIndex((c, i) => i < 499 && codes.filter((d) => hammingPacked(c, d) === 0).length === 1);
      codes.slice(0, 499).forEach((c, i) => i !== lonely && fewer.set(i + 1, c));
      assert.match(String(CodeHnsw.load(file, bits, DEFAULT_HNSW, fewer)), /1 codes that no image has/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
