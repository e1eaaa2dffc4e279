/**
 * The OpenAPI 3 document served at GET /openapi.json, built from the loaded model's labels and shapes.
 * tests/server/openapi.test.ts walks the express router and fails on a route missing here, a status a
 * route answers that is not listed, or a response field missing from the schemas (openapi-schemas.ts).
 */
import { componentSchemas, ref } from './openapi-schemas.js';
import type { ModelInfo } from './ports.js';
import { GROUPS_LIMIT_MAX, LIST_LIMIT_MAX } from './schemas.js';

type Schema = Record<string, unknown>;

const json = (schema: Schema, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const int = (name: string, def: number, min: number, max: number, description: string) => ({
  name,
  in: 'query',
  description,
  schema: { type: 'integer', default: def, minimum: min, maximum: max },
});

const imageBody = {
  required: true,
  description: 'The image as multipart/form-data field `image`, or the raw bytes with an image/* content type.',
  content: {
    'multipart/form-data': { schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' } } } },
    'image/*': { schema: { type: 'string', format: 'binary' } },
  },
};

const imageErrors = {
  '400': error('Bad parameter or undecodable image (the message names it)'),
  '413': error('Body over the size limit or image over the pixel limit'),
  '415': error('Unsupported content type or image format (e.g. HEIC)'),
  '503': error('Inference queue full or request timed out (Retry-After header)'),
};

const searchParams = [
  int('k', 10, 1, 100, 'Number of results'),
  { name: 'rerank', in: 'query', schema: { type: 'boolean', default: true }, description: 'Re-rank Hamming candidates by embedding distance' },
  { name: 'label', in: 'query', schema: { type: 'string' }, description: 'Only images whose stored top label is this' },
  {
    name: 'max_distance', in: 'query', schema: { type: 'number', minimum: 0 },
    description: 'Only hits within this fc7 Euclidean distance (the `distance` field; needs rerank=true). Bundled model: 1.82 best separated edited copies from other images at 10k (README, Retrieval). No hit within it: an empty list',
  },
];
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
const cursorParam = { name: 'cursor', in: 'query', schema: { type: 'string' }, description: "The previous page's next_cursor (opaque); absent = the first page" };
const listParams = [
  int('limit', 50, 1, LIST_LIMIT_MAX, 'Images per page'),
  cursorParam,
  { name: 'label', in: 'query', schema: { type: 'string' }, description: 'Only images whose stored top label is this (one of the model\'s labels)' },
  {
    name: 'unknown', in: 'query', schema: { type: 'boolean' },
    description: "true: only images whose stored ood_score is over the serving model's current threshold; false: only those under it. Images not scored (unknown null) match neither",
  },
];
const duplicatesParams = [
  int('limit', 20, 1, GROUPS_LIMIT_MAX, 'Groups per page'),
  cursorParam,
  { name: 'max_relative_distance', in: 'query', schema: { type: 'number', exclusiveMinimum: true, minimum: 0, maximum: 2 }, description: 'Max embedding distance / mean embedding norm of the pair (default 0.21, calibrated on edited copies)' },
  { name: 'max_distance', in: 'query', schema: { type: 'number', minimum: 0 }, description: 'An absolute fc7 Euclidean distance instead of the relative one' },
  int('neighbours', 10, 1, 99, 'Nearest images examined per image'),
];
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const oipError = (description: string) => json(ref('OipError'), description);
const get = (summary: string, schema: string, more: Schema = {}) => ({ get: { summary, responses: { '200': json(ref(schema)), ...more } } });

/** The Open Inference Protocol's model routes, each with and without `/versions/{version}`. */
function oipModelPaths(info: ModelInfo): Schema {
  const [c, h, w] = info.inputShape;
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [info.name] } };
  const version = { name: 'version', in: 'path', required: true, schema: { type: 'string', enum: [info.version] } };
  const unknown = { '400': oipError('Unknown model name or version') };
  const infer = (params: Schema[]) => ({
    post: {
      summary: `Open Inference Protocol (KServe v2): FP32 '${info.io.input}' [N, ${c}, ${h}, ${w}] in, '${info.io.logits}' and '${info.io.embedding}' out`,
      parameters: params,
      requestBody: { required: true, content: { 'application/json': { schema: ref('OipInferRequest') } } },
      responses: {
        '200': json(ref('OipInferResponse')),
        '400': oipError('Bad request (the message names the tensor and the problem)'),
        '413': oipError('JSON body over the size limit'),
        '503': oipError('Not ready, or the inference queue is full (Retry-After)'),
      },
    },
  });
  const paths: Schema = {};
  for (const [suffix, params] of [['', [name]], ['/versions/{version}', [name, version]]] as const) {
    const base = `/v2/models/{name}${suffix}`;
    paths[base] = { get: { summary: 'Model metadata', parameters: params, responses: { '200': json(ref('OipModel')), ...unknown } } };
    paths[`${base}/ready`] = { get: { summary: 'Model readiness', parameters: params, responses: { '200': json(ref('OipModelReady')), ...unknown } } };
    paths[`${base}/infer`] = infer([...params]);
  }
  return paths;
}
const bearer = [{ bearer: [] }];

