import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hammingPacked } from '../../index/codes.js';
import { createCodesSession, type CodesMeta } from '../../model/codes.js';
import { sha256File } from '../../model/index.js';
import { createSession } from '../../model/session.js';
import { embedDataset } from '../../training/codes/embed.js';
import { exportCodesOnnx, type EncoderWeights } from '../../training/codes/export.js';
import { loadFashionMnist } from '../../training/data/fashion-mnist.js';
import { kthSmallestInt, MetricMeans, metricsFromRanks, Ranker, rankKey, recallWithTies } from '../../training/retrieval-eval.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { buildTinyModel, type TinyModel } from '../model/tiny-model.js';

const FIXTURES = 'tests/fixtures/fashion-mnist';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) < eps, `${a} ≠ ${b}`);

/** Reference: materialize the whole ranking with Array.sort on (distance as float32, index). */
function bruteRanks(dist: readonly number[], relevant: (i: number) => boolean): number[] {
  const order = dist.map((d, i) => ({ d: Math.fround(d), i })).sort((a, b) => a.d - b.d || a.i - b.i);
  return order.flatMap((o, pos) => (relevant(o.i) ? [pos + 1] : []));
}

describe('ranking metrics', () => {
  it('AP, AP@k and P@10 of a hand-computed ranking', () => {
    // Relevance by rank: 1 0 1 0 0 1 (R = 3): precisions at the hits 1/1, 2/3, 3/6.
    const m = metricsFromRanks([1, 3, 6], 4);
    close(m.ap, (1 + 2 / 3 + 3 / 6) / 3);
    close(m.apAtK, (1 + 2 / 3) / 3);
    close(m.pAt10, 0.3);
    // AP@k divides by min(R, k): with k = 2 only rank 1 counts, over 2.
    close(metricsFromRanks([1, 3, 6], 2).apAtK, 1 / 2);
    // Every relevant image first: all metrics are 1 (P@10 too when R ≥ 10).
    const perfect = metricsFromRanks(Array.from({ length: 12 }, (_, i) => i + 1), 1000);
    assert.deepEqual(perfect, { ap: 1, apAtK: 1, pAt10: 1 });
  });

  it('orders by distance with ties broken by database index', () => {
    const dist = [0.5, 0.1, 0.3, 0.3, 0.9, 0.2];
    const labels = ['A', 'B', 'A', 'B', 'A', 'A'];
    const ranker = new Ranker(dist.length);
    // Order: 1(B) 5(A) 2(A) 3(B) 0(A) 4(A); the tie 2/3 goes to the lower index.
    assert.deepEqual([...ranker.byDistance(dist, (i) => labels[i] === 'A')], [2, 3, 5, 6]);
    assert.deepEqual([...ranker.byDistance(dist, (i) => labels[i] === 'B')], [1, 4]);
    // Swap which of the tied pair is relevant: the relevant one now sits behind.
    const swapped = ['A', 'B', 'B', 'A', 'A', 'A'];
    assert.deepEqual([...ranker.byDistance(dist, (i) => swapped[i] === 'A')], [2, 4, 5, 6]);
  });

  it('Hamming counting sort, head-then-Hamming and the float sort agree with a brute-force sort', () => {
    const rand = mulberry32(7);
    const n = 500;
    const ranker = new Ranker(n);
    const skip = new Uint8Array(n);
    for (let trial = 0; trial < 20; trial++) {
      const labels = Array.from({ length: n }, () => Math.floor(rand() * 4));
      const ham = Array.from({ length: n }, () => Math.floor(rand() * 9)); // many ties
      const real = Array.from({ length: n }, () => Math.round(rand() * 50) / 10); // some ties
      const rel = (i: number): boolean => labels[i] === 0;
      assert.deepEqual([...ranker.byHamming(ham, 8, rel)], bruteRanks(ham, rel));
      assert.deepEqual([...ranker.byDistance(real, rel)], bruteRanks(real, rel));
      const head = [17, 3, 250, 499];
      const rest = ham.map((d, i) => (head.includes(i) ? Infinity : d));
      const expected = [...head.flatMap((i, p) => (rel(i) ? [p + 1] : [])), ...bruteRanks(rest, rel).filter((r) => r <= n - head.length).map((r) => r + head.length)];
      assert.deepEqual([...ranker.byHeadThenHamming(head, ham, 8, rel, skip)], expected);
    }
  });

  it('rank keys order negative zero and tiny negatives (rounding) as zero, NaN last', () => {
    assert.ok(rankKey(-1e-9, 0) < rankKey(0, 1));
    assert.ok(rankKey(0, 1) < rankKey(1e-30, 0));
    assert.ok(rankKey(NaN, 0) > rankKey(3e38, 1));
  });

  it('recall@k counts ties at the k-th exact distance as hits', () => {
    const exact = [1, 1, 2, 2, 2, 5];
    const kth = kthSmallestInt(exact, 8, 3);
    assert.equal(kth, 2);
    assert.equal(recallWithTies([1, 2, 2], kth, 3), 1);
    assert.equal(recallWithTies([1, 2, 5], kth, 3), 2 / 3);
    // Fewer results than k are misses.
    assert.equal(recallWithTies([1], kth, 3), 1 / 3);
    assert.equal(kthSmallestInt([4, 0, 3], 8, 10), 4);
  });

  it('averages metrics over queries', () => {
    const m = new MetricMeans();
    m.add({ ap: 1, apAtK: 0.5, pAt10: 0.2 });
    m.add({ ap: 0.5, apAtK: 0.5, pAt10: 0.4 });
    assert.equal(m.count, 2);
    const means = m.means();
    close(means.ap, 0.75);
    close(means.apAtK, 0.5);
    close(means.pAt10, 0.3);
  });
});

