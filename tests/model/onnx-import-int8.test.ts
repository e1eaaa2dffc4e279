/**
 * importOnnx on an already-quantized graph shaped like the zoo's bvlcalexnet-12-int8 (QOperator:
 * QLinearConv, QLinearMatMul + QLinearAdd, no Relu node; see zoo-int8-like.ts): imported as it is,
 * served (logits, softmax, embedding), and refused by `sightline quantize` with a clear message.
 * References come from running the untouched graph with fc7 and fc8 exposed by the fixture itself.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { classifyImage, createSession } from '../../model/index.js';
import { DataType, decodeModel, encodeModel, floatTensor, importOnnxDetailed, inspectOnnx, node, OnnxError, planQuantization } from '../../model/onnx/index.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { tempDir } from '../../testing/models.js';
import { CF, S, caffeLike } from './import-graphs.js';
import { relativeError, runOrt } from './onnx-checker.js';
import { INT8_HID, INT8_SIZE, zooInt8LikeAlexnet } from './zoo-int8-like.js';

const labels = ['cat', 'dog', 'eagle', 'horse', 'person'];
const PER = 3 * INT8_SIZE * INT8_SIZE;
const FIXTURES = new URL('../fixtures/images/', import.meta.url).pathname;

function softmax(logits: Float32Array, k: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / k; r++) {
    const row = logits.subarray(r * k, (r + 1) * k);
    const max = Math.max(...row);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp((row[j] ?? 0) - max);
    for (let j = 0; j < k; j++) out[r * k + j] = Math.exp((row[j] ?? 0) - max) / sum;
  }
  return out;
}

describe('importOnnx on a QOperator int8 graph (zoo bvlcalexnet-12-int8 layout)', () => {
  const src = zooInt8LikeAlexnet({ classes: labels.length });
  const res = importOnnxDetailed(src, { preset: 'caffe', labels, name: 'bvlc-int8' });

  it('keeps the integer graph, drops the Softmax and dequantizes fc7 as the embedding', () => {
    assert.deepEqual(res.contract.io, { input: 'data_0', logits: 'fc8_1', embedding: 'fc7_1_quantized_dequantized' });
    assert.equal(res.contract.embeddingDim, INT8_HID);
    const before = inspectOnnx(src).ops;
    const after = inspectOnnx(res.bytes).ops;
    for (const op of ['QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'QuantizeLinear']) assert.equal(after[op], before[op], `${op} count changed`);
    assert.equal(after['DequantizeLinear'], (before['DequantizeLinear'] ?? 0) + 1);
    assert.equal(after['Softmax'], undefined);
    assert.ok(res.changes.some((c) => /already quantized \(.*2 QLinearConv.*3 QLinearMatMul/.test(c)), res.changes.join('\n'));
    assert.ok(res.changes.some((c) => c.includes("added DequantizeLinear 'fc7_1_quantized_dequantized'")), res.changes.join('\n'));
  });

  it('runs in onnxruntime with a symbolic batch: embedding and logits equal the untouched graph’s', async () => {
    const x = gaussianFill(new Float32Array(2 * PER), 1, mulberry32(3));
    const out = await runOrt(res.bytes, { data_0: { data: x, dims: [2, 3, INT8_SIZE, INT8_SIZE] } }, ['fc8_1', 'fc7_1_quantized_dequantized']);
    const ref = zooInt8LikeAlexnet({ classes: labels.length, reference: true });
    const emb = out['fc7_1_quantized_dequantized'] ?? new Float32Array();
    const logits = out['fc8_1'] ?? new Float32Array();
    for (let i = 0; i < 2; i++) {
      const r = await runOrt(ref, { data_0: { data: x.slice(i * PER, (i + 1) * PER), dims: [1, 3, INT8_SIZE, INT8_SIZE] } }, ['fc7_reference', 'fc8_reference', 'softmaxout_1']);
      const e = emb.subarray(i * INT8_HID, (i + 1) * INT8_HID);
      const l = logits.subarray(i * labels.length, (i + 1) * labels.length);
      assert.ok(relativeError(e, r['fc7_reference'] ?? []) < 1e-6, `image ${i}: embedding differs from fc7`);
      assert.ok(relativeError(l, r['fc8_reference'] ?? []) < 1e-6, `image ${i}: logits differ from fc8`);
      assert.ok(relativeError(softmax(l, labels.length), r['softmaxout_1'] ?? []) < 1e-5, `image ${i}: softmax of the logits differs from the original output`);
    }
    assert.ok(emb.every((v) => v >= 0) && emb.some((v) => v > 0), `embedding is not a ReLU output: ${String(emb)}`);
  });

  it('is served: a session loads it and classifies a photo with 10 crops', async () => {
    const dir = tempDir('sightline-int8-import-');
    try {
      const path = join(dir.path, 'bvlc-int8.onnx');
      writeFileSync(path, res.bytes);
      const session = await createSession(path, { threads: 1 });
      try {
        const c = await classifyImage(session, readFileSync(join(FIXTURES, 'dog.jpg')), { crops: 10, topk: 5, maxPixels: 1e8 });
        assert.equal(c.predictions.length, 5);
        assert.deepEqual(c.predictions.map((p) => p.label).sort(), [...labels].sort());
        const total = c.predictions.reduce((s, p) => s + p.probability, 0);
        assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
        assert.equal(c.embedding.length, INT8_HID);
      } finally {
        await session.close();
      }
    } finally {
      dir.cleanup();
    }
  });

  it('sightline quantize refuses it, naming the model and its integer operators', () => {
    assert.throws(() => planQuantization(res.bytes, "model 'bvlcalexnet-12-int8.onnx'"), (e: unknown) => e instanceof OnnxError && /^model 'bvlcalexnet-12-int8\.onnx' is already quantized \(\d+ .*QLinearConv.*QLinearMatMul.* node\(s\)\): quantize its fp32 original instead$/.test(e.message));
  });

  it('refuses an fc7 whose zero point allows negative values (no ReLU to expose)', () => {
    const signed = zooInt8LikeAlexnet({ classes: labels.length, fc7ZeroPoint: 128 });
    assert.throws(
      () => importOnnxDetailed(signed, { preset: 'caffe', labels }),
      (e: unknown) => e instanceof OnnxError && e.code === 'onnx_unsupported_graph' && /fc8 'fc8_MatMul_quant' reads 'fc7_1_quantized' quantized with zero point 128: it can hold values below zero/.test(e.message),
    );
  });
});

describe('importOnnx on a QDQ graph (zoo bvlcalexnet-12-qdq layout)', () => {
  it('finds fc7 as the Relu behind the QuantizeLinear/DequantizeLinear pair that fc8 reads', async () => {
    const model = decodeModel(caffeLike().bytes);
    const g = model.graph ?? {};
    const fc8 = (g.node ?? []).find((n) => (n.output ?? []).includes(CF.fc8));
    const data = fc8?.input?.[0] ?? '';
    assert.ok(fc8 && data);
    fc8.input = ['fc7_dq', ...(fc8.input ?? []).slice(1)];
    const at = (g.node ?? []).indexOf(fc8);
    g.node = [...(g.node ?? []).slice(0, at), node('QuantizeLinear', [data, 'fc7_s', 'fc7_zp'], ['fc7_q'], 'fc7_Q'), node('DequantizeLinear', ['fc7_q', 'fc7_s', 'fc7_zp'], ['fc7_dq'], 'fc7_DQ'), ...(g.node ?? []).slice(at)];
    g.initializer = [...(g.initializer ?? []), floatTensor('fc7_s', [], Float32Array.of(0.05)), { name: 'fc7_zp', dims: [], dataType: DataType.UINT8, rawData: Uint8Array.of(0) }];
    const res = importOnnxDetailed(encodeModel(model), { preset: 'caffe', labels });
    assert.equal(res.contract.io.embedding, CF.fc7);
    assert.ok(res.changes.some((c) => c.includes('the Relu behind fc8')), res.changes.join('\n'));
    const x = gaussianFill(new Float32Array(3 * S * S), 1, mulberry32(4));
    const out = await runOrt(res.bytes, { [CF.input]: { data: x, dims: [1, 3, S, S] } }, [CF.fc8, CF.fc7]);
    const ref = await runOrt(caffeLike([CF.fc7]).bytes, { [CF.input]: { data: x, dims: [1, 3, S, S] } }, [CF.fc7]);
    assert.ok(relativeError(out[CF.fc7] ?? [], ref[CF.fc7] ?? []) < 1e-6, 'embedding differs from the float fc7 ReLU');
  });
});
