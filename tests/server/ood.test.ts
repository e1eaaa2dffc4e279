/**
 * `unknown` and `ood_score` in /v1/classify: a threshold fitted beside the served model (sidecar)
 * decides, on either side of the photo's score.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import request from 'supertest';
import { writeOodSidecar } from '../../model/index.js';
import { image, startTestServer, tempDir, testModelPath } from './helpers.js';

const work = tempDir('sightline-ood-');
after(() => work.cleanup());

async function classify(modelPath: string): Promise<{ unknown: boolean; ood_score: number }> {
  const s = await startTestServer({ modelPath });
  try {
    const res = await request(s.app).post('/v1/classify?crops=1').attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(res.status, 200, res.text);
    return res.body as { unknown: boolean; ood_score: number };
  } finally {
    await s.close();
  }
}

test('/v1/classify: unknown follows the fitted threshold, ood_score the statistic', async () => {
  const model = join(work.path, 'served.onnx');
  copyFileSync(testModelPath(), model);
  await writeOodSidecar(model, { statistic: 'energy', threshold: 1e9, keep: 0.97, fittedOn: 'test', images: 1 });
  const known = await classify(model);
  assert.equal(known.unknown, false);
  assert.equal(typeof known.ood_score, 'number');
  await writeOodSidecar(model, { statistic: 'energy', threshold: known.ood_score - 0.01, keep: 0.97, fittedOn: 'test', images: 1 });
  const unknown = await classify(model);
  assert.equal(unknown.unknown, true);
  assert.ok(Math.abs(unknown.ood_score - known.ood_score) < 1e-4);
});
