/**
 * `unknown` and `ood_score` on the collection's images (/v1/images/{id}, uploads, search hits):
 * the score is stored when an image is indexed, the verdict is made at read time against the
 * serving model's threshold, so a re-calibration applies to stored images without a rewrite, and
 * rows that were never scored (older releases) say null instead of a made-up verdict.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import request from 'supertest';
import { inspectIndex, openCatalog } from '../../index/index.js';
import { writeOodSidecar, type OodContract } from '../../model/index.js';
import { image, startTestServer, tempDir, testModelPath } from './helpers.js';

const work = tempDir('sightline-collection-ood-');
after(() => work.cleanup());

const model = join(work.path, 'served.onnx');
const dataDir = join(work.path, 'data');
copyFileSync(testModelPath(), model);
mkdirSync(dataDir);

const energy = (threshold: number): OodContract => ({ statistic: 'energy', threshold, keep: 0.97, fittedOn: 'test', images: 1 });

interface OodFields {
  id: number;
  unknown: boolean | null;
  ood_score: number | null;
}

/** Runs `fn` against a server over the shared data dir, serving `model` with `ood` beside it. */
async function withServer<T>(ood: OodContract, fn: (s: Awaited<ReturnType<typeof startTestServer>>) => Promise<T>): Promise<T> {
  await writeOodSidecar(model, ood);
  const s = await startTestServer({ modelPath: model, dataDir });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

test('collection images carry unknown and ood_score, judged at read time against the current threshold', async () => {
  // 1. A lenient threshold: the dog is known; upload, get, search and classify agree on its score.
  const first = await withServer(energy(1e9), async (s) => {
    const up = await request(s.app).post('/v1/images').attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(up.status, 201, up.text);
    const body = up.body as OodFields;
    assert.equal(body.unknown, false);
    assert.equal(typeof body.ood_score, 'number');
    const got = await request(s.app).get(`/v1/images/${body.id}`);
    assert.deepEqual([got.body.unknown, got.body.ood_score], [false, body.ood_score]);
    // The stored score is the one classify gives with the crops the collection is encoded with.
    const cls = await request(s.app).post(`/v1/classify?crops=${s.rt.inference.embedCrops}`).attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(cls.status, 200, cls.text);
    assert.equal(cls.body.ood_score, body.ood_score);
    const hits = await request(s.app).post('/v1/search?k=1').attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(hits.status, 200, hits.text);
    assert.deepEqual(hits.body.results.map((h: OodFields) => [h.id, h.unknown, h.ood_score]), [[body.id, false, body.ood_score]]);
    return body;
  });
  const score = first.ood_score as number;

  // 2. Re-calibrated below the stored score: the same row is unknown now, nothing rewritten.
  await withServer(energy(score - 0.01), async (s) => {
    const got = await request(s.app).get(`/v1/images/${first.id}`);
    assert.deepEqual([got.body.unknown, got.body.ood_score], [true, score]);
    const again = await request(s.app).post('/v1/images').attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.unknown, true);
  });

  // 3. Another statistic: the stored energy score means nothing against a max-softmax threshold.
  await withServer({ statistic: 'msp', threshold: 0.5, keep: 0.97, fittedOn: 'test', images: 1 }, async (s) => {
    const got = await request(s.app).get(`/v1/images/${first.id}`);
    assert.deepEqual([got.body.unknown, got.body.ood_score], [null, null]);
  });

  // 4. A row written without a score (as every row from before schema 3 is): null, not a guess.
  const { model: modelHash, codeModel: codesHash } = inspectIndex(dataDir);
  const cat = await openCatalog(dataDir, { modelHash, codesHash });
  const stored = cat.get(first.id)!;
  const old = cat.add({ source: join(dataDir, 'old.jpg'), bytes: Buffer.from('an image indexed by release 2'), width: 8, height: 8, labels: stored.labels, code: stored.code, embedding: cat.embedding(first.id)! });
  cat.close();
  await withServer(energy(score - 0.01), async (s) => {
    const got = await request(s.app).get(`/v1/images/${old.id}`);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual([got.body.unknown, got.body.ood_score], [null, null]);
    const hits = await request(s.app).get(`/v1/images/${first.id}/similar?k=1`);
    assert.deepEqual(hits.body.results.map((h: OodFields) => [h.id, h.unknown, h.ood_score]), [[old.id, null, null]]);
  });
});
