import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkCodesFor, CodesMismatchError, createCodesSession, packRows, readCodesMeta, type CodesMeta } from '../../model/codes.js';
import { packSigns } from '../../index/codes.js';
import { classifyImage, sessionPipeline, sha256File } from '../../model/index.js';
import { ModelLoadError } from '../../model/errors.js';
import { createSession } from '../../model/session.js';
import { Autoencoder, DEFAULT_AE, normalizationStats } from '../../training/autoencoder.js';
import { useBackend } from '../../training/backend.js';
import { exportCodesOnnx, type EncoderWeights } from '../../training/codes/export.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const DIM = 64;
const BITS = 32;

function meta(over: Partial<CodesMeta> = {}): CodesMeta {
  return {
    version: 1, bits: BITS, embeddingDim: DIM, modelHash: 'a'.repeat(64), model: { name: 'tiny', version: '1' }, cropPolicy: 'center',
    normalization: 'l2', hidden: [16], classes: [], metrics: {}, training: {}, ...over,
  };
}

/** Non-negative, spread-out rows like fc7 after ReLU, some all-zero (the ε branch of the norm). */
function embeddings(n: number, seed: number): Float32Array {
  const x = gaussianFill(new Float32Array(n * DIM), 2, mulberry32(seed)).map((v) => Math.max(0, v));
  x.fill(0, 0, DIM);
  return x;
}

