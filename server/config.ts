/**
 * Server configuration, read once at start-up from CLI flags, then environment variables, then the
 * defaults documented on each field, and frozen. Nothing else in server/ reads process.env.
 */
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { z } from 'zod';
import { IndexLocationError, looksLikeUrl, parseDbLocation, type DbLocation } from '../index/index.js';
import { registryCodesPath, RegistryError, resolveModelArg } from '../model/index.js';
import { ConfigError } from './errors.js';
import { packageRoot } from './paths.js';

const MB = 1024 * 1024;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off']).transform((s) => ['1', 'true', 'yes', 'on'].includes(s))]);

export const configSchema = z.object({
  /** TCP port (default 8080; env SIGHTLINE_PORT or PORT; flag --port). */
  port: int(0, 65535).default(8080),
  /** Interface to bind (default 0.0.0.0; env SIGHTLINE_HOST). */
  host: z.string().min(1).default('0.0.0.0'),
  /**
   * Classifier ONNX file carrying a sightline contract, or a registry name such as alexnet-imagenet
   * (pulled with `sightline models pull`) (default model/default/sightline-fmnist.onnx in the package;
   * env SIGHTLINE_MODEL; flag --model).
   */
  modelPath: z.string().min(1).default(() => join(packageRoot(), 'model/default/sightline-fmnist.onnx')),
  /** Cache of pulled registry models (default ~/.cache/sightline; env SIGHTLINE_HOME). */
  home: z.string().min(1).default(() => join(homedir(), '.cache', 'sightline')),
  /**
   * Codes model (embedding → binary code) ONNX file (default: for a registry model name, the codes
   * model its pull made; else model/default/codes-128.onnx in the package; env SIGHTLINE_CODES; flag --codes).
   */
  codesPath: z.string().min(1).default(() => join(packageRoot(), 'model/default/codes-128.onnx')),
  /**
   * Folder of the SQLite catalog, HNSW index, uploads, thumbnails and job state (default ./data;
   * env SIGHTLINE_DATA; flag --db). With a PostgreSQL catalog it still holds the local files.
   */
  dataDir: z.string().min(1).default('data'),
  /**
   * PostgreSQL catalog instead of the SQLite one in dataDir: postgres://USER:PASSWORD@HOST:PORT/DB
   * (default unset: SQLite; env SIGHTLINE_DATABASE_URL; flag --db with a URL). A `--db` folder wins over the env.
   */
  databaseUrl: z.string().min(1).optional(),
  /** onnxruntime execution provider (default auto: CUDA when available, else CPU; env SIGHTLINE_DEVICE; flag --device). */
  device: z.enum(['auto', 'cpu', 'cuda', 'webgpu']).default('auto'),
  /** onnxruntime intra-op threads; 0 (the default) means the session's default, 2 (model/session.ts), not onnxruntime's own choice (env SIGHTLINE_THREADS). */
  threads: int(0, 256).default(0),
  /**
   * Run onnxruntime in a worker thread so the event loop keeps serving during a batch (default true;
   * env SIGHTLINE_INFERENCE_WORKER). Off: runs block the main thread, one thread fewer.
   */
  inferenceWorker: bool.default(true),
  /**
   * Let onnxruntime's threads spin-wait between runs (default false; env SIGHTLINE_INFERENCE_SPIN).
   * Off leaves the CPU to decoding and HTTP between batches; see `npm run bench -- server --spin`.
   */
  inferenceSpin: bool.default(false),
  /**
   * Batches handed to onnxruntime at once (default 1; env SIGHTLINE_INFERENCE_INFLIGHT). 2 queues the
   * next batch in the inference worker while one runs, so no gap is left between runs; see
   * `npm run bench -- server --inflight 2`.
   */
  inferenceInflight: int(1, 4).default(1),
  /**
   * Images decoded at once; 0 = no limit of our own (libuv's pool, UV_THREADPOOL_SIZE = 4 threads,
   * bounds it) (default 0; env SIGHTLINE_DECODE_CONCURRENCY). Decodes share the cores with
   * onnxruntime's threads; see `npm run bench -- server --decode-concurrency N`.
   */
  decodeConcurrency: int(0, 64).default(0),
  /**
   * V8 may grow the JS heap to 1 + this/100 times its live size between full garbage collections
   * (default 100; 0 = V8's own choice; env SIGHTLINE_HEAP_GROWING_PERCENT). V8's own choice kept
   * the server's heap so tight that full collections ran back to back; see server/heap.ts.
   */
  heapGrowingPercent: int(0, 1000).default(100),
  /** Index the bundled Fashion-MNIST demo gallery when the catalog is empty (default true; env SIGHTLINE_DEMO; flag --no-demo). */
  demo: bool.default(true),
  /** Most crops merged into one onnxruntime run (default 32; env SIGHTLINE_MAX_BATCH). */
  maxBatch: int(1, 1024).default(32),
  /** Longest time the oldest queued crop waits for a batch to fill (default 4 ms; env SIGHTLINE_MAX_DELAY_MS). */
  maxDelayMs: z.coerce.number().min(0).max(1000).default(4),
  /** Interactive crops allowed to wait for inference; beyond this requests get 503 + Retry-After (default 320; env SIGHTLINE_MAX_QUEUE). */
  maxQueue: int(1, 1_000_000).default(320),
  /** Longest a request waits for inference before 503 (default 15000 ms; env SIGHTLINE_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: int(1, 3_600_000).default(15_000),
  /** Largest request body (default 20 MB → 413; env SIGHTLINE_BODY_LIMIT_BYTES). */
  bodyLimitBytes: int(1024, 1024 * MB).default(20 * MB),
  /** Largest decoded image, in pixels: decompression bombs get 413 (default 50 000 000; env SIGHTLINE_MAX_PIXELS). */
  maxPixels: int(1, 1_000_000_000).default(50_000_000),
  /** Folders under which POST /v1/jobs/index may read (default none: jobs refused; env SIGHTLINE_INDEX_ROOTS, separated by ':'). */
  indexRoots: z.array(z.string().min(1)).default([]),
  /** Bearer token required on write routes when set (default unset: open; env SIGHTLINE_API_TOKEN). */
  apiToken: z.string().min(1).optional(),
  /**
   * What the bearer token protects (default writes; env SIGHTLINE_PROTECT): `writes` = uploads,
   * deletes and job changes (reads, inference and metrics stay open); `all` = every route but health
   * (/healthz, /v2/health/*) and the page's static files, which hold no data. `all` needs SIGHTLINE_API_TOKEN.
   */
  protect: z.enum(['writes', 'all']).default('writes'),
  /** Largest JSON body, e.g. an OIP infer request (default 8 MB → 413; env SIGHTLINE_MAX_JSON_BYTES). The largest valid OIP batch of the bundled model is ≈ 2.5 MB. */
  maxJsonBytes: int(1024, 1024 * MB).default(8 * MB),
  /** Longest a client may take to send the request headers before the connection is closed (default 10000 ms; env SIGHTLINE_HEADERS_TIMEOUT_MS). Slow-loris guard. */
  headersTimeoutMs: int(100, 3_600_000).default(10_000),
  /** Longest a client may take to send a whole request, body included (default 60000 ms; env SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS). At least headersTimeoutMs. */
  httpRequestTimeoutMs: int(100, 3_600_000).default(60_000),
  /** Images of an indexing job in flight at once: bounds what a job puts in front of interactive requests (default 4; env SIGHTLINE_JOB_CONCURRENCY; flag --concurrency). */
  jobConcurrency: int(1, 64).default(4),
  /**
   * PostgreSQL catalogs: a replica renews its claim on the job it runs every third of this; a job
   * not renewed for this long (its replica died) is taken over by another replica (default 15000 ms;
   * env SIGHTLINE_JOB_LEASE_MS). Shorter: faster takeover; longer: a stalled replica keeps its job.
   */
  jobLeaseMs: int(300, 3_600_000).default(15_000),
  /**
   * PostgreSQL catalogs: most connections this replica opens (default 10; env SIGHTLINE_DATABASE_POOL).
   * Searches and uploads hold one for a few statements, a job up to SIGHTLINE_JOB_CONCURRENCY; the
   * server's max_connections must cover replicas × this (docs/deploy.md, Sizing).
   */
  databasePool: int(1, 1000).default(10),
  /** Golden image checked at readiness (default: the per-model entry of server/demo/golden.json; env SIGHTLINE_GOLDEN_IMAGE). */
  goldenImage: z.string().min(1).optional(),
  /** Label the golden image must get as its top prediction (env SIGHTLINE_GOLDEN_LABEL). */
  goldenLabel: z.string().min(1).optional(),
  /**
   * Folder of uploaded originals (uploads/) and thumbnails (thumbnails/) (default: dataDir; env
   * SIGHTLINE_BLOB_DIR). Replicas on one PostgreSQL catalog share it (a shared volume mounted at the
   * same path in each): an image's `source` is a path there, and any replica may serve its thumbnail.
   */
  blobDir: z.string().min(1).optional(),
  /** Longest side of generated WebP thumbnails (default 160 px; env SIGHTLINE_THUMBNAIL_SIZE). */
  thumbnailSize: int(16, 1024).default(160),
  /** pino level (default info; env SIGHTLINE_LOG_LEVEL). */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Readonly<
  Omit<z.infer<typeof configSchema>, 'blobDir'> & {
    /** Always set once loaded: SIGHTLINE_BLOB_DIR, else dataDir. */
    blobDir: string;
    /** Where the catalog lives, derived from dataDir and databaseUrl (index/location.ts). */
    database: DbLocation;
  }
>;
export type ConfigInput = z.input<typeof configSchema>;

const ENV: Readonly<Record<string, keyof ConfigInput>> = {
  SIGHTLINE_PORT: 'port',
  PORT: 'port',
  SIGHTLINE_HOST: 'host',
  SIGHTLINE_MODEL: 'modelPath',
  SIGHTLINE_CODES: 'codesPath',
  SIGHTLINE_HOME: 'home',
  SIGHTLINE_DATA: 'dataDir',
  SIGHTLINE_DATABASE_URL: 'databaseUrl',
  SIGHTLINE_DEVICE: 'device',
  SIGHTLINE_THREADS: 'threads',
  SIGHTLINE_INFERENCE_WORKER: 'inferenceWorker',
  SIGHTLINE_INFERENCE_SPIN: 'inferenceSpin',
  SIGHTLINE_INFERENCE_INFLIGHT: 'inferenceInflight',
  SIGHTLINE_DECODE_CONCURRENCY: 'decodeConcurrency',
  SIGHTLINE_HEAP_GROWING_PERCENT: 'heapGrowingPercent',
  SIGHTLINE_DEMO: 'demo',
  SIGHTLINE_MAX_BATCH: 'maxBatch',
  SIGHTLINE_MAX_DELAY_MS: 'maxDelayMs',
  SIGHTLINE_MAX_QUEUE: 'maxQueue',
  SIGHTLINE_REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
  SIGHTLINE_BODY_LIMIT_BYTES: 'bodyLimitBytes',
  SIGHTLINE_MAX_PIXELS: 'maxPixels',
  SIGHTLINE_INDEX_ROOTS: 'indexRoots',
  SIGHTLINE_API_TOKEN: 'apiToken',
  SIGHTLINE_PROTECT: 'protect',
  SIGHTLINE_MAX_JSON_BYTES: 'maxJsonBytes',
  SIGHTLINE_HEADERS_TIMEOUT_MS: 'headersTimeoutMs',
  SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS: 'httpRequestTimeoutMs',
  SIGHTLINE_JOB_CONCURRENCY: 'jobConcurrency',
  SIGHTLINE_JOB_LEASE_MS: 'jobLeaseMs',
  SIGHTLINE_DATABASE_POOL: 'databasePool',
  SIGHTLINE_GOLDEN_IMAGE: 'goldenImage',
  SIGHTLINE_GOLDEN_LABEL: 'goldenLabel',
  SIGHTLINE_BLOB_DIR: 'blobDir',
  SIGHTLINE_THUMBNAIL_SIZE: 'thumbnailSize',
  SIGHTLINE_LOG_LEVEL: 'logLevel',
};

/** Environment values as config input; SIGHTLINE_PORT wins over PORT because it comes first. */
export function configFromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof ConfigInput, unknown>> {
  const out: Partial<Record<keyof ConfigInput, unknown>> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '' || key in out) continue;
    out[key] = key === 'indexRoots' ? value.split(delimiter).filter((s) => s.length > 0) : value;
  }
  return out;
}

