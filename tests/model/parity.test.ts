/**
 * Parity: the tfjs forward pass (training/network.ts, wasm backend) and onnxruntime running our
 * exported ONNX must agree on logits and embedding for both presets, from the same He-init weights.
 * Error metric: relativeError() in onnx-checker.ts = max|a − b| / max(max|reference|, 1e-6).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { Preset } from '../../model/architecture.js';
import { alexnetPreset, getPreset, parameterCount, smallPreset } from '../../model/architecture.js';
import { exportOnnx, fromFloat16Array, inspectOnnx, toFloat16Array } from '../../model/onnx/index.js';
import type { ExportContract } from '../../model/onnx/index.js';
import { decodeModel, getAttr, toNumber } from '../../model/onnx/proto.js';
import type { NamedWeights } from '../../model/weights.js';
import { useBackend } from '../../training/backend.js';
import { forward, gaussianFill, initWeights, mulberry32, paramsFromWeights } from '../../training/network.js';
import { relativeError, runOrt } from './onnx-checker.js';
import { groupedTinyPreset, tinyPreset } from './tiny-model.js';

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

/** Dense HWIO kernels equal to grouped ones: filter o of group g keeps its weights on g's input slice, zeros elsewhere. */
function blockDiagonal(weights: NamedWeights, p: Preset): NamedWeights {
  const out: NamedWeights = new Map(weights);
  for (const layer of p.layers) {
    const lw = weights.get(layer.name);
    if (layer.kind !== 'conv' || (layer.groups ?? 1) === 1 || !lw) continue;
    const [kh = 0, kw = 0, cg = 0, cout = 0] = lw.wShape;
    const g = layer.groups ?? 1;
    const cin = cg * g;
    const w = new Float32Array(kh * kw * cin * cout);
    for (let s = 0; s < kh * kw; s++)
      for (let i = 0; i < cg; i++)
        for (let o = 0; o < cout; o++) {
          const group = Math.floor(o / (cout / g));
          w[(s * cin + group * cg + i) * cout + o] = lw.w[(s * cg + i) * cout + o] ?? 0;
        }
    out.set(layer.name, { w, wShape: [kh, kw, cin, cout], b: lw.b });
  }
  return out;
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

  it('grouped convolutions (two towers) match at batch 3 and differ from the dense net', async () => {
    const p = groupedTinyPreset;
    const weights = initWeights(p, 'he', 5);
    assert.deepEqual(weights.get('conv2')?.wShape, [3, 3, 4, 8], 'grouped HWIO kernel sees cin / 2 channels');
    assert.deepEqual(weights.get('conv3')?.wShape, [3, 3, 8, 8], 'conv3 stays dense');
    const input = randomInput(p, 3, 9);
    const ref = await tfjsForward(p, weights, input, 3);
    assert.ok(ref.embedding.some((v) => v > 0), 'embedding is not all zeros');
    const bytes = exportOnnx(p, weights, contractFor(p));
    const groups = Object.fromEntries(
      (decodeModel(bytes).graph?.node ?? []).filter((n) => n.opType === 'Conv').map((n) => [n.name, toNumber(getAttr(n, 'group')?.i ?? 1)]),
    );
    assert.deepEqual(groups, { conv1: 1, conv2: 2, conv3: 1, conv4: 2, conv5: 2 });
    assertClose(await onnxForward(bytes, p, input, 3), ref, FP32_TOL, 'grouped fp32');

    // The same weights with the off-tower blocks filled in as zeros make a dense net computing the same.
    const dense = blockDiagonal(weights, p);
    const denseRef = await tfjsForward(tinyPreset, dense, input, 3);
    assertClose(denseRef, ref, FP32_TOL, 'grouped vs block-diagonal dense');
  });

  it('full alexnet (3×224×224, 1000 classes, two towers) matches at batch 1', async () => {
    const p = alexnetPreset();
    assert.equal(parameterCount(p), 60_965_224, "the paper's parameter count");
    assert.equal(parameterCount(getPreset('alexnet-dense')), 62_378_344, 'single-tower alexnet-dense');
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
