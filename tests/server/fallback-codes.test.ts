/**
 * A model without a codes model is served with the data-independent fallback code (never a refusal),
 * the catalog records that code, and the Fashion-MNIST demo gallery stays out of a foreign model's catalog.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { exportOnnx } from '../../model/onnx/index.js';
import { initWeights } from '../../training/network.js';
import { fallbackCodes, fallbackCodesName } from '../../model/index.js';
import { indexDemoGallery } from '../../server/services/startup.js';
import { demoImage, startTestServer, testCodesPath, tinyPreset } from './helpers.js';
import type { TestServer } from './helpers.js';

/** The tiny test network with other classes than Fashion-MNIST's: an "imported" model. */
function foreignModelPath(): string {
  const path = join(tmpdir(), 'sightline-test-models', 'tiny-foreign-3.onnx');
  if (existsSync(path)) return path;
  mkdirSync(join(tmpdir(), 'sightline-test-models'), { recursive: true });
  const preset = tinyPreset();
  const labels = Array.from({ length: 10 }, (_, i) => `thing-${i}`);
  const bytes = exportOnnx(preset, initWeights(preset, 'he', 3), {
    name: 'foreign', modelVersion: '1', labels, source: 'random-init',
    preprocess: { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1 / 255, mean: [0.5], std: [0.5], background: [255, 255, 255] },
  });
  writeFileSync(`${path}.${process.pid}.tmp`, bytes);
  renameSync(`${path}.${process.pid}.tmp`, path);
  return path;
}

let s: TestServer;
before(async () => {
  // The codes model belongs to the Fashion-MNIST test model, not to this one.
  s = await startTestServer({ modelPath: foreignModelPath(), codesPath: testCodesPath() });
});
after(async () => {
  await s.close();
});

test('a model whose codes model does not fit serves search with the random-projection code', async () => {
  assert.equal(s.rt.catalog.meta.codesHash, fallbackCodesName());
  assert.equal(s.rt.catalog.meta.bits, 128);
  const a = demoImage('bag/00.png');
  const up = await request(s.app).post('/v1/images').set('content-type', 'image/png').send(a);
  assert.equal(up.status, 201);
  for (const p of ['trouser/01.png', 'sandal/00.png']) assert.equal((await request(s.app).post('/v1/images').set('content-type', 'image/png').send(demoImage(p))).status, 201);
  const found = await request(s.app).post('/v1/search?k=3').set('content-type', 'image/png').send(a);
  assert.equal(found.status, 200);
  assert.equal(found.body.results[0].id, up.body.id);
  assert.equal(found.body.results[0].distance, 0);
  // The stored code is the fallback's code of the stored embedding.
  const code = await fallbackCodes(s.rt.modelHash, 4096).encode((await s.rt.catalog.embedding(up.body.id))!);
  const stored = (await s.rt.catalog.get(up.body.id))!.code;
  const differing = [...code].reduce((n, b, i) => n + ((b ^ stored[i]!).toString(2).match(/1/g)?.length ?? 0), 0);
  assert.ok(differing <= 2, `float16 rounding flips at most a bit or two, got ${differing}`);
});

test('the Fashion-MNIST demo gallery is not indexed into a foreign model’s catalog', async () => {
  const before = await s.rt.gallery.size();
  assert.equal(await indexDemoGallery(s.rt), 0);
  assert.equal(await s.rt.gallery.size(), before);
});
