/**
 * The dense head of an imported-style graph (torchvision's Gemm with transB = 1, and MatMul + Add as
 * other exporters write Linear): read in tfjs layout [in, out], and replaced by a new last layer of
 * another width; onnxruntime then computes relu(x·W1 + b1)·W2' + b2' with the new weights, the
 * untouched layer's initializer keeps its bytes and the logits output declares the new width.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTRACT_VERSION, type ModelContract } from '../../model/contract.js';
import { readContract, readDenseHead, replaceDenseLayers } from '../../model/onnx/index.js';
import { attr, DataType, decodeModel, encodeModel, floatTensor, modelProto, node, valueInfo, valueInfoDims } from '../../model/onnx/proto.js';
import { relativeError, runOrt } from './onnx-checker.js';

const IN = 4;
const HID = 5;
const seq = (n: number, k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + 0.3));

/** x [N,4] → dense 4→5 → Relu ('feat') → dense 5→3 ('out'); torchvision (Gemm, transB=1) or MatMul + Add form. */
function graph(form: 'gemm' | 'matmul'): Uint8Array {
  const w1 = seq(HID * IN, 0.7); // stored [out, in] for transB=1, [in, out] for MatMul
  const w2 = seq(3 * HID, 1.3);
  const nodes = form === 'gemm'
    ? [
        node('Gemm', ['x', 'w1', 'b1'], ['h'], 'fc1', [attr.int('transB', 1)]),
        node('Relu', ['h'], ['feat'], 'relu'),
        node('Gemm', ['feat', 'w2', 'b2'], ['out'], 'fc2', [attr.int('transB', 1)]),
      ]
    : [
        node('MatMul', ['x', 'w1'], ['m1'], 'mm1'),
        node('Add', ['m1', 'b1'], ['h'], 'add1'),
        node('Relu', ['h'], ['feat'], 'relu'),
        node('MatMul', ['feat', 'w2'], ['m2'], 'mm2'),
        node('Add', ['m2', 'b2'], ['out'], 'add2'),
      ];
  const dims1 = form === 'gemm' ? [HID, IN] : [IN, HID];
  const dims2 = form === 'gemm' ? [3, HID] : [HID, 3];
  return encodeModel(modelProto({
    name: 'head', node: nodes,
    initializer: [floatTensor('w1', dims1, w1), floatTensor('b1', [HID], seq(HID, 2.1)), floatTensor('w2', dims2, w2), floatTensor('b2', [3], seq(3, 3.7))],
    input: [valueInfo('x', DataType.FLOAT, ['N', IN])],
    output: [valueInfo('out', DataType.FLOAT, ['N', 3]), valueInfo('feat', DataType.FLOAT, ['N', HID])],
  }));
}

const contract: ModelContract = {
  version: CONTRACT_VERSION, name: 'tuned', modelVersion: '1', preset: 'alexnet', labels: ['a', 'b'],
  preprocess: { inputSize: 8, resizeSize: 9, channels: 'rgb', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2], background: [255, 255, 255] },
  io: { input: 'x', logits: 'out', embedding: 'feat' }, embeddingDim: HID, metrics: {}, source: 'finetune:head',
};

/** relu(x·W + b) in plain JS, W [in, out]. */
function dense(x: Float32Array, rows: number, w: Float32Array, b: Float32Array, fin: number, units: number, relu: boolean): Float32Array {
  const out = new Float32Array(rows * units);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < units; o++) {
      let s = b[o] as number;
      for (let i = 0; i < fin; i++) s += (x[r * fin + i] as number) * (w[i * units + o] as number);
      out[r * units + o] = relu ? Math.max(0, s) : s;
    }
  }
  return out;
}

describe('dense head of imported-style graphs', () => {
  for (const form of ['gemm', 'matmul'] as const) {
    it(`${form}: reads [in, out] weights, replaces the last layer with a narrower one that onnxruntime runs`, async () => {
      const src = graph(form);
      const head = readDenseHead(src);
      assert.deepEqual(head.layers.map((l) => [l.name, l.input, l.weights.wShape]), [['fc7', 'x', [IN, HID]], ['fc8', 'feat', [HID, 3]]]);
      const x = seq(2 * IN, 0.9);
      const before = await runOrt(src, { x: { data: x, dims: [2, IN] } }, ['out']);
      const l7 = head.layers[0]?.weights;
      const l8 = head.layers[1]?.weights;
      assert.ok(l7 && l8);
      const feat = dense(x, 2, l7.w, l7.b, IN, HID, true);
      assert.ok(relativeError(before['out'] as Float32Array, dense(feat, 2, l8.w, l8.b, HID, 3, false)) < 1e-6, 'the read weights compute what the graph computes');

      const fc8 = { w: seq(HID * 2, 0.4), wShape: [HID, 2], b: Float32Array.of(0.1, -0.2) };
      const tuned = replaceDenseLayers(src, new Map([['fc8', fc8]]), contract);
      const after = await runOrt(tuned, { x: { data: x, dims: [2, IN] } }, ['out', 'feat']);
      assert.ok(relativeError(after['out'] as Float32Array, dense(feat, 2, fc8.w, fc8.b, HID, 2, false)) < 1e-6);
      assert.ok(relativeError(after['feat'] as Float32Array, feat) < 1e-6);
      const g = decodeModel(tuned).graph;
      const w1 = (g?.initializer ?? []).find((t) => t.name === 'w1');
      const orig = (decodeModel(src).graph?.initializer ?? []).find((t) => t.name === 'w1');
      assert.ok(w1 && orig && Buffer.from(w1.rawData ?? []).equals(Buffer.from(orig.rawData ?? [])), 'the frozen layer keeps its bytes');
      assert.ok(!(g?.initializer ?? []).some((t) => t.name === 'w2'), 'the old last layer is gone');
      assert.deepEqual(valueInfoDims((g?.output ?? [])[0] ?? {}), ['N', 2]);
      assert.deepEqual((await readContract(tuned)).labels, ['a', 'b']);
    });
  }
});
