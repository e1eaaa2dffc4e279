import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import multer from 'multer';
import { IndexModelMismatchError, IndexParamError, IndexStorageFullError } from '../../index/index.js';
import { ImageTooLargeError, UnsupportedMediaError } from '../../model/index.js';
import { loadConfig } from '../../server/config.js';
import { ConfigError, describeError, InvalidParameterError, ServiceUnavailableError } from '../../server/errors.js';

test('config defaults are documented values, absolute paths, frozen', () => {
  const c = loadConfig({}, {});
  assert.equal(c.port, 8080);
  assert.equal(c.maxBatch, 32);
  assert.equal(c.maxDelayMs, 4);
  assert.equal(c.bodyLimitBytes, 20 * 1024 * 1024);
  assert.equal(c.demo, true);
  assert.equal(c.device, 'auto');
  assert.equal(c.inferenceWorker, true);
  assert.equal(c.inferenceSpin, false);
  assert.equal(loadConfig({}, { SIGHTLINE_INFERENCE_SPIN: '1' }).inferenceSpin, true);
  assert.equal(c.inferenceInflight, 1);
  assert.equal(c.decodeConcurrency, 0);
  assert.equal(loadConfig({}, { SIGHTLINE_INFERENCE_INFLIGHT: '2', SIGHTLINE_DECODE_CONCURRENCY: '3' }).inferenceInflight, 2);
  assert.equal(loadConfig({}, { SIGHTLINE_DECODE_CONCURRENCY: '3' }).decodeConcurrency, 3);
  assert.equal(c.heapGrowingPercent, 100);
  assert.equal(loadConfig({}, { SIGHTLINE_HEAP_GROWING_PERCENT: '0' }).heapGrowingPercent, 0);
  assert.throws(() => loadConfig({}, { SIGHTLINE_HEAP_GROWING_PERCENT: '-5' }), /'heapGrowingPercent' \(SIGHTLINE_HEAP_GROWING_PERCENT\).*got "-5"/);
  assert.throws(() => loadConfig({}, { SIGHTLINE_INFERENCE_INFLIGHT: '0' }), /'inferenceInflight' \(SIGHTLINE_INFERENCE_INFLIGHT\).*got "0"/);
  assert.equal(c.apiToken, undefined);
  assert.deepEqual(c.indexRoots, []);
  assert.equal(c.dataDir, resolve('data'));
  assert.equal(c.modelPath, resolve('model/default/sightline-fmnist.onnx'));
  assert.ok(Object.isFrozen(c));
});

test('environment, then flags: flags win, SIGHTLINE_PORT wins over PORT', () => {
  const env = { PORT: '7000', SIGHTLINE_PORT: '9000', SIGHTLINE_INDEX_ROOTS: '/srv/photos:/mnt/nas', SIGHTLINE_DEMO: '0', SIGHTLINE_API_TOKEN: 't0k' };
  const c = loadConfig({}, env);
  assert.equal(c.port, 9000);
  assert.deepEqual(c.indexRoots, ['/srv/photos', '/mnt/nas']);
  assert.equal(c.demo, false);
  assert.equal(c.apiToken, 't0k');
  assert.equal(loadConfig({}, { PORT: '7000' }).port, 7000);
  const f = loadConfig({ port: 1234, demo: true, dataDir: '/var/lib/sightline', maxBatch: undefined }, env);
  assert.equal(f.port, 1234);
  assert.equal(f.demo, true);
  assert.equal(f.dataDir, '/var/lib/sightline');
});

test('a bad value names the setting, its variable and the value', () => {
  assert.throws(
    () => loadConfig({}, { SIGHTLINE_MAX_BATCH: '0' }),
    (err: unknown) => err instanceof ConfigError && /'maxBatch' \(SIGHTLINE_MAX_BATCH\).*got "0"/.test(err.message),
  );
  assert.throws(() => loadConfig({ device: 'tpu' }, {}), /'device'.*got "tpu"/);
});

