/**
 * Classification math on hand-computed values, and classification of real photos with the tiny
 * model checked two ways: against an independent computation (each crop run on its own, softmax
 * and mean written out plainly here) and against goldens in tests/fixtures/golden/ (regenerate
 * them from that independent computation with UPDATE_GOLDEN=1).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { averageSoftmax, classifyImage, embedImage, l2Norm, softmax, topK } from '../../model/index.js';
import { InvalidOptionError, UnsupportedMediaError } from '../../model/errors.js';
import { decodeImage, makeCrops } from '../../model/preprocess.js';
import { createSession } from '../../model/session.js';
import type { ModelSession } from '../../model/session.js';
import type { TinyModel } from './tiny-model.js';
import { buildTinyModel, TINY_LABELS } from './tiny-model.js';

const close = (a: number, b: number, tol = 1e-9): boolean => Math.abs(a - b) <= tol;
const PHOTOS = ['dog.jpg', 'eagle.jpg', 'horses.jpg', 'person.jpg'];
const GOLDEN = new URL('../fixtures/golden/tiny-classify.json', import.meta.url);
const OPTS = { crops: 10 as const, topk: 5, maxPixels: 40_000_000 };
const photo = (name: string): Buffer => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url));

describe('softmax math', () => {
  it('matches hand-computed values and survives huge logits', () => {
    const p = softmax([1, 2, 3]);
    [0.09003057317038046, 0.24472847105479764, 0.6652409557748219].forEach((v, i) => assert.ok(close(p[i] ?? NaN, v), `p[${i}]`));
    assert.deepEqual([...softmax([1000, 1000])], [0.5, 0.5]);
    assert.deepEqual([...softmax([0, 5, 7, 9], 1, 2)], [...softmax([5, 7])]);
  });

  it('averages the per-row softmax, not the logits', () => {
    // Rows [0, ln 3] and [0, 0] give [1/4, 3/4] and [1/2, 1/2]: mean [3/8, 5/8]. Averaging the
    // logits first would give softmax([0, ln 3 / 2]) = [0.366, 0.634] instead.
    const m = averageSoftmax(Float32Array.from([0, Math.log(3), 0, 0]), 2, 2);
    assert.ok(close(m[0] ?? NaN, 3 / 8, 1e-7) && close(m[1] ?? NaN, 5 / 8, 1e-7), `got ${m[0]}, ${m[1]}`);
    assert.throws(() => averageSoftmax(new Float32Array(3), 2, 2), /'logits' holds 3 values, \[2, 2\] needs 4/);
  });

  it('topK sorts by probability, keeps the lower index on ties and caps k', () => {
    const probs = [0.1, 0.3, 0.3, 0.25, 0.05];
    assert.deepEqual(topK(probs, 3, TINY_LABELS), [
      { label: 'bravo', index: 1, probability: 0.3 },
      { label: 'charlie', index: 2, probability: 0.3 },
      { label: 'delta', index: 3, probability: 0.25 },
    ]);
    assert.equal(topK(probs, 50, TINY_LABELS).length, 5);
  });
});

interface GoldenImage {
  agreement: number;
  predictions: Array<{ label: string; index: number; probability: number }>;
  embeddingNorm: number;
}

/** The reference: every crop through the session alone, softmax and mean spelled out. */
async function independent(session: ModelSession, bytes: Buffer): Promise<GoldenImage> {
  const pre = session.contract.preprocess;
  const batch = makeCrops(await decodeImage(bytes, pre, { maxPixels: OPTS.maxPixels }), pre, 10);
  const per = batch.length / 10;
  assert.equal(per, session.inputShape.reduce((a, b) => a * b, 1));
  const k = TINY_LABELS.length;
  const sum = new Array<number>(k).fill(0);
  const argmaxes: number[] = [];
  const emb = new Array<number>(64).fill(0);
  for (let i = 0; i < 10; i++) {
    const out = await session.run(batch.slice(i * per, (i + 1) * per), 1);
    const exps = Array.from(out.logits, (v) => Math.exp(v));
    const z = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, j) => (sum[j] = (sum[j] ?? 0) + e / z / 10));
    argmaxes.push(exps.indexOf(Math.max(...exps)));
    out.embedding.forEach((v, j) => (emb[j] = (emb[j] ?? 0) + v / 10));
  }
  const predictions = sum.map((probability, index) => ({ label: TINY_LABELS[index] ?? '', index, probability })).sort((a, b) => b.probability - a.probability);
  const agreement = argmaxes.filter((a) => a === predictions[0]?.index).length;
  return { agreement, predictions, embeddingNorm: Math.hypot(...emb) };
}