/**
 * Flags (already parsed, undefined = not given) override the environment, which overrides defaults.
 * Paths are made absolute against the working directory so later chdirs cannot change them.
 * `flagNames` (e.g. { port: '--port' }) names a bad value as the user gave it: the flag when it
 * came from one, else the environment variable.
 */
export function loadConfig(
  flags: Partial<Record<keyof ConfigInput, unknown>> = {},
  env: NodeJS.ProcessEnv = process.env,
  flagNames: Partial<Record<keyof ConfigInput, string>> = {},
): Config {
  const source = (key: string): string | undefined => {
    const flag = flags[key as keyof ConfigInput] !== undefined ? flagNames[key as keyof ConfigInput] : undefined;
    return flag ?? Object.entries(ENV).find(([, k]) => k === key)?.[0];
  };
  const merged: Record<string, unknown> = { ...configFromEnv(env) };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  const dbFrom = routeDatabaseUrl(merged, flags, env, source);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '?');
    const named = source(key);
    throw new ConfigError(`config '${key}'${named ? ` (${named})` : ''} ${issue?.message ?? 'is invalid'}, got ${JSON.stringify(merged[key])}`);
  }
  const c = parsed.data;
  if (c.protect === 'all' && c.apiToken === undefined) {
    throw new ConfigError(`config 'protect' (SIGHTLINE_PROTECT) is 'all' but no token is set: set SIGHTLINE_API_TOKEN too, or use SIGHTLINE_PROTECT=writes`);
  }
  if (c.httpRequestTimeoutMs < c.headersTimeoutMs) {
    throw new ConfigError(`config 'httpRequestTimeoutMs' (SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS) must be at least 'headersTimeoutMs' (SIGHTLINE_HEADERS_TIMEOUT_MS, ${c.headersTimeoutMs}), got ${c.httpRequestTimeoutMs}`);
  }
  const home = resolve(c.home);
  let modelPath: string;
  try {
    modelPath = resolveModelArg(c.modelPath, home);
  } catch (err) {
    if (err instanceof RegistryError) throw new ConfigError(`config 'modelPath' (${source('modelPath') ?? 'SIGHTLINE_MODEL'}): ${err.message}`, { cause: err });
    throw err;
  }
  const codesPath = merged['codesPath'] === undefined ? (registryCodesPath(c.modelPath, home) ?? c.codesPath) : c.codesPath;
  let database: DbLocation;
  try {
    database = parseDbLocation(c.databaseUrl ?? c.dataDir, dbFrom);
  } catch (err) {
    if (err instanceof IndexLocationError) throw new ConfigError(`config 'databaseUrl': ${err.message}`, { cause: err });
    throw err;
  }
  return Object.freeze({
    database,
    ...c,
    home,
    modelPath,
    codesPath: resolve(codesPath),
    dataDir: resolve(c.dataDir),
    indexRoots: Object.freeze(c.indexRoots.map((r) => resolve(r))) as string[],
    goldenImage: c.goldenImage === undefined ? undefined : resolve(c.goldenImage),
    blobDir: resolve(c.blobDir ?? c.dataDir),
  });
}

/**
 * `--db` takes a folder or a URL: a URL-shaped dataDir (flag or SIGHTLINE_DATA) becomes the
 * database URL (a URL never names a folder), and a folder given as `--db` wins over
 * SIGHTLINE_DATABASE_URL (not over a databaseUrl given alongside it, as tests and embedders do). Returns where the URL came from, for messages.
 */
function routeDatabaseUrl(
  merged: Record<string, unknown>,
  flags: Partial<Record<keyof ConfigInput, unknown>>,
  env: NodeJS.ProcessEnv,
  source: (key: string) => string | undefined,
): string {
  const dir = merged['dataDir'];
  if (typeof dir === 'string' && looksLikeUrl(dir)) {
    const from = source('dataDir') ?? 'SIGHTLINE_DATA';
    merged['databaseUrl'] = dir;
    delete merged['dataDir'];
    const envDir = configFromEnv(env)['dataDir'];
    if (flags.dataDir !== undefined && typeof envDir === 'string' && !looksLikeUrl(envDir)) merged['dataDir'] = envDir;
    return from;
  }
  if (flags.dataDir !== undefined && flags.databaseUrl === undefined) delete merged['databaseUrl'];
  return 'SIGHTLINE_DATABASE_URL';
}