test('describeError maps typed errors by kind, keeps their specific code, hides internals', () => {
  const cases: [unknown, number, string, string][] = [
    [new InvalidParameterError('k', 'an integer in [1, 100]', '0'), 400, 'invalid_argument', 'invalid_argument'],
    [new ImageTooLargeError(30000, 30000, 50_000_000), 413, 'too_large', 'image_too_large'],
    [new UnsupportedMediaError('HEIC', 'no decoder'), 415, 'unsupported', 'unsupported_media_type'],
    [new IndexParamError('k', 0, 'an integer in [1, 100]'), 400, 'invalid_argument', 'invalid_argument'],
    [new IndexModelMismatchError('/data', [{ field: 'model', stored: 'a', loaded: 'b' }]), 409, 'conflict', 'index_model_mismatch'],
    [new multer.MulterError('LIMIT_FILE_SIZE', 'image'), 413, 'too_large', 'payload_too_large'],
    [Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }), 413, 'too_large', 'payload_too_large'],
    [Object.assign(new SyntaxError('Unexpected end of JSON input'), { type: 'entity.parse.failed', status: 400 }), 400, 'invalid_argument', 'entity_parse_failed'],
    // A full disk: the domain kind, and raw fs / SQLite errors that escaped wrapping.
    [new IndexStorageFullError('store the upload', 'ENOSPC: no space left on device'), 507, 'insufficient_storage', 'storage_full'],
    [Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 507, 'insufficient_storage', 'storage_full'],
    [Object.assign(new Error('Disk quota exceeded'), { code: 'EDQUOT' }), 507, 'insufficient_storage', 'storage_full'],
    [Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), 507, 'insufficient_storage', 'storage_full'],
  ];
  for (const [err, status, kind, code] of cases) {
    const d = describeError(err, 1000);
    assert.equal(d.status, status, String(err));
    assert.equal(d.kind, kind);
    assert.equal(d.code, code);
    assert.equal(d.expose, true);
  }
  const internal = describeError(new TypeError("Cannot read properties of undefined (reading 'x')"));
  assert.deepEqual([internal.status, internal.code, internal.message], [500, 'internal', 'internal error']);
  const withStatus500 = describeError(Object.assign(new Error('db path /secret/x failed'), { status: 500, code: 'index_schema' }));
  assert.equal(withStatus500.message, 'internal error');
  const busy = describeError(new ServiceUnavailableError('overloaded', 'queue full', 2.2));
  assert.equal(busy.headers['Retry-After'], '3');
});

test('protection, JSON limit and HTTP timeouts: defaults, variables, and the combinations refused at start', () => {
  const c = loadConfig({}, {});
  assert.deepEqual([c.protect, c.maxJsonBytes, c.headersTimeoutMs, c.httpRequestTimeoutMs], ['writes', 8 * 1024 * 1024, 10_000, 60_000]);
  const e = loadConfig({}, { SIGHTLINE_PROTECT: 'all', SIGHTLINE_API_TOKEN: 't', SIGHTLINE_MAX_JSON_BYTES: '2048', SIGHTLINE_HEADERS_TIMEOUT_MS: '500', SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS: '900' });
  assert.deepEqual([e.protect, e.maxJsonBytes, e.headersTimeoutMs, e.httpRequestTimeoutMs], ['all', 2048, 500, 900]);
  assert.throws(() => loadConfig({}, { SIGHTLINE_PROTECT: 'all' }), /SIGHTLINE_PROTECT.*SIGHTLINE_API_TOKEN/);
  assert.throws(() => loadConfig({}, { SIGHTLINE_PROTECT: 'reads' }), /'protect' \(SIGHTLINE_PROTECT\).*got "reads"/);
  assert.throws(() => loadConfig({}, { SIGHTLINE_HEADERS_TIMEOUT_MS: '5000', SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS: '1000' }), /SIGHTLINE_HTTP_REQUEST_TIMEOUT_MS.*at least.*SIGHTLINE_HEADERS_TIMEOUT_MS/);
});
