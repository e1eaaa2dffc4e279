/**
 * What onnxruntime makes of our QDQ graph (model/onnx/quantize.ts), read back from the optimized
 * model it saves: every Conv and Gemm fused into QLinearConv / QGemm, no ReLU left on a Conv
 * output, no LRN node (the session's expansion, onnx/lrn.ts, channels-last here), every pool on
 * uint8 in NHWC, no Transpose between the first QLinearConv and the flatten before fc6, and one
 * DequantizeLinear per tensor.
 * The tiny AlexNet (LRN after conv1 and conv2, pools after conv1, conv2, conv5) with fixed ranges:
 * the values do not matter here, only the structure.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { nodesOf, producerOf } from '../../model/onnx/graph.js';
import { expandLrn } from '../../model/onnx/lrn.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { planQuantization, quantizeModel } from '../../model/onnx/quantize.js';
import { buildTinyModel } from './tiny-model.js';

describe('the QDQ graph as onnxruntime optimizes it (tiny AlexNet)', () => {
  const tiny = buildTinyModel();
  const dir = mkdtempSync(join(tmpdir(), 'sightline-qdq-'));
  after(() => {
    tiny.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs Conv/Gemm as QLinearConv/QGemm, the conv stack in NHWC, and dequantizes each tensor once', async () => {
    const src = readFileSync(tiny.path);
    const plan = planQuantization(src);
    const ranges = new Map(plan.observe.map((t) => [t, t === 'images' ? ([-2.5, 2.5] as const) : ([0, 4] as const)]));
    const q = quantizeModel(src, plan, { ranges, calibration: { set: 'test', images: 1, crops: 1, method: 'minmax' } });
    const bytes = expandLrn(q.bytes)?.bytes;
    assert.ok(bytes, 'the quantized graph still has its LRN nodes for the session to expand');
    const optimized = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized, logSeverityLevel: 3 });
    await session.release();

    const g = decodeModel(readFileSync(optimized)).graph ?? {};
    const ops = nodesOf(g).map((n) => n.opType ?? '');
    const count = (op: string): number => ops.filter((o) => o === op).length;
    assert.equal(count('QLinearConv'), 5, ops.join(' '));
    assert.equal(count('QGemm'), 3, ops.join(' '));
    assert.equal(count('LRN'), 0);
    // The only Relus left: the two single readers of the LRN inputs and fc6/fc7's (float QGemm outputs).
    assert.ok(count('Relu') <= 4, ops.join(' '));
    assert.equal(count('NhwcMaxPool'), 3, ops.join(' '));
    for (const pool of nodesOf(g).filter((n) => n.opType === 'MaxPool')) {
      const p = producerOf(g, pool.input?.[0] ?? '');
      assert.notEqual(p?.opType, 'QuantizeLinear', `MaxPool '${pool.name}' runs on uint8 in NCHW: ${ops.join(' ')}`);
    }
    const stack = ops.slice(ops.indexOf('QLinearConv'), ops.indexOf('Flatten'));
    assert.ok(stack.filter((o) => o === 'Transpose').length <= 1, `layout changes inside the conv stack: ${ops.join(' ')}`);
    const dqInputs = nodesOf(g).filter((n) => n.opType === 'DequantizeLinear').map((n) => n.input?.[0] ?? '');
    assert.equal(new Set(dqInputs).size, dqInputs.length, `a tensor is dequantized more than once: ${dqInputs.join(', ')}`);
  });
});