describe('classifyImage on real photos', () => {
  let model: TinyModel;
  let session: ModelSession;
  const reference = new Map<string, GoldenImage>();

  before(async () => {
    model = buildTinyModel();
    session = await createSession(model.path, { device: 'cpu', threads: 1 });
    for (const name of PHOTOS) reference.set(name, await independent(session, photo(name)));
    if (process.env['UPDATE_GOLDEN'] === '1') {
      mkdirSync(new URL('.', GOLDEN), { recursive: true });
      const doc = { model: 'tests/model/tiny-model.ts (He init, seed 14)', crops: 10, images: Object.fromEntries(reference) };
      writeFileSync(GOLDEN, `${JSON.stringify(doc, null, 2)}\n`);
    }
  });
  after(async () => {
    await session.close();
    model.cleanup();
  });

  it('equals the mean of the softmaxes of each crop run on its own', async () => {
    for (const name of PHOTOS) {
      const got = await classifyImage(session, photo(name), OPTS);
      const ref = reference.get(name)!;
      assert.equal(got.crops, 10);
      assert.equal(got.agreement, ref.agreement, `${name} agreement`);
      assert.deepEqual(got.predictions.map((p) => p.label), ref.predictions.map((p) => p.label), `${name} order`);
      got.predictions.forEach((p, i) => assert.ok(close(p.probability, ref.predictions[i]?.probability ?? NaN, 1e-6), `${name} p[${i}]`));
      assert.ok(close(got.predictions.reduce((a, p) => a + p.probability, 0), 1, 1e-9));
      assert.ok(close(l2Norm(got.embedding), ref.embeddingNorm, 1e-4), `${name} embedding`);
      assert.deepEqual(got.image.format, 'jpeg');
    }
  });

  it('matches the stored goldens', async () => {
    assert.ok(existsSync(GOLDEN), 'golden missing: run UPDATE_GOLDEN=1 node scripts/run-tests.mjs tests/model/classify');
    const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as { images: Record<string, GoldenImage> };
    for (const name of PHOTOS) {
      const want = golden.images[name];
      assert.ok(want, `golden has ${name}`);
      const got = await classifyImage(session, photo(name), { ...OPTS, topk: 2 });
      assert.equal(got.agreement, want.agreement, `${name} agreement`);
      assert.deepEqual(got.predictions.map((p) => p.label), want.predictions.slice(0, 2).map((p) => p.label), `${name} top-2`);
      got.predictions.forEach((p, i) => {
        const w = want.predictions[i]?.probability ?? NaN;
        assert.ok(close(p.probability, w, 1e-4), `${name} p[${i}] ${p.probability} vs golden ${w}`);
      });
    }
  });

  it('with one crop, classifies the center crop alone', async () => {
    const bytes = photo('horses.jpg');
    const got = await classifyImage(session, bytes, { ...OPTS, crops: 1 });
    const pre = session.contract.preprocess;
    const out = await session.run(makeCrops(await decodeImage(bytes, pre, { maxPixels: OPTS.maxPixels }), pre, 1), 1);
    const probs = softmax(out.logits);
    assert.equal(got.crops, 1);
    assert.equal(got.agreement, 1);
    got.predictions.forEach((p) => assert.ok(close(p.probability, probs[p.index] ?? NaN, 1e-12)));
    assert.deepEqual(got.embedding, out.embedding);
  });

  it('embedImage returns the crop-mean fc7 and its L2 norm', async () => {
    const e = await embedImage(session, photo('dog.jpg'), { crops: 10, maxPixels: OPTS.maxPixels });
    assert.equal(e.embedding.length, 64);
    assert.ok(close(e.norm, reference.get('dog.jpg')!.embeddingNorm, 1e-4));
    assert.ok(close(e.norm, Math.hypot(...e.embedding), 1e-9));
  });

  it('classifies a photo with a one-channel (gray) model', async () => {
    const gray = buildTinyModel({ gray: true });
    const s = await createSession(gray.path, { device: 'cpu', threads: 1 });
    try {
      assert.deepEqual(s.inputShape, [1, 32, 32]);
      const bytes = photo('eagle.jpg');
      const got = await classifyImage(s, bytes, OPTS);
      const ref = await independent(s, bytes);
      got.predictions.forEach((p, i) => assert.ok(close(p.probability, ref.predictions[i]?.probability ?? NaN, 1e-6), `p[${i}]`));
      assert.equal(got.agreement, ref.agreement);
    } finally {
      await s.close();
      gray.cleanup();
    }
  });

  it('validates topk and crops, and passes preprocessing errors through', async () => {
    const bytes = photo('dog.jpg');
    await assert.rejects(classifyImage(session, bytes, { ...OPTS, topk: 0 }), (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.equal(err.kind, 'invalid_argument');
      assert.equal(err.message, "'topk' must be an integer in [1, 100], got 0");
      return true;
    });
    await assert.rejects(classifyImage(session, bytes, { ...OPTS, crops: 5 as 10 }), /'crops' must be 1 or 10, got 5/);
    const heic = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'), Buffer.alloc(32)]);
    await assert.rejects(classifyImage(session, heic, OPTS), UnsupportedMediaError);
  });
});
