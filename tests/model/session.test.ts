import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONTRACT_KEY, ContractError } from '../../model/contract.js';
import { InvalidOptionError, ModelLoadError } from '../../model/errors.js';
import { decodeModel, encodeModel } from '../../model/onnx/proto.js';
import { createSession } from '../../model/session.js';
import type { ModelSession, SessionLogger } from '../../model/session.js';
import { mulberry32 } from '../../training/network.js';
import type { TinyModel } from './tiny-model.js';
import { buildTinyModel, TINY_LABELS } from './tiny-model.js';

const CHW = 3 * 32 * 32;

function randomBatch(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n * CHW }, () => rand() * 4 - 2);
}

/** Rewrites the contract JSON inside a copy of the model, to make a graph/contract mismatch. */
function withContract(model: TinyModel, name: string, edit: (c: Record<string, unknown>) => void): string {
  const proto = decodeModel(readFileSync(model.path));
  const entry = proto.metadataProps.find((e) => e.key === CONTRACT_KEY);
  assert.ok(entry, 'exported model carries a contract');
  const contract = JSON.parse(entry.value ?? '{}') as Record<string, unknown>;
  edit(contract);
  entry.value = JSON.stringify(contract);
  const path = join(model.dir, name);
  writeFileSync(path, encodeModel(proto));
  return path;
}

function recordingLogger(): SessionLogger & { warnings: Array<Record<string, unknown>>; messages: string[] } {
  const warnings: Array<Record<string, unknown>> = [];
  const messages: string[] = [];
  return {
    warnings,
    messages,
    info: () => undefined,
    warn: (obj, msg) => {
      warnings.push(obj as Record<string, unknown>);
      messages.push(msg);
    },
  };
}

describe('createSession', () => {
  let model: TinyModel;
  let session: ModelSession;

  before(async () => {
    model = buildTinyModel();
    session = await createSession(model.path, { device: 'cpu', threads: 1 });
  });
  after(async () => {
    await session.close();
    model.cleanup();
  });

  it('reads the contract and the input geometry from the model', () => {
    assert.equal(session.provider, 'cpu');
    assert.deepEqual(session.inputShape, [3, 32, 32]);
    assert.deepEqual(session.contract.labels, TINY_LABELS);
    assert.equal(session.contract.embeddingDim, 64);
    assert.equal(session.contract.modelVersion, '3');
  });

  it('returns [n, K] logits and [n, 64] non-negative embeddings', async () => {
    const out = await session.run(randomBatch(3, 1), 3);
    assert.equal(out.n, 3);
    assert.equal(out.logits.length, 3 * TINY_LABELS.length);
    assert.equal(out.embedding.length, 3 * 64);
    assert.ok(out.logits.every(Number.isFinite));
    assert.ok(out.embedding.every((v) => v >= 0), 'fc7 is taken after ReLU');
    assert.ok(out.embedding.some((v) => v > 0));
  });

  it('is deterministic and batch-independent', async () => {
    const batch = randomBatch(4, 2);
    const a = await session.run(batch, 4);
    const b = await session.run(batch, 4);
    assert.deepEqual(a.logits, b.logits);
    assert.deepEqual(a.embedding, b.embedding);
    const k = TINY_LABELS.length;
    for (let i = 0; i < 4; i++) {
      const single = await session.run(batch.slice(i * CHW, (i + 1) * CHW), 1);
      single.logits.forEach((v, j) => assert.ok(Math.abs(v - (a.logits[i * k + j] ?? NaN)) < 1e-5, `row ${i} logit ${j}`));
    }
    const ab = await session.run(batch, 4);
    assert.notDeepEqual(ab.logits.subarray(0, k), ab.logits.subarray(k, 2 * k), 'different images give different logits');
  });

  it('uses only the first n crops of a longer batch and refuses a short one', async () => {
    const batch = randomBatch(3, 3);
    const two = await session.run(batch, 2);
    const first = await session.run(batch.subarray(0, 2 * CHW), 2);
    assert.deepEqual(two.logits, first.logits);
    await assert.rejects(session.run(batch, 4), /'batch' holds 9216 floats, 4 crops of 3×32×32 need 12288/);
  });

  it('falls back to CPU when CUDA is asked for on a machine without it, and says so', async () => {
    const logger = recordingLogger();
    const s = await createSession(model.path, { device: 'cuda', threads: 1, logger });
    try {
      assert.equal(s.provider, 'cpu');
      assert.equal(logger.warnings.length, 1);
      assert.equal(logger.warnings[0]?.['requested'], 'cuda');
      assert.equal(logger.warnings[0]?.['provider'], 'cpu');
      assert.match(logger.messages[0] ?? '', /^execution provider 'cuda' not used: the CUDA provider library is not installed .*; running on 'cpu'$/);
    } finally {
      await s.close();
    }
  });

  it('names why WebGPU was not used when it falls back', async () => {
    const logger = recordingLogger();
    const s = await createSession(model.path, { device: 'webgpu', threads: 1, logger });
    try {
      // A machine with a WebGPU adapter runs on it and logs nothing; without one the line says why.
      if (s.provider === 'cpu') assert.match(logger.messages[0] ?? '', /^execution provider 'webgpu' not used: \S.*; running on 'cpu'$/);
      else assert.equal(logger.messages.length, 0);
    } finally {
      await s.close();
    }
  });

  it('refuses a closed session', async () => {
    const s = await createSession(model.path, { device: 'cpu', threads: 1 });
    await s.close();
    await assert.rejects(s.run(randomBatch(1, 4), 1), ModelLoadError);
  });

  it('names the missing model file', async () => {
    await assert.rejects(createSession(join(model.dir, 'nope.onnx')), (err: unknown) => {
      assert.ok(err instanceof ModelLoadError);
      assert.match(err.message, /nope\.onnx' does not exist/);
      return true;
    });
  });

  it('validates options', async () => {
    await assert.rejects(createSession(model.path, { threads: 0 }), /'threads' must be an integer in \[1, 256\], got 0/);
    await assert.rejects(createSession(model.path, { device: 'tpu' as 'cpu' }), InvalidOptionError);
  });

  it('rejects a graph whose outputs do not fit the contract labels', async () => {
    const path = withContract(model, 'labels.onnx', (c) => {
      c['labels'] = ['a', 'b', 'c', 'd'];
    });
    await assert.rejects(createSession(path, { device: 'cpu' }), (err: unknown) => {
      assert.ok(err instanceof ContractError);
      assert.match(err.message, /output 'logits' has shape \[N, 5\], the contract lists 4 labels/);
      return true;
    });
  });

  it('rejects a graph whose input does not fit the contract geometry', async () => {
    const path = withContract(model, 'size.onnx', (c) => {
      c['preprocess'] = { ...(c['preprocess'] as object), inputSize: 28, resizeSize: 32 };
    });
    await assert.rejects(createSession(path, { device: 'cpu' }), /input 'images' is 32×32, preprocess.inputSize is 28/);
    const renamed = withContract(model, 'io.onnx', (c) => {
      c['io'] = { input: 'data', logits: 'logits', embedding: 'embedding' };
    });
    await assert.rejects(createSession(renamed, { device: 'cpu' }), /graph has no input 'data' \(inputs: images\)/);
  });
});
