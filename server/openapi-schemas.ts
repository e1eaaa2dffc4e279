/**
 * The response bodies of /openapi.json (components.schemas). Every field a route returns is listed:
 * tests/server/openapi.test.ts validates real answers against these with objects closed, so a field
 * added to a view without being added here fails the test.
 */
import { KIND_STATUS } from './errors.js';
import type { ModelInfo } from './ports.js';

type Schema = Record<string, unknown>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const strings: Schema = { type: 'array', items: str };
const obj = (properties: Record<string, Schema>, required: string[] = [], description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  ...(required.length > 0 ? { required } : {}),
  properties,
});

function oipSchemas(): Record<string, Schema> {
  const tensorMeta = obj({ name: str, datatype: str, shape: { type: 'array', items: int } }, ['name', 'datatype', 'shape']);
  const tensor = obj({ name: str, datatype: str, shape: { type: 'array', items: int }, data: { type: 'array', items: num } }, ['name', 'datatype', 'shape', 'data']);
  return {
    OipError: obj({ error: str }, ['error'], 'Open Inference Protocol error body'),
    OipServer: obj({ name: str, version: str, extensions: strings }, ['name', 'version', 'extensions']),
    OipLive: obj({ live: bool }, ['live']),
    OipReady: obj({ ready: bool }, ['ready']),
    OipModelReady: obj({ name: str, ready: bool }, ['name', 'ready']),
    OipModel: obj(
      {
        name: str,
        versions: strings,
        platform: str,
        inputs: { type: 'array', items: tensorMeta },
        outputs: { type: 'array', items: tensorMeta },
        parameters: obj({ labels: strings, provider: str }),
      },
      ['name', 'platform', 'inputs', 'outputs'],
    ),
    OipInferRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: str,
        inputs: { type: 'array', items: { type: 'object', required: ['name', 'shape', 'datatype', 'data'], properties: { name: str, shape: { type: 'array', items: int }, datatype: { type: 'string', enum: ['FP32'] }, data: { type: 'array' } } } },
        outputs: { type: 'array', items: obj({ name: str }) },
      },
    },
    OipInferResponse: obj({ id: str, model_name: str, model_version: str, outputs: { type: 'array', items: tensor } }, ['model_name', 'outputs']),
  };
}

/** Stored score, verdict at read time: README "Unknown images in the collection". */
const storedOod = {
  unknown: {
    type: 'boolean',
    nullable: true,
    description:
      "The image looks like none of the labels: its stored ood_score is over the serving model's current threshold (judged when read, so a re-calibration applies at once). null: not scored (indexed before schema 3) or scored on another basis than the serving model's; `sightline reindex --model` with the serving model scores it",
  },
  ood_score: { type: 'number', nullable: true, description: 'Stored when the image was indexed (higher = further from the training data); null exactly when unknown is null' },
};

function imageSchemas(info: ModelInfo): Record<string, Schema> {
  const labelScore = obj({ label: { type: 'string', enum: [...info.labels] }, probability: num }, ['label', 'probability']);
  const image = {
    id: int,
    sha256: str,
    source: { type: 'string', description: 'The indexed file path, or the stored upload' },
    labels: { type: 'array', items: str, description: 'Top labels, most probable first' },
    label_scores: { type: 'array', items: labelScore },
    ...storedOod,
    width: int,
    height: int,
    created_at: { type: 'string', format: 'date-time' },
    thumbnail_url: str,
  };
  return {
    Image: obj(image, ['id', 'sha256', 'source', 'labels', 'unknown', 'ood_score', 'width', 'height', 'created_at', 'thumbnail_url']),
    Upload: obj(
      { ...image, filename: { type: 'string', description: 'The multipart filename, when one was sent' }, created: { type: 'boolean', description: 'false: the same bytes were already indexed' } },
      ['id', 'sha256', 'created'],
    ),
    ImagePage: obj(
      { images: { type: 'array', items: ref('Image') }, next_cursor: { type: 'string', nullable: true, description: 'Pass as cursor for the next page; null on the last page' } },
      ['images', 'next_cursor'],
    ),
    DuplicateGroups: obj(
      {
        groups: {
          type: 'array',
          items: obj(
            {
              ids: { type: 'array', items: int, description: 'Ascending; the first names the group' },
              members: { type: 'array', items: obj({ id: int, source: str, thumbnail_url: str }, ['id', 'source', 'thumbnail_url']) },
              pairs: { type: 'array', items: obj({ a: int, b: int, hamming: int, distance: num }, ['a', 'b', 'hamming', 'distance']), description: 'The pairs within the distance that joined the group' },
            },
            ['ids', 'members', 'pairs'],
          ),
        },
        total: { type: 'integer', description: 'Groups in the whole listing' },
        next_cursor: { type: 'string', nullable: true, description: 'Pass as cursor for the next page; null on the last page' },
      },
      ['groups', 'total', 'next_cursor'],
    ),
    SearchResults: obj(
      {
        results: {
          type: 'array',
          items: obj({ id: int, source: str, distance: num, hamming: int, labels: strings, ...storedOod, near_duplicate: bool, thumbnail_url: str }, ['id', 'source', 'distance', 'hamming', 'unknown', 'ood_score']),
        },
      },
      ['results'],
    ),
  };
}