describe('eval retrieval end to end (tiny model, fixture data)', () => {
  let tiny: TinyModel;
  let dir: string;
  let codesPath: string;

  before(async () => {
    tiny = buildTinyModel({ gray: true });
    dir = mkdtempSync(join(tmpdir(), 'sightline-eval-'));
    codesPath = join(dir, 'codes.onnx');
    const rand = mulberry32(4);
    const w: EncoderWeights = { norm: { mean: new Float32Array(64), scale: 1 }, layers: [{ w: gaussianFill(new Float32Array(64 * 64), 1, rand), wShape: [64, 64], b: new Float32Array(64) }] };
    const meta: CodesMeta = {
      version: 1, bits: 64, embeddingDim: 64, modelHash: await sha256File(tiny.path), model: { name: 'tiny', version: '3' }, cropPolicy: 'center',
      normalization: 'l2', hidden: [], classes: [], metrics: {}, training: {},
    };
    writeFileSync(codesPath, exportCodesOnnx(w, meta));
  });
  after(() => {
    tiny.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the documented JSON, with mAP values equal to a brute-force ranking', async () => {
    const args = ['--import', 'tsx', 'cli/main.ts', 'eval', 'retrieval', '--model', tiny.path, '--codes', codesPath, '--data', FIXTURES, '--db-size', '150', '--queries', '25', '--threads', '1', '--near-dup', '10', '--json'];
    const res = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), ['map', 'map_at_1000', 'p_at_10', 'recall_at_10', 'bytes_per_image', 'qps', 'near_dup']);
    const nd = out['near_dup'] as Record<string, unknown>;
    assert.equal(nd['originals'], 10);
    assert.equal(nd['queries'], 30);
    for (const m of ['euclidean', 'hamming', 'served', 'served_id_ties']) {
      const r = nd[m] as { recall_at_1: number; recall_at_10: number };
      assert.ok(r.recall_at_1 >= 0 && r.recall_at_1 <= r.recall_at_10 && r.recall_at_10 <= 1, `${m}: ${JSON.stringify(r)}`);
    }
    const th = nd['threshold'] as { distance: number; precision: number; recall: number };
    assert.ok(th.distance >= 0 && th.precision > 0 && th.recall > 0);
    for (const key of ['map', 'map_at_1000', 'p_at_10'] as const) {
      const m = out[key] as Record<string, number>;
      assert.deepEqual(Object.keys(m), ['euclidean', 'hamming', 'served', 'classifier', 'lsh']);
      for (const v of Object.values(m)) assert.ok(v >= 0 && v <= 1, `${key}: ${v}`);
    }
    // 150 images: HNSW is exact here, and the whole database fits in the first 1000 ranks.
    assert.equal(out['recall_at_10'], 1);
    assert.deepEqual(out['map'], out['map_at_1000']);
    // At least the code (8 bytes) and the float16 embedding (128 bytes) of every image.
    assert.ok((out['bytes_per_image'] as number) > 136);
    assert.ok((out['qps'] as number) > 0);

    const session = await createSession(tiny.path, { threads: 1 });
    const codes = await createCodesSession(codesPath);
    try {
      const size = session.contract.preprocess.resizeSize;
      const db = await embedDataset(session, await loadFashionMnist('train', { dir: FIXTURES, size, limit: 150 }), 1);
      const dbLabels = (await loadFashionMnist('train', { dir: FIXTURES, size, limit: 150 })).labels;
      const qs = await loadFashionMnist('test', { dir: FIXTURES, size, limit: 25 });
      const q = await embedDataset(session, qs, 1);
      const dbCodes = await codes.encode(db.embeddings, db.n);
      const qCodes = await codes.encode(q.embeddings, q.n);
      let euclid = 0;
      let ham = 0;
      for (let i = 0; i < q.n; i++) {
        const rel = (j: number): boolean => dbLabels[j] === qs.labels[i];
        const d = Array.from({ length: db.n }, (_, j) => {
          let s = 0;
          for (let t = 0; t < db.dim; t++) s += ((q.embeddings[i * db.dim + t] as number) - (db.embeddings[j * db.dim + t] as number)) ** 2;
          return s;
        });
        const h = Array.from({ length: db.n }, (_, j) => hammingPacked(qCodes.subarray(i * 8, i * 8 + 8), dbCodes.subarray(j * 8, j * 8 + 8)));
        euclid += metricsFromRanks(bruteRanks(d, rel)).ap / q.n;
        ham += metricsFromRanks(bruteRanks(h, rel)).ap / q.n;
      }
      const map = out['map'] as Record<string, number>;
      assert.ok(Math.abs((map['euclidean'] as number) - euclid) < 1e-3, `euclidean ${map['euclidean']} vs brute force ${euclid}`);
      assert.ok(Math.abs((map['hamming'] as number) - ham) < 1e-12, `hamming ${map['hamming']} vs brute force ${ham}`);
    } finally {
      await codes.close();
      await session.close();
    }
  });
});