describe('codes model: export and onnxruntime', () => {
  let dir: string;
  let tiny: TinyModel;

  before(async () => {
    await useBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'sightline-codes-model-'));
    tiny = buildTinyModel();
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    tiny.cleanup();
  });

  it('the exported graph gives the tfjs encoder\'s code logits and the same codes', async () => {
    const train = embeddings(128, 1);
    const ae = new Autoencoder(DIM, { ...DEFAULT_AE, bits: BITS, hidden: [16] }, normalizationStats({ embeddings: train, n: 128, dim: DIM }), 0);
    try {
      // A few steps so that the weights are not the symmetric init.
      for (let s = 0; s < 5; s++) ae.trainStep(train, 128, undefined, s);
      const path = join(dir, 'parity.onnx');
      writeFileSync(path, exportCodesOnnx(await ae.encoderWeights(), meta()));
      const x = embeddings(50, 2);
      const ref = ae.codeLogits(x, 50);
      const codes = await createCodesSession(path);
      try {
        const { codes: packed, logits } = await codes.encodeDetailed(x, 50);
        let maxDiff = 0;
        for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs((ref[i] as number) - (logits[i] as number)));
        assert.ok(maxDiff < 1e-4, `max |tfjs − ort| = ${maxDiff}`);
        for (let i = 0; i < ref.length; i++) {
          if (Math.abs(ref[i] as number) < 1e-4) continue;
          const bit = (((packed[i >>> 3] as number) >>> (i & 7)) & 1) === 1;
          assert.equal(bit, (ref[i] as number) > 0, `bit ${i % BITS} of row ${Math.floor(i / BITS)}`);
        }
        // encode() is encodeDetailed().codes; a bigger buffer is read only up to n rows.
        const bigger = new Float32Array(x.length + DIM);
        bigger.set(x);
        assert.deepEqual(await codes.encode(bigger, 50), packed);
      } finally {
        await codes.close();
      }
    } finally {
      ae.dispose();
    }
  });

  it('reads its metadata and refuses files that are not codes models', async () => {
    const w: EncoderWeights = { norm: { mean: new Float32Array(DIM), scale: 1 }, layers: [{ w: new Float32Array(DIM * BITS), wShape: [DIM, BITS], b: new Float32Array(BITS) }] };
    const path = join(dir, 'meta.onnx');
    writeFileSync(path, exportCodesOnnx(w, meta({ cropPolicy: 'mean10', hidden: [], metrics: { code_class_accuracy: 0.9 } })));
    const m = readCodesMeta(path);
    assert.equal(m.cropPolicy, 'mean10');
    assert.equal(m.metrics['code_class_accuracy'], 0.9);
    const codes = await createCodesSession(path);
    assert.equal(codes.crops, 10);
    await codes.close();
    await assert.rejects(createCodesSession(join(dir, 'missing.onnx')), (e: unknown) => e instanceof ModelLoadError && /does not exist/.test(e.message));
    // The image model is valid ONNX but carries no codes metadata.
    await assert.rejects(createCodesSession(tiny.path), (e: unknown) => e instanceof ModelLoadError && /sightline\.codes/.test(e.message));
    // Metadata that disagrees with the graph: 64 bits claimed, 32 emitted.
    const bytes = exportCodesOnnx(w, meta());
    const lying = Buffer.from(bytes).toString('latin1').replace('"bits":32', '"bits":64');
    writeFileSync(join(dir, 'lying.onnx'), Buffer.from(lying, 'latin1'));
    await assert.rejects(createCodesSession(join(dir, 'lying.onnx')), /metadata says 64 bits/);
    assert.throws(() => exportCodesOnnx(w, meta({ bits: 64 })), /encoder ends with 32 units, metadata says 64 bits/);
  });

  it('checkCodesFor refuses a codes model trained for another image model', () => {
    const codes = { path: 'c.onnx', modelHash: 'b'.repeat(64), embeddingDim: DIM };
    assert.doesNotThrow(() => checkCodesFor(codes, 'b'.repeat(64), DIM));
    assert.throws(() => checkCodesFor(codes, 'c'.repeat(64), DIM), (e: unknown) => e instanceof CodesMismatchError && e.kind === 'unavailable' && /train-codes/.test(e.message));
    assert.throws(() => checkCodesFor(codes, 'b'.repeat(64), 4096), /takes 64-d embeddings, the image model gives 4096/);
  });

  it('the image pipeline with a codes model: bytes → embedding (crop policy), its code and labels; a foreign codes model is refused', async () => {
    const rand = mulberry32(9);
    const w: EncoderWeights = {
      norm: { mean: new Float32Array(DIM).fill(0.1), scale: 3 },
      layers: [{ w: gaussianFill(new Float32Array(DIM * BITS), 1, rand), wShape: [DIM, BITS], b: new Float32Array(BITS) }],
    };
    const hash = await sha256File(tiny.path);
    const bytes = readFileSync('tests/fixtures/images/dog.jpg');
    const session = await createSession(tiny.path, { threads: 1 });
    try {
      for (const cropPolicy of ['center', 'mean10'] as const) {
        const path = join(dir, `enc-${cropPolicy}.onnx`);
        writeFileSync(path, exportCodesOnnx(w, meta({ modelHash: hash, cropPolicy, hidden: [] })));
        const codes = await createCodesSession(path, { threads: 1 });
        try {
          checkCodesFor(codes, hash, session.contract.embeddingDim);
          const e = await sessionPipeline(session, { maxPixels: 1e8, codes }).encode(bytes, { labels: 3 });
          const crops = cropPolicy === 'center' ? 1 : 10;
          const ref = await classifyImage(session, bytes, { crops, maxPixels: 1e8, topk: 3 });
          assert.equal(e.crops, crops);
          assert.deepEqual(e.embedding, ref.embedding);
          assert.deepEqual(e.labels, ref.predictions);
          assert.deepEqual(e.code, await codes.encode(ref.embedding, 1));
          assert.equal(e.code?.length, BITS / 8);
          assert.equal(e.image.width, 768);
          assert.equal(e.image.height, 576);
        } finally {
          await codes.close();
        }
      }
      const foreign = join(dir, 'foreign.onnx');
      writeFileSync(foreign, exportCodesOnnx(w, meta()));
      const codes = await createCodesSession(foreign, { threads: 1 });
      try {
        assert.throws(() => checkCodesFor(codes, hash, session.contract.embeddingDim), CodesMismatchError);
      } finally {
        await codes.close();
      }
    } finally {
      await session.close();
    }
  });
});

describe('code bit layout', () => {
  it('packRows (model/) writes the layout index/ reads (packSigns): value > 0 → 1, LSB first', () => {
    const rand = mulberry32(3);
    const n = 5;
    const bits = 64;
    const values = Float32Array.from({ length: n * bits }, (_, i) => (i % 7 === 0 ? 0 : i % 11 === 0 ? -0 : rand() - 0.5));
    const packed = packRows(values, n, bits, new Uint8Array(n * 8).fill(0xff));
    for (let i = 0; i < n; i++) assert.deepEqual(packed.subarray(i * 8, (i + 1) * 8), packSigns(values.subarray(i * bits, (i + 1) * bits)), `row ${i}`);
    assert.deepEqual([...packRows(Float32Array.from([1, -1, -1, -1, -1, -1, -1, 2]), 1, 8)], [0b1000_0001]);
  });
});