function jobSchemas(): Record<string, Schema> {
  const job = obj(
    {
      id: str,
      path: { type: 'string', description: 'The folder as requested' },
      recursive: bool,
      state: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] },
      total: { type: 'integer', description: 'Files the job found to look at' },
      processed: { type: 'integer', description: 'Files looked at so far: new + skipped + failed' },
      new: { type: 'integer', description: 'Images added to the index' },
      done: { type: 'integer', deprecated: true, description: 'Deprecated alias of `new` (images added); use `new` and `processed`' },
      skipped: { type: 'integer', description: 'duplicates + not_images' },
      failed: int,
      duplicates: { type: 'integer', description: 'Of skipped: bytes already indexed' },
      not_images: { type: 'integer', description: 'Of skipped: files that are not images' },
      rate: { type: 'number', description: 'Files per second' },
      eta_s: { type: 'number', nullable: true },
      errors: { type: 'array', items: obj({ file: str, message: str }) },
      started_at: { type: 'string', format: 'date-time' },
      finished_at: { type: 'string', format: 'date-time', nullable: true },
      failure: { type: 'string', description: 'Why the job failed as a whole' },
    },
    ['id', 'state', 'total', 'processed', 'new', 'done', 'skipped', 'failed'],
  );
  return { Job: job, JobList: obj({ jobs: { type: 'array', items: ref('Job') } }, ['jobs']) };
}

export function componentSchemas(info: ModelInfo): Record<string, Schema> {
  const model = obj({ name: str, version: str }, ['name', 'version']);
  const timings = obj({ decode: num, infer: num, total: num });
  return {
    Error: obj(
      {
        error: obj(
          {
            code: { type: 'string', enum: Object.keys(KIND_STATUS), description: 'The kind of error: one code per kind, each with one HTTP status' },
            reason: { type: 'string', description: 'The specific reason, when more specific than the kind (e.g. undecodable_image, overloaded)' },
            message: str,
          },
          ['code', 'message'],
        ),
      },
      ['error'],
    ),
    Status: obj({ status: str }, ['status']),
    Prediction: obj({ label: { type: 'string', enum: [...info.labels] }, index: int, probability: num }, ['label', 'index', 'probability']),
    Timings: timings,
    Classification: obj(
      {
        predictions: { type: 'array', items: ref('Prediction') },
        unknown: { type: 'boolean', description: "The image looks like none of the labels: ood_score is over the model's threshold" },
        ood_score: { type: 'number', description: 'Distance from the data the threshold was fitted on (higher = further); statistic and threshold in the model contract' },
        crops: { type: 'integer', enum: [1, 10] },
        agreement: { type: 'integer', description: 'Crops whose own top-1 is the averaged top-1' },
        model,
        timings_ms: ref('Timings'),
      },
      ['predictions', 'unknown', 'ood_score', 'crops', 'agreement', 'model'],
    ),
    Embedding: obj(
      {
        embedding: { oneOf: [{ type: 'array', items: num }, { type: 'string', format: 'byte' }] },
        format: { type: 'string', enum: ['json', 'base64'] },
        dim: int,
        crops: { type: 'integer', enum: [1, 10], description: 'Crops averaged into the embedding' },
        code: { type: 'string', description: 'Packed binary code, hex (bit i in byte i>>3 at position i&7)' },
        bits: int,
        model,
        timings_ms: ref('Timings'),
      },
      ['embedding', 'format', 'dim', 'code', 'bits'],
    ),
    Info: obj(
      {
        model: obj(
          {
            name: str,
            version: str,
            labels: strings,
            inputShape: { type: 'array', items: int, description: '[C, H, W] of one crop' },
            embeddingDim: int,
            io: obj({ input: str, logits: str, embedding: str }),
            provider: { type: 'string', description: 'Execution provider in use (cpu, cuda, webgpu)' },
          },
          ['name', 'version', 'labels'],
        ),
        index: obj({ size: int }, ['size']),
        ready: bool,
        reason: str,
      },
      ['model', 'index', 'ready'],
    ),
    ...imageSchemas(info),
    ...jobSchemas(),
    ...oipSchemas(),
  };
}
