/**
 * Parity: the tfjs forward pass (training/network.ts, wasm backend) and onnxruntime running our
 * exported ONNX must agree on logits and embedding for both presets, from the same He-init weights.
 * Error metric: relativeError() in onnx-checker.ts = max|a − b| / max(max|reference|, 1e-6).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { Preset } from '../../model/architecture.js';
import { alexnetPreset, parameterCount, smallPreset } from '../../model/architecture.js';
import { exportOnnx, fromFloat16Array, inspectOnnx, toFloat16Array } from '../../model/onnx/index.js';
import type { ExportContract } from '../../model/onnx/index.js';
import type { NamedWeights } from '../../model/weights.js';
import { useBackend } from '../../training/backend.js';
import { forward, gaussianFill, initWeights, mulberry32, paramsFromWeights } from '../../training/network.js';
import { relativeError, runOrt } from './onnx-checker.js';

const FP32_TOL = 1e-4;

function contractFor(p: Preset): ExportContract {
  const gray = p.channels === 1;
  return {
    name: `parity-${p.name}`,
    modelVersion: '1',
    labels: Array.from({ length: p.numClasses }, (_, i) => `class-${i}`),
    preprocess: {
      inputSize: p.inputSize,
      resizeSize: p.resizeSize,
      channels: gray ? 'gray' : 'rgb',
      scale: 1 / 255,
      mean: gray ? [0.5] : [0.485, 0.456, 0.406],
      std: gray ? [0.5] : [0.229, 0.224, 0.225],
      background: [255, 255, 255],
    },
    source: 'test',
  };
}

function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch] ?? 0;
  return out;
}

interface Outputs {
  logits: Float32Array;
  embedding: Float32Array;
}

async function tfjsForward(p: Preset, weights: NamedWeights, nhwc: Float32Array, batch: number): Promise<Outputs> {
  const params = paramsFromWeights(weights);
  const x = tf.tensor4d(nhwc, [batch, p.inputSize, p.inputSize, p.channels]);
  try {
    const out = forward(p, params, x, { training: false });
    const res = { logits: new Float32Array(await out.logits.data()), embedding: new Float32Array(await out.embedding.data()) };
    tf.dispose([out.logits, out.embedding]);
    return res;
  } finally {
    x.dispose();
    for (const { w, b } of params.values()) tf.dispose([w, b]);
  }
}

async function onnxForward(bytes: Uint8Array, p: Preset, nhwc: Float32Array, batch: number): Promise<Outputs> {
  const s = p.inputSize;
  const nchw = nhwcToNchw(nhwc, batch, s, s, p.channels);
  const out = await runOrt(bytes, { images: { data: nchw, dims: [batch, p.channels, s, s] } }, ['logits', 'embedding']);
  return { logits: out['logits'] ?? new Float32Array(), embedding: out['embedding'] ?? new Float32Array() };
}

function randomInput(p: Preset, batch: number, seed: number): Float32Array {
  return gaussianFill(new Float32Array(batch * p.inputSize * p.inputSize * p.channels), 1, mulberry32(seed));
}

/** What the fp16 file computes: every weight rounded to the nearest half. */
function roundedToHalf(weights: NamedWeights): NamedWeights {
  const half = (a: Float32Array): Float32Array => fromFloat16Array(toFloat16Array(a));
  return new Map([...weights].map(([k, v]) => [k, { w: half(v.w), wShape: v.wShape, b: half(v.b) }]));
}

function assertClose(actual: Outputs, expected: Outputs, tol: number, what: string): void {
  const el = relativeError(actual.logits, expected.logits);
  const ee = relativeError(actual.embedding, expected.embedding);
  assert.ok(el < tol, `${what}: logits relative error ${el.toExponential(2)} ≥ ${tol}`);
  assert.ok(ee < tol, `${what}: embedding relative error ${ee.toExponential(2)} ≥ ${tol}`);
}

before(async () => {
  await useBackend('wasm');
});

describe('tfjs ↔ onnxruntime parity', () => {
  it('alexnet-small (1×28×28, 10 classes) matches at batch 2, fp32 and fp16', async () => {
    const p = smallPreset();
    const weights = initWeights(p, 'he', 7);
    const input = randomInput(p, 2, 11);
    const ref = await tfjsForward(p, weights, input, 2);
    assert.equal(ref.embedding.length, 2 * 4096);
    assert.ok(ref.embedding.some((v) => v > 0), 'embedding is not all zeros');
    assert.ok(Math.max(...ref.logits) - Math.min(...ref.logits) > 1e-3, 'logits are not constant');

    const onnx32 = await onnxForward(exportOnnx(p, weights, contractFor(p)), p, input, 2);
    assertClose(onnx32, ref, FP32_TOL, 'fp32');

    const bytes16 = exportOnnx(p, weights, contractFor(p), { fp16: true });
    const onnx16 = await onnxForward(bytes16, p, input, 2);
    // Exact semantics of fp16 storage: same as tfjs with half-rounded weights, to fp32 tolerance...
    assertClose(onnx16, await tfjsForward(p, roundedToHalf(weights), input, 2), FP32_TOL, 'fp16 vs half-rounded tfjs');
    // ...and close to the fp32 model: half keeps ~11 significant bits per weight (rel. 2^-11 ≈ 5e-4).
    assertClose(onnx16, ref, 1e-2, 'fp16 vs fp32 tfjs');
  });

  it('full alexnet (3×224×224, 1000 classes) matches at batch 1', async () => {
    const p = alexnetPreset();
    const weights = initWeights(p, 'he', 3);
    const input = randomInput(p, 1, 5);
    const ref = await tfjsForward(p, weights, input, 1);
    assert.equal(ref.logits.length, 1000);
    assert.ok(ref.embedding.some((v) => v > 0), 'embedding is not all zeros');
    const bytes = exportOnnx(p, weights, contractFor(p));
    weights.clear();
    const s = inspectOnnx(bytes);
    assert.equal(s.parameters, parameterCount(p));
    assert.ok(s.parameters > 60e6 && s.parameters < 64e6, `${s.parameters} parameters`);
    assert.deepEqual(s.inputs[0]?.shape, ['N', 3, 224, 224]);
    assertClose(await onnxForward(bytes, p, input, 1), ref, FP32_TOL, 'alexnet fp32');
  });
});
