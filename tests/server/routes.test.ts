import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import request from 'supertest';
import sharp from 'sharp';
import { classifyImage } from '../../model/index.js';
import { createApp } from '../../server/app.js';
import type { AppServices } from '../../server/app.js';
import { createLogger } from '../../server/logging.js';
import { brokenJpeg, demoImage, FMNIST_LABELS, heicHeader, hugePngHeader, image, startTestServer } from './helpers.js';
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

/** `expected` is the kind (`error.code`), or `kind/reason` when the error also names a specific reason. */
function assertError(res: request.Response, status: number, expected: string, pattern?: RegExp): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const [code, reason] = expected.split('/');
  assert.equal(res.body.error.code, code);
  assert.equal(res.body.error.reason, reason);
  assert.equal(typeof res.body.error.message, 'string');
  if (pattern) assert.match(res.body.error.message, pattern);
  assert.equal(JSON.stringify(res.body).includes('    at '), false, 'no stack trace');
  assert.ok(res.headers['x-request-id'], 'errors carry a request id too');
}

describe('POST /v1/classify', () => {
  test('multipart JPEG: top-5 predictions over 10 crops, same as the unbatched model call', async () => {
    const res = await request(s.app).post('/v1/classify').attach('image', image('dog.jpg'), 'dog.jpg');
    assert.equal(res.status, 200);
    assert.match(res.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const body = res.body as { predictions: { label: string; index: number; probability: number }[]; crops: number; agreement: number; model: { name: string }; timings_ms: Record<string, number> };
    assert.equal(body.predictions.length, 5);
    assert.equal(body.crops, 10);
    assert.ok(Number.isInteger(body.agreement) && body.agreement >= 0 && body.agreement <= 10);
    assert.equal(body.model.name, 'test-fmnist');
    for (const k of ['decode', 'infer', 'total']) assert.equal(typeof body.timings_ms[k], 'number');
    for (let i = 1; i < 5; i++) assert.ok((body.predictions[i - 1]?.probability ?? 0) >= (body.predictions[i]?.probability ?? 1));
    for (const p of body.predictions) assert.equal(FMNIST_LABELS[p.index], p.label);
    const direct = await classifyImage(s.rt.inference.session, image('dog.jpg'), { crops: 10, topk: 5, maxPixels: 1e8 });
    assert.deepEqual(
      body.predictions.map((p) => p.label),
      direct.predictions.map((p) => p.label),
    );
    body.predictions.forEach((p, i) => assert.ok(Math.abs(p.probability - (direct.predictions[i]?.probability ?? 0)) < 1e-5));
  });

  test('raw body, topk and crops=1', async () => {
    const res = await request(s.app).post('/v1/classify?topk=3&crops=1').set('content-type', 'image/jpeg').send(image('eagle.jpg'));
    assert.equal(res.status, 200);
    assert.equal(res.body.predictions.length, 3);
    assert.equal(res.body.crops, 1);
    assert.ok(res.body.agreement === 0 || res.body.agreement === 1);
  });

  test('concurrent requests share batches and each gets its own image’s answer', async () => {
    const names = ['dog.jpg', 'eagle.jpg', 'horses.jpg', 'person.jpg'];
    const sequential: { predictions: { label: string; probability: number }[] }[] = [];
    for (const n of names) sequential.push((await request(s.app).post('/v1/classify?topk=10').set('content-type', 'image/jpeg').send(image(n))).body);
    const parallel = await Promise.all(names.map((n) => request(s.app).post('/v1/classify?topk=10').set('content-type', 'image/jpeg').send(image(n))));
    parallel.forEach((res, i) => {
      assert.equal(res.status, 200);
      const want = sequential[i]?.predictions ?? [];
      (res.body.predictions as { label: string; probability: number }[]).forEach((p, j) => {
        assert.equal(p.label, want[j]?.label);
        assert.ok(Math.abs(p.probability - (want[j]?.probability ?? 0)) < 1e-5);
      });
    });
  });

  test('a client request id is echoed', async () => {
    const res = await request(s.app).post('/v1/classify?crops=1').set('x-request-id', 'client-abc.1').set('content-type', 'image/png').send(demoImage('bag/00.png'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-request-id'], 'client-abc.1');
  });

  test('parameter errors name the parameter and the value', async () => {
    const png = demoImage('bag/00.png');
    assertError(await request(s.app).post('/v1/classify?topk=0').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'topk' must be an integer in \[1, 100\], got "0"/);
    assertError(await request(s.app).post('/v1/classify?topk=abc').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'topk'.*"abc"/);
    assertError(await request(s.app).post('/v1/classify?crops=5').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'crops' must be 1 or 10, got "5"/);
  });

  test('media errors: 415 for other content types and HEIC, 400 for undecodable bytes, empty bodies and missing fields', async () => {
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'text/plain').send('hello'), 415, 'unsupported/unsupported_media_type', /text\/plain/);
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'image/heic').send(heicHeader()), 415, 'unsupported/unsupported_media_type', /HEIC.*prebuilt sharp/);
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'image/jpeg').send(brokenJpeg()), 400, 'invalid_argument/undecodable_image', /JPEG/);
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'image/png').send(Buffer.from('not an image at all')), 400, 'invalid_argument/undecodable_image', /not JPEG, PNG/);
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'image/png').send(Buffer.alloc(0)), 400, 'invalid_argument/missing_image');
    assertError(await request(s.app).post('/v1/classify').field('picture', 'x'), 400, 'invalid_argument/missing_image', /'image'/);
  });

  test('size limits: 413 for a body over the limit and for a decompression bomb', async () => {
    const small = createApp(services, { ...s.rt.config, bodyLimitBytes: 4096 });
    assertError(await request(small).post('/v1/classify').set('content-type', 'image/jpeg').send(image('dog.jpg')), 413, 'too_large/payload_too_large', /4096 bytes/);
    assertError(await request(small).post('/v1/classify').attach('image', image('dog.jpg'), 'dog.jpg'), 413, 'too_large/payload_too_large');
    assertError(await request(s.app).post('/v1/classify').set('content-type', 'image/png').send(hugePngHeader(30000, 30000)), 413, 'too_large/image_too_large', /30000×30000/);
  });
});

