/**
 * A generated hostile corpus over every upload route: POST /v1/classify, /v1/embed, /v1/search and
 * /v1/images (each kind as a raw body and as multipart), the Open Inference Protocol infer route,
 * and job creation (POST /v1/jobs/index, plus one job over a folder holding every hostile file).
 * Every answer must be a 4xx with `{error: {code, reason?, message}}` (OIP: `{error}`) naming the problem,
 * no 5xx, no stack trace in the body or the log, no server path in the message, and nothing
 * written (catalog rows, uploaded files) for a request that failed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import type { Express } from 'express';
import { createApp } from '../../server/app.js';
import { createLogger } from '../../server/logging.js';
import type { JobView } from '../../server/ports.js';
import { demoImage, startTestServer, tempDir } from '../server/helpers.js';
import type { TestServer } from '../server/helpers.js';
import { imageKinds } from './corpus.js';
import type { ImageKind } from './corpus.js';
import { faultReport } from './report.js';

const report = faultReport('hostile inputs over every upload route');
const MB = 1024 * 1024;
const BODY_LIMIT = 1 * MB;
const JSON_LIMIT = 256 * 1024;
const IMAGE_ROUTES = ['/v1/classify?crops=1', '/v1/embed', '/v1/search', '/v1/images'] as const;
const INFER = '/v2/models/test-fmnist/infer';
const work = tempDir('sightline-hostile-');
const root = join(work.path, 'root');
let s: TestServer;
let app: Express;
const logLines: string[] = [];

before(async () => {
  mkdirSync(join(root, 'photos'), { recursive: true });
  mkdirSync(join(work.path, 'outside'), { recursive: true });
  symlinkSync(join(work.path, 'outside'), join(root, 'escape'));
  writeFileSync(join(root, 'a-file.png'), demoImage('bag/00.png'));
  s = await startTestServer({ indexRoots: [root], bodyLimitBytes: BODY_LIMIT, maxJsonBytes: JSON_LIMIT });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const services = { logger: createLogger('debug', sink), metrics: s.rt.metrics, inference: s.rt.inference, gallery: s.rt.gallery, jobs: s.rt.jobs, readiness: s.rt.readiness };
  app = createApp(services, s.rt.config);
});
after(async () => {
  await s.close();
  work.cleanup();
});

/** What a failed request may not change: catalog rows and files under DATA/uploads. */
async function stored(): Promise<string> {
  const uploads = (() => {
    try {
      return readdirSync(join(s.dir, 'uploads')).sort().join(',');
    } catch {
      return '';
    }
  })();
  return `${await s.rt.gallery.size()}|${uploads}`;
}

/** Outcomes per kind, summarised into the report table. */
const outcomes = new Map<string, Map<string, number>>();
function record(kind: string, outcome: string): void {
  const m = outcomes.get(kind) ?? new Map<string, number>();
  m.set(outcome, (m.get(outcome) ?? 0) + 1);
  outcomes.set(kind, m);
}

type Expect = 'ok' | { status: number; code: string };

/** Sends one request and checks the rules every answer obeys, then the expected outcome. */
async function check(kind: string, label: string, send: () => request.Test, expect: Expect, oip = false): Promise<request.Response> {
  const before = await stored();
  const res = await send();
  const where = `${kind} → ${label}: ${res.status} ${String(res.text ?? '').slice(0, 300)}`;
  assert.ok(res.status < 500 || ((res.status === 503 || res.status === 507) && res.headers['retry-after']), `no 5xx: ${where}`);
  if (expect === 'ok') {
    assert.ok(res.status === 200 || res.status === 201 || res.status === 202, `accepted: ${where}`);
    record(kind, String(res.status === 201 ? 200 : res.status));
    return res;
  }
  const body = res.body as { error?: unknown };
  const message = oip ? body.error : (body.error as { message?: unknown } | undefined)?.message;
  // The most specific code: `reason` when the error names one, else `code` (the kind).
  const err = body.error as { code?: unknown; reason?: unknown } | undefined;
  const code = oip ? undefined : (err?.reason ?? err?.code);
  assert.equal(typeof message, 'string', `error message: ${where}`);
  assert.ok((message as string).length > 10, `a message that says something: ${where}`);
  assert.doesNotMatch(res.text, /\n\s+at /, `no stack trace: ${where}`);
  assert.ok(!res.text.includes(s.dir), `no server path in the message: ${where}`);
  assert.equal(res.status, expect.status, where);
  if (!oip) assert.equal(code, expect.code, where);
  assert.equal(await stored(), before, `nothing stored for a failed request: ${where}`);
  record(kind, `${res.status} ${oip ? 'error' : String(code)}`);
  return res;
}

