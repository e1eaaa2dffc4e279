/**
 * /openapi.json checked against the server itself, so the document cannot drift from the code:
 * - every route the express router has is documented, and every documented path is routed;
 * - the document is valid OpenAPI (checked by @seriousme/openapi-schema-validator);
 * - real requests to every route, successes and failures, answer with a status the document lists
 *   for that operation, and every JSON body matches the documented schema with no undocumented
 *   field (objects are checked as closed: `additionalProperties: false` unless the document says
 *   otherwise).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { Validator } from '@seriousme/openapi-schema-validator';
import request from 'supertest';
import { DEMO_DIR, demoImage, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

type Json = Record<string, unknown>;
interface Answer {
  method: string;
  path: string;
  status: number;
  type: string;
  body: unknown;
}

const work = tempDir('sightline-openapi-');
const root = join(work.path, 'photos');
let s: TestServer;
let doc: Json;

before(async () => {
  mkdirSync(root, { recursive: true });
  for (const name of ['00', '01', '02']) copyFileSync(join(DEMO_DIR, 'coat', `${name}.png`), join(root, `${name}.png`));
  s = await startTestServer({ indexRoots: [work.path] });
  doc = (await request(s.app).get('/openapi.json')).body as Json;
});
after(async () => {
  await s.close();
  work.cleanup();
});

/** Every (method, path) the app routes, in OpenAPI path syntax (`:id` → `{id}`). */
function routedOperations(app: TestServer['app']): Set<string> {
  const out = new Set<string>();
  interface Layer {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  }
  const walk = (stack: readonly Layer[]): void => {
    for (const layer of stack) {
      if (layer.route) {
        const path = layer.route.path.replace(/:(\w+)/g, '{$1}');
        for (const m of Object.keys(layer.route.methods)) out.add(`${m.toUpperCase()} ${path}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

function documentedOperations(d: Json): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(d['paths'] as Record<string, Json>)) {
    for (const m of Object.keys(item)) if (['get', 'post', 'put', 'delete', 'patch'].includes(m)) out.add(`${m.toUpperCase()} ${path}`);
  }
  return out;
}

/** The document's schema as strict JSON Schema: refs inlined, `nullable` as a null type, objects closed. */
function strictSchema(schema: unknown, components: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((x) => strictSchema(x, components));
  if (schema === null || typeof schema !== 'object') return schema;
  const src = schema as Json;
  if (typeof src['$ref'] === 'string') {
    const name = src['$ref'].replace('#/components/schemas/', '');
    assert.ok(name in components, `unresolved $ref ${src['$ref']}`);
    return strictSchema(components[name], components);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === 'nullable' || k === 'example' || k === 'format') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, ps]) => [p, strictSchema(ps, components)])) : strictSchema(v, components);
  }
  if (src['nullable'] === true && typeof src['type'] === 'string') out['type'] = [src['type'], 'null'];
  if (src['type'] === 'object' && src['properties'] && src['additionalProperties'] === undefined) out['additionalProperties'] = false;
  return out;
}

/** Each operation answered by the walk below; filled as requests are made. */
const answers: Answer[] = [];
async function call(method: string, docPath: string, req: request.Test): Promise<request.Response> {
  const res = await req;
  answers.push({ method, path: docPath, status: res.status, type: String(res.headers['content-type'] ?? ''), body: res.body as unknown });
  return res;
}

/** Requests that reach every route, with a success and the usual failures. */
async function exercise(): Promise<void> {
  const app = s.app;
  const png = demoImage('bag/00.png');
  for (const path of ['/healthz', '/metrics', '/openapi.json', '/v1/info', '/v1/jobs', '/v2', '/v2/health/live', '/v2/health/ready']) await call('GET', path, request(app).get(path));
  await call('POST', '/v1/classify', request(app).post('/v1/classify?topk=3').set('content-type', 'image/png').send(png));
  await call('POST', '/v1/classify', request(app).post('/v1/classify?topk=0').set('content-type', 'image/png').send(png));
  await call('POST', '/v1/classify', request(app).post('/v1/classify').set('content-type', 'text/plain').send('not an image'));
  await call('POST', '/v1/embed', request(app).post('/v1/embed').set('content-type', 'image/png').send(png));
  await call('POST', '/v1/embed', request(app).post('/v1/embed?format=base64').attach('image', png, 'bag.png'));
  const created = await call('POST', '/v1/images', request(app).post('/v1/images').attach('image', png, 'bag.png'));
  await call('POST', '/v1/images', request(app).post('/v1/images').attach('image', png, 'bag.png'));
  const id = (created.body as { id: number }).id;
  await call('POST', '/v1/search', request(app).post('/v1/search?k=2').set('content-type', 'image/png').send(png));
  await call('POST', '/v1/search', request(app).post('/v1/search?k=0').set('content-type', 'image/png').send(png));
  await call('GET', '/v1/images/{id}', request(app).get(`/v1/images/${id}`));
  await call('GET', '/v1/images/{id}', request(app).get('/v1/images/999999'));
  await call('GET', '/v1/images/{id}', request(app).get('/v1/images/abc'));
  await call('GET', '/v1/images/{id}/similar', request(app).get(`/v1/images/${id}/similar?k=2`));
  await call('GET', '/v1/images', request(app).get('/v1/images?limit=1'));
  await call('GET', '/v1/images', request(app).get('/v1/images?limit=0'));

  await call('GET', '/v1/images/{id}/thumbnail', request(app).get(`/v1/images/${id}/thumbnail`));
  const job = await call('POST', '/v1/jobs/index', request(app).post('/v1/jobs/index').send({ path: root }));
  await call('POST', '/v1/jobs/index', request(app).post('/v1/jobs/index').send({ path: '/' }));
  await call('POST', '/v1/jobs/index', request(app).post('/v1/jobs/index').send({ path: join(work.path, 'nothing-here') }));
  const jobId = (job.body as { id: string }).id;
  for (let i = 0; i < 200; i++) {
    const j = await request(app).get(`/v1/jobs/${jobId}`);
    if (!['queued', 'running'].includes((j.body as { state: string }).state)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await call('GET', '/v1/jobs/{id}', request(app).get(`/v1/jobs/${jobId}`));
  // Every pair is within 2 × the mean norm (triangle inequality): one group of all the images.
  await call('GET', '/v1/duplicates', request(app).get('/v1/duplicates?max_relative_distance=2&limit=1'));
  await call('GET', '/v1/duplicates', request(app).get('/v1/duplicates?neighbours=100'));
  await call('GET', '/v1/jobs/{id}', request(app).get('/v1/jobs/nope'));
  await call('DELETE', '/v1/jobs/{id}', request(app).delete(`/v1/jobs/${jobId}`));
  await call('GET', '/v1/jobs', request(app).get('/v1/jobs'));
  await call('DELETE', '/v1/images/{id}', request(app).delete(`/v1/images/${id}`));
  await call('DELETE', '/v1/images/{id}', request(app).delete(`/v1/images/${id}`));
  const info = s.rt.inference.info;
  const name = info.name;
  for (const path of ['/v2/models/{name}', '/v2/models/{name}/ready', '/v2/models/{name}/versions/{version}', '/v2/models/{name}/versions/{version}/ready']) {
    await call('GET', path, request(app).get(path.replace('{name}', name).replace('{version}', info.version)));
  }
  await call('GET', '/v2/models/{name}', request(app).get('/v2/models/unknown-model'));
  await call('GET', '/v2/models/{name}/versions/{version}/ready', request(app).get(`/v2/models/${name}/versions/no-such-version/ready`));
  const [c, h, w] = info.inputShape;
  const data = new Array<number>(c * h * w).fill(0.5);
  const infer = { inputs: [{ name: info.io.input, shape: [1, c, h, w], datatype: 'FP32', data }] };
  await call('POST', '/v2/models/{name}/infer', request(app).post(`/v2/models/${name}/infer`).send(infer));
  await call('POST', '/v2/models/{name}/versions/{version}/infer', request(app).post(`/v2/models/${name}/versions/${info.version}/infer`).send(infer));
  await call('POST', '/v2/models/{name}/infer', request(app).post(`/v2/models/${name}/infer`).send({ inputs: [] }));
}

test('the document is valid OpenAPI and lists exactly the routes the server has', async () => {
  const res = await new Validator().validate(structuredClone(doc));
  assert.ok(res.valid, `openapi.json is not valid OpenAPI: ${JSON.stringify(res.errors)}`);
  const routed = routedOperations(s.app);
  const documented = documentedOperations(doc);
  assert.ok(routed.size >= 25, `walked ${routed.size} routes`);
  assert.deepEqual([...routed].filter((r) => !documented.has(r)), [], 'routes missing from openapi.json');
  assert.deepEqual([...documented].filter((r) => !routed.has(r)), [], 'documented operations the server does not have');
});

test('every answer has a documented status and a body that matches its schema field for field', async () => {
  await exercise();
  const components = (doc['components'] as { schemas: Record<string, unknown> }).schemas;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const compiled = new Map<string, ValidateFunction>();
  const operations = new Set(answers.map((a) => `${a.method} ${a.path}`));
  assert.deepEqual([...documentedOperations(doc)].filter((o) => !operations.has(o)), [], 'every documented operation was exercised');
  const problems: string[] = [];
  for (const a of answers) {
    const op = ((doc['paths'] as Record<string, Json>)[a.path]?.[a.method.toLowerCase()] ?? {}) as { responses?: Record<string, Json> };
    const response = op.responses?.[String(a.status)];
    if (!response) {
      problems.push(`${a.method} ${a.path} answered ${a.status}, which the document does not list`);
      continue;
    }
    if (!a.type.startsWith('application/json')) continue;
    const schema = ((response['content'] as Record<string, { schema?: unknown }> | undefined)?.['application/json'])?.schema;
    if (!schema) {
      problems.push(`${a.method} ${a.path} ${a.status} answers JSON, which the document does not describe`);
      continue;
    }
    const key = `${a.method} ${a.path} ${a.status}`;
    const validate = compiled.get(key) ?? ajv.compile(strictSchema(schema, components) as object);
    compiled.set(key, validate);
    if (!validate(a.body)) problems.push(`${key}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })} (${JSON.stringify(validate.errors?.map((e) => e.params))})`);
  }
  assert.deepEqual(problems, []);
});
