import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { decodeImage, makeCrops } from '../../model/index.js';
import { createApp } from '../../server/app.js';
import type { AppServices } from '../../server/app.js';
import { checkGolden } from '../../server/services/startup.js';
import type { Runtime } from '../../server/services/runtime.js';
import { DEMO_DIR, demoImage, startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

let s: TestServer;
let services: AppServices;

before(async () => {
  s = await startTestServer();
  services = { logger: s.rt.logger, metrics: s.rt.metrics, inference: s.rt.inference, gallery: s.rt.gallery, jobs: s.rt.jobs, readiness: s.rt.readiness };
});
after(async () => {
  await s.close();
});

async function crops(rel: string, n: 1 | 10): Promise<Float32Array> {
  const pre = s.rt.inference.session.contract.preprocess;
  return makeCrops(await decodeImage(demoImage(rel), pre, { maxPixels: 1e6 }), pre, n);
}

test('server and model metadata, liveness and readiness', async () => {
  const v2 = await request(s.app).get('/v2');
  assert.equal(v2.body.name, 'sightline');
  assert.equal((await request(s.app).get('/v2/health/live')).status, 200);
  assert.deepEqual((await request(s.app).get('/v2/health/ready')).body, { ready: true });
  const meta = await request(s.app).get('/v2/models/test-fmnist');
  assert.equal(meta.status, 200);
  assert.deepEqual(meta.body.inputs, [{ name: 'images', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
  assert.deepEqual(
    meta.body.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape]),
    [
      ['logits', [-1, 10]],
      ['embedding', [-1, 4096]],
    ],
  );
  assert.deepEqual((await request(s.app).get('/v2/models/test-fmnist/ready')).body, { name: 'test-fmnist', ready: true });
  const unknown = await request(s.app).get('/v2/models/resnet');
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.error, /unknown model: 'resnet'/);

  const notReady = createApp({ ...services, readiness: () => ({ ready: false, reason: 'warming up' }) }, s.rt.config);
  assert.equal((await request(notReady).get('/v2/health/ready')).status, 503);
  assert.equal((await request(notReady).get('/v2/models/test-fmnist/ready')).status, 503);
  assert.equal((await request(notReady).get('/v2/health/live')).status, 200);
});

test('infer round trip: FP32 [N, C, H, W] in, logits and embedding out, equal to a direct run', async () => {
  const x = await crops('dress/00.png', 10);
  const res = await request(s.app)
    .post('/v2/models/test-fmnist/infer')
    .send({ id: 'req-1', inputs: [{ name: 'images', shape: [10, 1, 28, 28], datatype: 'FP32', data: Array.from(x) }] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.model_name, 'test-fmnist');
  assert.equal(res.body.id, 'req-1');
  const [logits, embedding] = res.body.outputs as { name: string; shape: number[]; datatype: string; data: number[] }[];
  assert.equal(logits?.name, 'logits');
  assert.deepEqual(logits?.shape, [10, 10]);
  assert.equal(embedding?.name, 'embedding');
  assert.deepEqual(embedding?.shape, [10, 4096]);
  assert.equal(embedding?.datatype, 'FP32');
  const direct = await s.rt.inference.session.run(x, 10);
  logits?.data.forEach((v, i) => assert.ok(Math.abs(v - (direct.logits[i] ?? NaN)) < 1e-4));
  assert.equal(embedding?.data.length, direct.embedding.length);
  assert.ok(embedding?.data.every((v, i) => Math.abs(v - (direct.embedding[i] ?? NaN)) < 1e-4));
});

test('infer accepts nested data and a subset of outputs', async () => {
  const x = await crops('bag/02.png', 1);
  const nested = [[Array.from({ length: 28 }, (_, r) => Array.from(x.subarray(r * 28, (r + 1) * 28)))]];
  const res = await request(s.app)
    .post('/v2/models/test-fmnist/infer')
    .send({ inputs: [{ name: 'images', shape: [1, 1, 28, 28], datatype: 'FP32', data: nested }], outputs: [{ name: 'logits' }] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    res.body.outputs.map((o: { name: string }) => o.name),
    ['logits'],
  );
  const direct = await s.rt.inference.session.run(x, 1);
  (res.body.outputs[0].data as number[]).forEach((v, i) => assert.ok(Math.abs(v - (direct.logits[i] ?? NaN)) < 1e-4));
});

test('infer errors are {"error": "..."} with 400', async () => {
  const post = (body: unknown) => request(s.app).post('/v2/models/test-fmnist/infer').send(body as object);
  const good = { name: 'images', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) };
  const cases: [unknown, RegExp][] = [
    [{}, /'inputs'/],
    [{ inputs: [{ ...good, datatype: 'INT8' }] }, /FP32, got INT8/],
    [{ inputs: [{ ...good, shape: [1, 3, 28, 28] }] }, /shape must be \[N, 1, 28, 28\]/],
    [{ inputs: [{ ...good, data: new Array(100).fill(0) }] }, /has 100 values/],
    [{ inputs: [{ ...good, name: 'input_1' }] }, /unexpected inference input 'input_1'/],
    [{ inputs: [{ ...good, data: ['a'] }] }, /numbers/],
    [{ inputs: [good], outputs: [{ name: 'probs' }] }, /unexpected inference output 'probs'/],
  ];
  for (const [body, pattern] of cases) {
    const res = await post(body);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(typeof res.body.error, 'string');
    assert.match(res.body.error, pattern);
  }
  const badJson = await request(s.app).post('/v2/models/test-fmnist/infer').set('content-type', 'application/json').send('{"inputs": [');
  assert.equal(badJson.status, 400);
  assert.equal(typeof badJson.body.error, 'string');
});

test('readiness: golden image with its known label passes, a wrong label fails, none configured skips with a warning', async () => {
  const golden = `${DEMO_DIR}ankle-boot/00.png`;
  const top = (await s.rt.inference.classify(demoImage('ankle-boot/00.png'), { topk: 1, crops: 10 })).predictions[0]?.label as string;
  const withGolden = (goldenLabel: string | undefined): Runtime =>
    ({ ...s.rt, config: { ...s.rt.config, goldenImage: goldenLabel === undefined ? undefined : golden, goldenLabel } }) as Runtime;
  assert.deepEqual(await checkGolden(withGolden(top)), { ready: true, reason: 'ready' });
  const wrong = await checkGolden(withGolden(top === 'Bag' ? 'Dress' : 'Bag'));
  assert.equal(wrong.ready, false);
  assert.match(wrong.reason, new RegExp(`classified '${top.replace('/', '\\/')}'`));
  const none = await checkGolden(withGolden(undefined));
  assert.equal(none.ready, true);
  assert.match(none.reason, /no golden image/);
});