function multipart(boundary: string, parts: { head: string; data: Buffer }[], close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n${p.head}\r\n\r\n`, 'latin1'), p.data, Buffer.from('\r\n'));
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const fileHead = (filename: string, name = 'image') => `Content-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: image/png`;

test('image kinds, raw and multipart, over /v1/classify, /v1/embed, /v1/search and /v1/images', async () => {
  const kinds: ImageKind[] = await imageKinds(BODY_LIMIT);
  for (const k of kinds) {
    for (const route of IMAGE_ROUTES) {
      await check(k.name, `raw ${route}`, () => request(app).post(route).set('content-type', k.type).send(k.bytes), k.expect);
      // An empty multipart file is a file with no bytes (undecodable), not a missing field.
      const mp: Expect = k.name === 'empty body' ? { status: 400, code: 'undecodable_image' } : k.expect;
      await check(k.name, `multipart ${route}`, () => request(app).post(route).attach('image', k.bytes, { filename: 'upload.bin', contentType: k.type }), mp);
    }
  }
  assert.ok(kinds.length >= 45, `${kinds.length} image kinds`);
});

test('malformed multipart, content types and parameters', async () => {
  const png = demoImage('sneaker/00.png');
  const B = 'hostileBoundary42';
  const mpType = `multipart/form-data; boundary=${B}`;
  const kinds: { name: string; type: string; body: Buffer; expect: Expect }[] = [
    { name: 'multipart without a boundary', type: 'multipart/form-data', body: multipart(B, [{ head: fileHead('a.png'), data: png }]), expect: { status: 400, code: 'bad_multipart' } },
    { name: 'multipart unterminated', type: mpType, body: multipart(B, [{ head: fileHead('a.png'), data: png }], false), expect: { status: 400, code: 'bad_multipart' } },
    { name: 'multipart boundary never present', type: mpType, body: Buffer.from('just some text, no parts at all'), expect: { status: 400, code: 'bad_multipart' } },
    { name: 'multipart CRLF in the filename', type: mpType, body: multipart(B, [{ head: fileHead('a\r\nb.png'), data: png }]), expect: { status: 400, code: 'bad_multipart' } },
    // The CR LF ends the disposition line early: what is left of it names no file.
    { name: 'multipart CRLF + header injection in the filename', type: mpType, body: multipart(B, [{ head: fileHead('a\r\nX-Injected: 1.png'), data: png }]), expect: { status: 400, code: 'missing_image' } },
    { name: 'multipart NUL in the filename', type: mpType, body: multipart(B, [{ head: fileHead('a\u0000.png'), data: png }]), expect: { status: 400, code: 'bad_multipart' } },
    {
      name: "multipart control character in filename*",
      type: mpType,
      body: multipart(B, [{ head: `Content-Disposition: form-data; name="image"; filename*=UTF-8''a%0D%0Ab.png\r\nContent-Type: image/png`, data: png }]),
      expect: { status: 400, code: 'invalid_argument' },
    },
    { name: 'multipart wrong field name', type: mpType, body: multipart(B, [{ head: fileHead('a.png', 'picture'), data: png }]), expect: { status: 400, code: 'missing_image' } },
    { name: 'multipart two files', type: mpType, body: multipart(B, [{ head: fileHead('a.png'), data: png }, { head: fileHead('b.png'), data: png }]), expect: { status: 400, code: 'bad_multipart' } },
    { name: 'multipart 13 text fields', type: mpType, body: multipart(B, Array.from({ length: 13 }, (_, i) => ({ head: `Content-Disposition: form-data; name="f${i}"`, data: Buffer.from('x') }))), expect: { status: 400, code: 'bad_multipart' } },
    { name: 'multipart/mixed', type: `multipart/mixed; boundary=${B}`, body: multipart(B, [{ head: fileHead('a.png'), data: png }]), expect: { status: 415, code: 'unsupported_media_type' } },
    { name: 'no content type', type: '', body: png, expect: { status: 415, code: 'unsupported_media_type' } },
    { name: 'text/plain', type: 'text/plain', body: png, expect: { status: 415, code: 'unsupported_media_type' } },
    { name: 'application/json', type: 'application/json', body: Buffer.from('{"image":"x"}'), expect: { status: 415, code: 'unsupported_media_type' } },
    { name: 'urlencoded form', type: 'application/x-www-form-urlencoded', body: Buffer.from('image=abc'), expect: { status: 415, code: 'unsupported_media_type' } },
  ];
  for (const k of kinds) {
    for (const route of IMAGE_ROUTES) {
      await check(k.name, route, () => {
        const r = request(app).post(route);
        if (k.type) r.set('content-type', k.type);
        else r.unset('content-type');
        return r.send(k.body);
      }, k.expect);
    }
  }
  // UTF-8 filenames come back as sent, not as Latin-1 mojibake.
  const utf8 = await check('multipart UTF-8 filename', '/v1/images', () => request(app).post('/v1/images').attach('image', demoImage('coat/03.png'), 'été ☃ 写真.png'), 'ok');
  assert.equal(utf8.body.filename, 'été ☃ 写真.png');
  const params: [string, string][] = [
    ['/v1/classify?topk=abc', "'topk'"],
    ['/v1/classify?crops=5', "'crops'"],
    ['/v1/classify?topk=1&topk=2', "'topk'"],
    ['/v1/embed?format=xml', "'format'"],
    ['/v1/search?k=0', "'k'"],
    ['/v1/search?label=Spaceship', "'label'"],
    ['/v1/search?rerank=maybe', "'rerank'"],
  ];
  for (const [route, named] of params) {
    const res = await check(`bad parameter ${route.split('?')[1] ?? ''}`, route, () => request(app).post(route).set('content-type', 'image/png').send(png), { status: 400, code: 'invalid_argument' });
    assert.match(res.body.error.message, new RegExp(named));
  }
});

test('Open Inference Protocol: hostile JSON bodies and tensors', async () => {
  const item = 784;
  const tensor = (over: Record<string, unknown> = {}) => ({ inputs: [{ name: 'images', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(item).fill(0.5), ...over }] });
  const json = (v: unknown) => JSON.stringify(v);
  const dataWith = (i: number, literal: string) => json(tensor()).replace(/"data":\[((?:0\.5,){0})/, '"data":[').replace(/"data":\[/, `"data":[${literal},`).replace(/,0\.5\]/, ']');
  assert.match(dataWith(0, '1e400'), /"data":\[1e400,0\.5/);
  const deep = (n: number) => json(tensor({ data: 0 })).replace('"data":0', `"data":${'['.repeat(n)}0${']'.repeat(n)}`);
  const kinds: { name: string; body: string | Buffer; type?: string; expect: Expect; pattern?: RegExp }[] = [
    { name: 'OIP empty body', body: '', expect: { status: 400, code: '' }, pattern: /not valid JSON/ },
    { name: 'OIP not JSON', body: 'hello', expect: { status: 400, code: '' }, pattern: /not valid JSON/ },
    { name: 'OIP truncated JSON', body: json(tensor()).slice(0, 100), expect: { status: 400, code: '' }, pattern: /not valid JSON/ },
    { name: 'OIP NaN literal', body: dataWith(0, 'NaN'), expect: { status: 400, code: '' }, pattern: /not valid JSON/ },
    { name: 'OIP byte-order mark', body: `\ufeff${json(tensor())}`, expect: { status: 400, code: '' }, pattern: /not valid JSON/ },
    { name: 'OIP body nested 100,000 levels', body: '['.repeat(100_000) + ']'.repeat(100_000), expect: { status: 400, code: '' }, pattern: /nested deeper/ },
    { name: 'OIP data nested 5,000 levels', body: deep(5000), expect: { status: 400, code: '' }, pattern: /nested deeper/ },
    { name: 'OIP data nested 5 levels', body: deep(5), expect: { status: 400, code: '' }, pattern: /nested deeper than its shape's 4 dimensions/ },
    { name: 'OIP JSON array', body: '[1,2,3]', expect: { status: 400, code: '' }, pattern: /'inputs' array/ },
    { name: 'OIP no inputs', body: '{"outputs":[]}', expect: { status: 400, code: '' }, pattern: /'inputs' array/ },
    { name: 'OIP __proto__ inputs', body: '{"__proto__":{"inputs":[1]}}', expect: { status: 400, code: '' }, pattern: /'inputs' array/ },
    { name: 'OIP two inputs', body: json({ inputs: [tensor().inputs[0], tensor().inputs[0]] }), expect: { status: 400, code: '' }, pattern: /exactly 1 input/ },
    { name: 'OIP wrong input name', body: json(tensor({ name: 'pixels' })), expect: { status: 400, code: '' }, pattern: /'pixels'/ },
    { name: 'OIP datatype INT8', body: json(tensor({ datatype: 'INT8' })), expect: { status: 400, code: '' }, pattern: /FP32, got INT8/ },
    { name: 'OIP rank-3 shape', body: json(tensor({ shape: [1, 28, 28] })), expect: { status: 400, code: '' }, pattern: /shape must be/ },
    { name: 'OIP negative shape', body: json(tensor({ shape: [-1, 1, 28, 28] })), expect: { status: 400, code: '' }, pattern: /non-negative integers/ },
    { name: 'OIP fractional shape', body: json(tensor({ shape: [1.5, 1, 28, 28] })), expect: { status: 400, code: '' }, pattern: /non-negative integers/ },
    { name: 'OIP batch 0', body: json(tensor({ shape: [0, 1, 28, 28], data: [] })), expect: { status: 400, code: '' }, pattern: /batch size/ },
    { name: 'OIP batch over the queue', body: json(tensor({ shape: [100000, 1, 28, 28], data: [] })), expect: { status: 400, code: '' }, pattern: /batch size/ },
    { name: 'OIP too few values', body: json(tensor({ data: [1, 2, 3] })), expect: { status: 400, code: '' }, pattern: /has 3 values/ },
    { name: 'OIP too many values', body: json(tensor({ data: new Array(item + 1).fill(0) })), expect: { status: 400, code: '' }, pattern: /has 785 values/ },
    { name: 'OIP string values', body: json(tensor({ data: new Array(item).fill('0.5') })), expect: { status: 400, code: '' }, pattern: /got string at value 0/ },
    { name: 'OIP null value', body: dataWith(0, 'null'), expect: { status: 400, code: '' }, pattern: /got null at value 0/ },
    { name: 'OIP object value', body: json(tensor({ data: { a: 1 } })), expect: { status: 400, code: '' }, pattern: /numbers or nested arrays/ },
    { name: 'OIP 1e308', body: dataWith(0, '1e308'), expect: { status: 400, code: '' }, pattern: /'images' value 0 is 1e\+308: not a finite float32/ },
    { name: 'OIP 1e400', body: dataWith(0, '1e400'), expect: { status: 400, code: '' }, pattern: /'images' value 0 is Infinity/ },
    { name: 'OIP -3.5e38 (float32 overflow)', body: dataWith(0, '-3.5e38'), expect: { status: 400, code: '' }, pattern: /'images' value 0 is -3\.5e\+38/ },
    { name: 'OIP unknown output', body: json({ ...tensor(), outputs: [{ name: 'probs' }] }), expect: { status: 400, code: '' }, pattern: /'probs'/ },
    { name: 'OIP outputs not an array', body: json({ ...tensor(), outputs: 'logits' }), expect: { status: 400, code: '' }, pattern: /'outputs' must be an array/ },
    { name: 'OIP text/plain body', body: json(tensor()), type: 'text/plain', expect: { status: 400, code: '' }, pattern: /application\/json/ },
    { name: 'OIP over SIGHTLINE_MAX_JSON_BYTES', body: json(tensor({ data: new Array(200_000).fill(0.123456) })), expect: { status: 413, code: '' }, pattern: /limit of 262144 bytes \(SIGHTLINE_MAX_JSON_BYTES\)/ },
    { name: 'OIP valid request', body: json(tensor()), expect: 'ok' },
  ];
  for (const k of kinds) {
    const res = await check(k.name, INFER, () => request(app).post(INFER).set('content-type', k.type ?? 'application/json').send(k.body), k.expect, true);
    if (k.pattern) assert.match(String(res.body.error), k.pattern, k.name);
  }
  const unknownModel = await check('OIP unknown model', '/v2/models/nope/infer', () => request(app).post('/v2/models/nope/infer').send(tensor()), { status: 400, code: '' }, true);
  assert.match(String(unknownModel.body.error), /'nope'/);
});

test('job creation: hostile bodies and paths, then one job over a folder of every hostile file', async () => {
  const kinds: { name: string; body: string; expect: Expect }[] = [
    { name: 'job body not JSON', body: 'path=/photos', expect: { status: 400, code: 'invalid_json' } },
    { name: 'job empty object', body: '{}', expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job path a number', body: '{"path": 123}', expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job relative path', body: '{"path": "photos"}', expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job path with ..', body: JSON.stringify({ path: join(root, '..', 'outside') }), expect: { status: 403, code: 'forbidden' } },
    { name: 'job path outside the roots', body: '{"path": "/etc"}', expect: { status: 403, code: 'forbidden' } },
    { name: 'job symlinked folder out of the roots', body: JSON.stringify({ path: join(root, 'escape') }), expect: { status: 403, code: 'forbidden' } },
    { name: 'job path is a file', body: JSON.stringify({ path: join(root, 'a-file.png') }), expect: { status: 400, code: 'not_a_folder' } },
    { name: 'job path does not exist', body: JSON.stringify({ path: join(root, 'nope') }), expect: { status: 404, code: 'not_found' } },
    { name: 'job path with NUL', body: JSON.stringify({ path: `${root}/a\u0000b` }), expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job path of 5,000 characters', body: JSON.stringify({ path: `/${'a'.repeat(5000)}` }), expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job recursive not boolean', body: JSON.stringify({ path: root, recursive: 'yes' }), expect: { status: 400, code: 'invalid_argument' } },
    { name: 'job body over 64 KiB', body: JSON.stringify({ path: root, pad: 'x'.repeat(70_000) }), expect: { status: 413, code: 'payload_too_large' } },
  ];
  for (const k of kinds) await check(k.name, '/v1/jobs/index', () => request(app).post('/v1/jobs/index').set('content-type', 'application/json').send(k.body), k.expect);
  assert.equal((await s.rt.jobs.list()).length, 0, 'no job was created by a refused request');

  // Every hostile image file in one folder: the job finishes, each file has an outcome, only the valid ones are added.
  const files = await imageKinds(BODY_LIMIT);
  files.forEach((k, i) => writeFileSync(join(root, 'photos', `${String(i).padStart(2, '0')}.img`), k.bytes));
  const sizeBefore = await s.rt.gallery.size();
  const started = await check('job over every hostile file', '/v1/jobs/index', () => request(app).post('/v1/jobs/index').send({ path: join(root, 'photos') }), 'ok');
  let job: JobView;
  for (;;) {
    job = (await request(app).get(`/v1/jobs/${String(started.body.id)}`)).body as JobView;
    if (job.state !== 'queued' && job.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // The HTTP body limit does not apply to files a job reads: the padded PNG is a valid image there.
  const valid = files.filter((k) => k.expect === 'ok' || k.name === 'over the body limit').length;
  assert.equal(job.state, 'done', JSON.stringify(job));
  assert.equal(job.total, files.length);
  assert.equal(job.done + job.duplicates, valid, `the ${valid} valid files are indexed (or already were): ${JSON.stringify(job)}`);
  assert.equal(job.failed + job.not_images, files.length - valid, 'every other file is failed or not an image');
  assert.equal(job.done + job.failed + job.skipped, files.length, JSON.stringify(job));
  assert.equal((await s.rt.gallery.size()) - sizeBefore, job.done, 'the catalog gained exactly the newly indexed files');
  for (const e of job.errors) assert.ok(!e.message.includes(work.path), `no server path in job errors: ${e.message}`);
  record('job over every hostile file', `done: ${job.done} new + ${job.duplicates} duplicates, ${job.failed} failed, ${job.not_images} not images`);
});

test('no error or stack trace was logged for any of these client errors', () => {
  const errors = logLines.filter((l) => /"level":(50|60)/.test(l));
  assert.deepEqual(errors, []);
  assert.ok(!logLines.some((l) => l.includes('"stack"')), 'no stack in the log');
  assert.ok(outcomes.size >= 60, `${outcomes.size} kinds tried`);
  for (const [kind, m] of outcomes) {
    report.add({ kind, outcome: [...m].map(([o, n]) => `${o} ×${n}`).join(', '), lost: 0 });
  }
});
