/** The OpenAPI 3 document served at GET /openapi.json, built from the loaded model's labels and shapes. */
import type { ModelInfo } from './ports.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
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
];
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
const bearer = [{ bearer: [] }];

export function openApiDocument(info: ModelInfo): Schema {
  const [c, h, w] = info.inputShape;
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
        post: {
          summary: 'Upload and index an image (idempotent by SHA-256)',
          security: bearer,
          requestBody: imageBody,
          responses: { '200': json(ref('Image'), 'Already indexed'), '201': json(ref('Image'), 'Indexed'), '401': error('Token required'), ...imageErrors },
        },
      },
      '/v1/images/{id}': {
        get: { summary: 'An indexed image', parameters: [idParam], responses: { '200': json(ref('Image')), '404': error('Unknown id') } },
        delete: { summary: 'Remove an image from the index', security: bearer, parameters: [idParam], responses: { '204': { description: 'Deleted' }, '401': error('Token required'), '404': error('Unknown id') } },
      },
      '/v1/images/{id}/similar': {
        get: { summary: 'Images similar to an indexed one', parameters: [idParam, ...searchParams], responses: { '200': json(ref('SearchResults')), '404': error('Unknown id') } },
      },
      '/v1/images/{id}/thumbnail': {
        get: {
          summary: 'WebP thumbnail',
          parameters: [idParam],
          responses: { '200': { description: 'WebP', content: { 'image/webp': { schema: { type: 'string', format: 'binary' } } } }, '404': error('Unknown id or source gone') },
        },
      },
      '/v1/jobs/index': {
        post: {
          summary: 'Index a server-side folder (under SIGHTLINE_INDEX_ROOTS)',
          security: bearer,
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['path'], properties: { path: { type: 'string' }, recursive: { type: 'boolean', default: true } } } } } },
          responses: { '202': json(ref('Job'), 'Started'), '401': error('Token required'), '403': error('Path outside the allowed roots'), '404': error('No such folder') },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'Job progress', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': json(ref('Job')), '404': error('Unknown job') } },
        delete: { summary: 'Cancel a job', security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': json(ref('Job')), '404': error('Unknown job') } },
      },
      '/v2/models/{name}/infer': {
        post: {
          summary: `Open Inference Protocol (KServe v2): FP32 '${info.io.input}' [N, ${c}, ${h}, ${w}] in, '${info.io.logits}' and '${info.io.embedding}' out`,
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [info.name] } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { '200': json({ type: 'object' }), '400': json({ type: 'object', properties: { error: { type: 'string' } } }, 'Bad request') },
        },
      },
      '/v2/health/ready': { get: { summary: 'Ready after load, warm-up and the golden-image check', responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } } } },
      '/v2/health/live': { get: { summary: 'Liveness', responses: { '200': { description: 'Live' } } } },
      '/healthz': { get: { summary: 'Simple probe', responses: { '200': { description: 'OK' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain exposition format' } } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'SIGHTLINE_API_TOKEN, when the server sets one' } },
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
        Prediction: { type: 'object', properties: { label: { type: 'string', enum: [...info.labels] }, index: { type: 'integer' }, probability: { type: 'number' } } },
        Timings: { type: 'object', properties: { decode: { type: 'number' }, infer: { type: 'number' }, total: { type: 'number' } } },
        Classification: {
          type: 'object',
          properties: {
            predictions: { type: 'array', items: ref('Prediction') },
            crops: { type: 'integer', enum: [1, 10] },
            agreement: { type: 'integer', description: 'Crops whose own top-1 is the averaged top-1' },
            model: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' } } },
            timings_ms: ref('Timings'),
          },
        },
        Embedding: {
          type: 'object',
          properties: {
            embedding: { oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string', format: 'byte' }] },
            format: { type: 'string' },
            dim: { type: 'integer' },
            code: { type: 'string', description: 'Packed binary code, hex (bit i in byte i>>3 at position i&7)' },
            bits: { type: 'integer' },
            timings_ms: ref('Timings'),
          },
        },
        SearchResults: {
          type: 'object',
          properties: {
            results: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'integer' },
                  source: { type: 'string' },
                  distance: { type: 'number' },
                  hamming: { type: 'integer' },
                  labels: { type: 'array', items: { type: 'string' } },
                  thumbnail_url: { type: 'string' },
                },
              },
            },
          },
        },
        Image: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            sha256: { type: 'string' },
            source: { type: 'string' },
            labels: { type: 'array', items: { type: 'string' } },
            width: { type: 'integer' },
            height: { type: 'integer' },
            created_at: { type: 'string' },
            thumbnail_url: { type: 'string' },
          },
        },
        Job: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            state: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] },
            total: { type: 'integer' },
            done: { type: 'integer' },
            skipped: { type: 'integer' },
            failed: { type: 'integer' },
            rate: { type: 'number' },
            eta_s: { type: 'number', nullable: true },
            errors: { type: 'array', items: { type: 'object', properties: { file: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
      },
    },
  };
}