export function openApiDocument(info: ModelInfo): Schema {
  return {
    openapi: '3.0.3',
    info: { title: 'Sightline', version: '0.1.0', description: `AlexNet classification and similar-image search. Model: ${info.name} ${info.version}.` },
    paths: {
      '/v1/classify': {
        post: {
          summary: 'Classify an image (softmax averaged over 1 or 10 crops)',
          parameters: [int('topk', 5, 1, 100, 'Predictions returned'), { name: 'crops', in: 'query', schema: { type: 'integer', enum: [1, 10], default: 10 } }],
          requestBody: imageBody,
          responses: { '200': json(ref('Classification')), ...imageErrors },
        },
      },
      '/v1/embed': {
        post: {
          summary: `The ${info.embeddingDim}-d fc7 embedding and the binary code (hex)`,
          parameters: [
            { name: 'format', in: 'query', schema: { type: 'string', enum: ['json', 'base64'], default: 'json' }, description: 'base64 = little-endian float32' },
            { name: 'crops', in: 'query', schema: { type: 'integer', enum: [1, 10] } },
          ],
          requestBody: imageBody,
          responses: { '200': json(ref('Embedding')), ...imageErrors },
        },
      },
      '/v1/search': {
        post: { summary: 'The k most similar indexed images', parameters: searchParams, requestBody: imageBody, responses: { '200': json(ref('SearchResults')), ...imageErrors } },
      },
      '/v1/images': {
        get: {
          summary: 'The collection, a page at a time in id order (keyset cursor: stable under inserts and deletes between pages)',
          parameters: listParams,
          responses: { '200': json(ref('ImagePage')), '400': error('Bad parameter (the message names it and its value)') },
        },
        post: {
          summary: 'Upload and index an image (idempotent by SHA-256)',
          security: bearer,
          requestBody: imageBody,
          responses: { '200': json(ref('Upload'), 'Already indexed'), '201': json(ref('Upload'), 'Indexed'), '401': error('Token required'), ...imageErrors },
        },
      },
      '/v1/images/{id}': {
        get: { summary: 'An indexed image', parameters: [idParam], responses: { '200': json(ref('Image')), '400': error('id is not a positive integer'), '404': error('Unknown id') } },
        delete: {
          summary: 'Remove an image from the index',
          security: bearer,
          parameters: [idParam],
          responses: { '204': { description: 'Deleted' }, '400': error('id is not a positive integer'), '401': error('Token required'), '404': error('Unknown id') },
        },
      },
      '/v1/images/{id}/similar': {
        get: {
          summary: 'Images similar to an indexed one',
          parameters: [idParam, ...searchParams],
          responses: { '200': json(ref('SearchResults')), '400': error('Bad parameter (the message names it)'), '404': error('Unknown id') },
        },
      },
      '/v1/images/{id}/thumbnail': {
        get: {
          summary: 'WebP thumbnail',
          parameters: [idParam],
          responses: { '200': { description: 'WebP', content: { 'image/webp': { schema: { type: 'string', format: 'binary' } } } }, '400': error('id is not a positive integer'), '404': error('Unknown id'), '410': error('Source file gone, changed since indexing or no longer decodable') },
        },
      },
      '/v1/duplicates': {
        get: {
          summary: 'Near-duplicate groups over the collection (as `sightline duplicates`), by their smallest id; one pass per collection state, shared by its pages',
          parameters: duplicatesParams,
          responses: { '200': json(ref('DuplicateGroups')), '400': error('Bad parameter (the message names it and its value)') },
        },
      },
      '/v1/jobs/index': {
        post: {
          summary: 'Index a server-side folder (under SIGHTLINE_INDEX_ROOTS)',
          security: bearer,
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['path'], properties: { path: { type: 'string' }, recursive: { type: 'boolean', default: true } } } } } },
          responses: { '202': json(ref('Job'), 'Started'), '400': error('Bad body (path missing or not a string, not a folder)'), '401': error('Token required'), '403': error('Path outside the allowed roots'), '404': error('No such folder') },
        },
      },
      '/v1/jobs': get('The jobs the server remembers (the last 100), newest first', 'JobList'),
      '/v1/jobs/{id}': {
        get: { summary: 'Job progress', parameters: [jobId], responses: { '200': json(ref('Job')), '404': error('Unknown job') } },
        delete: { summary: 'Cancel a job', security: bearer, parameters: [jobId], responses: { '200': json(ref('Job')), '401': error('Token required'), '404': error('Unknown job') } },
      },
      ...oipModelPaths(info),
      '/v2': get('Open Inference Protocol server metadata', 'OipServer'),
      '/v2/health/ready': get('Ready after load, warm-up and the golden-image check', 'OipReady', { '503': json(ref('OipReady'), 'Not ready') }),
      '/v2/health/live': get('Liveness', 'OipLive'),
      '/healthz': get('Simple probe', 'Status'),
      '/v1/info': get('The served model (name, labels, input shape, provider), index size and readiness', 'Info'),
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': json({ type: 'object', additionalProperties: true }) } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'SIGHTLINE_API_TOKEN, when the server sets one' } },
      schemas: componentSchemas(info),
    },
  };
}