describe('POST /v1/embed', () => {
  test('JSON embedding, base64 float32 and the hex code', async () => {
    const png = demoImage('sneaker/00.png');
    const res = await request(s.app).post('/v1/embed').set('content-type', 'image/png').send(png);
    assert.equal(res.status, 200);
    assert.equal(res.body.embedding.length, 4096);
    assert.equal(res.body.dim, 4096);
    assert.ok((res.body.embedding as number[]).every((v) => Number.isFinite(v) && v >= 0), 'fc7 after ReLU');
    assert.ok((res.body.embedding as number[]).some((v) => v > 0));
    assert.equal(res.body.bits, 128);
    assert.match(res.body.code, /^[0-9a-f]{32}$/);
    const b64 = await request(s.app).post('/v1/embed?format=base64').set('content-type', 'image/png').send(png);
    assert.equal(b64.status, 200);
    const raw = Buffer.from(b64.body.embedding as string, 'base64');
    const floats = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    assert.deepEqual(Array.from(floats), res.body.embedding);
    assert.equal(b64.body.code, res.body.code);
    assertError(await request(s.app).post('/v1/embed?format=xml').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'format'/);
  });
});

describe('images and search', () => {
  test('upload is idempotent by SHA-256, search finds it, thumbnail, similar, delete', async () => {
    const a = demoImage('trouser/00.png');
    const up = await request(s.app).post('/v1/images').attach('image', a, 'trouser.png');
    assert.equal(up.status, 201);
    assert.equal(up.headers['location'], `/v1/images/${up.body.id}`);
    assert.equal(up.body.created, true);
    assert.equal(up.body.labels.length, 5);
    assert.ok(up.body.labels.every((l: string) => FMNIST_LABELS.includes(l)));
    const again = await request(s.app).post('/v1/images').set('content-type', 'image/png').send(a);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, up.body.id);
    assert.equal(again.body.created, false);

    const others = await Promise.all(['trouser/01.png', 'bag/00.png', 'sandal/00.png'].map((p) => request(s.app).post('/v1/images').set('content-type', 'image/png').send(demoImage(p))));
    for (const o of others) assert.equal(o.status, 201);

    const got = await request(s.app).get(`/v1/images/${up.body.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.sha256, up.body.sha256);
    assert.equal(got.body.width, 28);

    const found = await request(s.app).post('/v1/search?k=3').set('content-type', 'image/png').send(a);
    assert.equal(found.status, 200);
    assert.equal(found.body.results.length, 3);
    assert.equal(found.body.results[0].id, up.body.id);
    assert.equal(found.body.results[0].distance, 0);
    assert.equal(found.body.results[0].hamming, 0);
    assert.equal(found.body.results[0].near_duplicate, true, 'the same image is its own near-duplicate');
    assert.equal(found.body.results[0].thumbnail_url, `/v1/images/${up.body.id}/thumbnail`);
    for (let i = 1; i < 3; i++) assert.ok(found.body.results[i].distance >= found.body.results[i - 1].distance);

    const byHamming = await request(s.app).post('/v1/search?k=4&rerank=false').set('content-type', 'image/png').send(a);
    assert.equal(byHamming.body.results[0].distance, null);
    assert.equal(byHamming.body.results[0].near_duplicate, false);

    // A relevance cut-off: only the image itself (distance 0) is within 1e-6; "nothing similar" is an answer.
    const within = await request(s.app).post('/v1/search?k=4&max_distance=0.000001').set('content-type', 'image/png').send(a);
    assert.deepEqual(within.body.results.map((r: { id: number }) => r.id), [up.body.id]);
    const cut = found.body.results[1].distance as number;
    const upTo = await request(s.app).post(`/v1/search?k=4&max_distance=${cut}`).set('content-type', 'image/png').send(a);
    assert.ok(upTo.body.results.length >= 2 && upTo.body.results.every((r: { distance: number }) => r.distance <= cut));
    const none = await request(s.app).get(`/v1/images/${up.body.id}/similar?k=4&max_distance=0`);
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.results, []);

    const top = up.body.labels[0] as string;
    const filtered = await request(s.app).post(`/v1/search?label=${encodeURIComponent(top)}`).set('content-type', 'image/png').send(a);
    assert.ok(filtered.body.results.length >= 1);
    for (const r of filtered.body.results) assert.equal(r.labels[0], top);

    const thumb = await request(s.app).get(`/v1/images/${up.body.id}/thumbnail`);
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers['content-type'], 'image/webp');
    const meta = await sharp(thumb.body as Buffer).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 160);
    const cached = await request(s.app).get(`/v1/images/${up.body.id}/thumbnail`);
    assert.deepEqual(cached.body, thumb.body);

    const similar = await request(s.app).get(`/v1/images/${up.body.id}/similar?k=2`);
    assert.equal(similar.status, 200);
    assert.equal(similar.body.results.length, 2);
    assert.ok(similar.body.results.every((r: { id: number }) => r.id !== up.body.id));

    const del = await request(s.app).delete(`/v1/images/${up.body.id}`);
    assert.equal(del.status, 204);
    assertError(await request(s.app).get(`/v1/images/${up.body.id}`), 404, 'not_found');
    assertError(await request(s.app).delete(`/v1/images/${up.body.id}`), 404, 'not_found');
    assertError(await request(s.app).get(`/v1/images/${up.body.id}/thumbnail`), 404, 'not_found');
    const after = await request(s.app).post('/v1/search?k=10').set('content-type', 'image/png').send(a);
    assert.ok(after.body.results.every((r: { id: number }) => r.id !== up.body.id));
    const readd = await request(s.app).post('/v1/images').set('content-type', 'image/png').send(a);
    assert.equal(readd.status, 201);
    assert.notEqual(readd.body.id, up.body.id, 'ids are not reused');
  });

  test('search parameter errors', async () => {
    const png = demoImage('bag/01.png');
    assertError(await request(s.app).post('/v1/search?k=0').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'k' must be an integer in \[1, 100\], got "0"/);
    assertError(await request(s.app).post('/v1/search?k=101').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /"101"/);
    assertError(await request(s.app).post('/v1/search?rerank=maybe').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'rerank'/);
    assertError(await request(s.app).post('/v1/search?max_distance=-1').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'max_distance'.*"-1"/);
    assertError(await request(s.app).post('/v1/search?max_distance=abc').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'max_distance'/);
    assertError(await request(s.app).post('/v1/search?max_distance=1&rerank=false').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'max_distance'.*rerank/);
    assertError(await request(s.app).post('/v1/search?label=Hat').set('content-type', 'image/png').send(png), 400, 'invalid_argument', /'label'.*"Hat"/);
    assertError(await request(s.app).get('/v1/images/abc'), 400, 'invalid_argument', /'id'/);
    assertError(await request(s.app).get('/v1/images/999999/similar'), 404, 'not_found');
  });
});

describe('bearer token on write routes', () => {
  test('401 without or with a wrong token, accepted with the right one; read routes stay open', async () => {
    const app = createApp(services, { ...s.rt.config, apiToken: 'sesame' });
    const png = demoImage('coat/00.png');
    const no = await request(app).post('/v1/images').set('content-type', 'image/png').send(png);
    assertError(no, 401, 'unauthorized');
    assert.equal(no.headers['www-authenticate'], 'Bearer');
    assertError(await request(app).post('/v1/images').set('authorization', 'Bearer nope').set('content-type', 'image/png').send(png), 401, 'unauthorized');
    assertError(await request(app).delete('/v1/images/1'), 401, 'unauthorized');
    assertError(await request(app).post('/v1/jobs/index').send({ path: '/tmp' }), 401, 'unauthorized');
    const ok = await request(app).post('/v1/images').set('authorization', 'Bearer sesame').set('content-type', 'image/png').send(png);
    assert.ok(ok.status === 201 || ok.status === 200);
    assert.equal((await request(app).post('/v1/classify?crops=1').set('content-type', 'image/png').send(png)).status, 200);
  });
});

describe('SIGHTLINE_PROTECT=all', () => {
  test('every route but health and the page files needs the token; with it, routes answer as before', async () => {
    const app = createApp(services, { ...s.rt.config, apiToken: 'sesame', protect: 'all' });
    const png = demoImage('trouser/00.png');
    const up = await request(app).post('/v1/images').set('authorization', 'Bearer sesame').set('content-type', 'image/png').send(png);
    assert.ok(up.status === 201 || up.status === 200, JSON.stringify(up.body));
    const id = String(up.body.id);
    const oip = { inputs: [{ name: 'images', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }] };
    const routes: [string, string, (r: request.Test) => request.Test][] = [
      ['GET', '/metrics', (r) => r],
      ['GET', '/openapi.json', (r) => r],
      ['GET', '/v1/info', (r) => r],
      ['GET', '/v1/jobs', (r) => r],
      ['GET', `/v1/images/${id}`, (r) => r],
      ['GET', `/v1/images/${id}/similar`, (r) => r],
      ['GET', `/v1/images/${id}/thumbnail`, (r) => r],
      ['POST', '/v1/classify?crops=1', (r) => r.set('content-type', 'image/png').send(png)],
      ['POST', '/v1/embed', (r) => r.set('content-type', 'image/png').send(png)],
      ['POST', '/v1/search', (r) => r.set('content-type', 'image/png').send(png)],
      ['GET', '/v2', (r) => r],
      ['GET', '/v2/models/test-fmnist', (r) => r],
      ['POST', '/v2/models/test-fmnist/infer', (r) => r.send(oip)],
      ['GET', '/no/such/route', (r) => r],
    ];
    for (const [method, path, body] of routes) {
      const call = () => (method === 'GET' ? request(app).get(path) : request(app).post(path));
      const denied = await body(call());
      assert.equal(denied.status, 401, `${method} ${path} without the token`);
      assert.equal(denied.headers['www-authenticate'], 'Bearer');
      const allowed = await body(call().set('authorization', 'Bearer sesame'));
      assert.equal(allowed.status, path === '/no/such/route' ? 404 : 200, `${method} ${path} with the token: ${String(allowed.text ?? '').slice(0, 200)}`);
    }
    for (const path of ['/healthz', '/v2/health/live', '/v2/health/ready', '/', '/app.js', '/style.css']) {
      assert.equal((await request(app).get(path)).status, 200, `${path} stays open`);
    }
    // The default (writes) leaves reads open, as before.
    assert.equal((await request(createApp(services, { ...s.rt.config, apiToken: 'sesame' })).get('/metrics')).status, 200);
  });
});

describe('service routes', () => {
  test('healthz, info, openapi, unknown routes', async () => {
    assert.deepEqual((await request(s.app).get('/healthz')).body, { status: 'ok' });
    const info = await request(s.app).get('/v1/info');
    assert.equal(info.body.model.name, 'test-fmnist');
    assert.equal(typeof info.body.index.size, 'number');
    const doc = await request(s.app).get('/openapi.json');
    assert.equal(doc.body.openapi, '3.0.3');
    for (const p of ['/v1/classify', '/v1/embed', '/v1/search', '/v1/images', '/v1/images/{id}', '/v1/images/{id}/similar', '/v1/images/{id}/thumbnail', '/v1/jobs/index', '/v1/jobs/{id}', '/v2/models/{name}/infer']) {
      assert.ok(doc.body.paths[p], `openapi documents ${p}`);
    }
    assertError(await request(s.app).get('/v1/nothing'), 404, 'not_found', /GET \/v1\/nothing/);
  });

  test('GET /metrics: request counts by route and status, batch sizes, queue depth, index size', async () => {
    const text = (await request(s.app).get('/metrics')).text;
    assert.match(text, /sightline_http_requests_total\{route="\/v1\/classify",method="POST",status="200"\} \d+/);
    assert.match(text, /sightline_http_requests_total\{route="\/v1\/classify",method="POST",status="415"\} \d+/);
    assert.match(text, /sightline_http_request_duration_seconds_bucket\{le="0.1",route="\/v1\/classify"/);
    assert.match(text, /sightline_inference_batch_size_count [1-9]\d*/);
    assert.match(text, /sightline_queue_depth\{priority="interactive"\} 0/);
    assert.match(text, /sightline_queue_wait_seconds_count\{priority="interactive"\} [1-9]/);
    const size = /sightline_index_images (\d+)/.exec(text);
    assert.equal(Number(size?.[1]), await s.rt.gallery.size());
  });

  test('JSON logs carry the request id', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    const app = createApp({ ...services, logger: createLogger('info', sink) }, s.rt.config);
    await request(app).get('/healthz').set('x-request-id', 'trace-me-42');
    const entry = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['reqId'] === 'trace-me-42');
    assert.ok(entry, `a log line with reqId; got ${lines.join('\n')}`);
    assert.equal(entry['status'], 200);
    assert.equal(entry['url'], '/healthz');
  });
});
