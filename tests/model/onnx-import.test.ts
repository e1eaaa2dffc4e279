/**
 * importOnnx on small graphs that mimic real third-party exports: torchvision's alexnet through
 * torch.onnx.export (odd tensor names, Dropout, AveragePool, Flatten, Gemm transB=1) and the model
 * zoo's Caffe bvlcalexnet (data_0, LRN, Reshape with a baked-in batch of 1, Softmax softmaxout_1).
 * The reference fc7/fc8 values come from running the ORIGINAL graph built with those tensors as
 * extra outputs, so the importer's graph surgery is checked against a graph it never touched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importOnnx, importOnnxDetailed, inspectOnnx, OnnxError, readContract } from '../../model/onnx/index.js';
import { attr, DataType, decodeModel, encodeModel, floatTensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { CF, HID, K, S, TV, caffeLike, torchvisionLike } from './import-graphs.js';
import type { Built } from './import-graphs.js';
import { relativeError, runOrt } from './onnx-checker.js';

function images(batch: number, seed: number): Float32Array {
  return gaussianFill(new Float32Array(batch * 3 * S * S), 1, mulberry32(seed));
}

/** Reference fc7/fc8 per image from the untouched graph (batch 1, since the caffe one is fixed). */
async function reference(bytes: Uint8Array, input: string, outs: [string, string], x: Float32Array, batch: number): Promise<[Float32Array, Float32Array]> {
  const per = 3 * S * S;
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < batch; i++) {
    const r = await runOrt(bytes, { [input]: { data: x.slice(i * per, (i + 1) * per), dims: [1, 3, S, S] } }, outs);
    a.push(...(r[outs[0]] ?? []));
    b.push(...(r[outs[1]] ?? []));
  }
  return [Float32Array.from(a), Float32Array.from(b)];
}

/** logits = embedding · Wᵀ + b with fc8's [out, in] weights: fc8 really reads the embedding we expose. */
function fc8ByHand(emb: Float32Array, fc8: Built['fc8'], batch: number): Float32Array {
  const out = new Float32Array(batch * K);
  for (let n = 0; n < batch; n++)
    for (let k = 0; k < K; k++) {
      let s = fc8.b[k] ?? 0;
      for (let j = 0; j < HID; j++) s += (emb[n * HID + j] ?? 0) * (fc8.w[k * HID + j] ?? 0);
      out[n * K + k] = s;
    }
  return out;
}

const labels = ['cat', 'dog', 'eagle', 'horse', 'person'];

describe('importOnnx', () => {
  it('torchvision layout: exposes fc7-after-ReLU and logits under their own names', async () => {
    const src = torchvisionLike();
    const res = importOnnxDetailed(src.bytes, { preset: 'torchvision', labels });
    assert.deepEqual(res.contract.io, { input: TV.input, logits: TV.out, embedding: TV.fc7 });
    const s = inspectOnnx(res.bytes);
    assert.equal(s.ops['Dropout'], undefined);
    assert.deepEqual(s.outputs.map((o) => [o.name, o.shape]), [[TV.out, ['batch_size', K]], [TV.fc7, ['batch_size', HID]]]);

    const x = images(2, 9);
    const out = await runOrt(res.bytes, { [TV.input]: { data: x, dims: [2, 3, S, S] } }, [TV.out, TV.fc7]);
    const [refEmb, refLogits] = await reference(torchvisionLike([TV.fc7]).bytes, TV.input, [TV.fc7, TV.out], x, 2);
    const emb = out[TV.fc7] ?? new Float32Array();
    assert.ok(relativeError(emb, refEmb) < 1e-6, 'embedding differs from the original fc7 ReLU');
    assert.ok(relativeError(out[TV.out] ?? [], refLogits) < 1e-6, 'logits differ');
    assert.ok(relativeError(out[TV.out] ?? [], fc8ByHand(emb, src.fc8, 2)) < 1e-5, 'fc8(embedding) ≠ logits');
    assert.ok(emb.every((v) => v >= 0) && emb.some((v) => v > 0), 'embedding is not a ReLU output');

    const c = await readContract(res.bytes);
    assert.deepEqual(c.preprocess, { inputSize: 32, resizeSize: 37, channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], background: [255, 255, 255] });
    assert.equal(c.source, 'import:torchvision');
    assert.equal(c.embeddingDim, HID);
    assert.deepEqual(c.labels, labels);
  });

  it('caffe layout: drops the Softmax, makes the batch symbolic, BGR mean contract', async () => {
    const src = caffeLike();
    const res = importOnnxDetailed(src.bytes, { preset: 'caffe', labels, name: 'bvlc' });
    assert.deepEqual(res.contract.io, { input: CF.input, logits: CF.fc8, embedding: CF.fc7 });
    assert.ok(res.changes.some((c) => c.includes('Softmax')), res.changes.join('\n'));
    const s = inspectOnnx(res.bytes);
    assert.equal(s.ops['Softmax'], undefined);
    assert.deepEqual(s.inputs.map((i) => [i.name, i.shape]), [[CF.input, ['N', 3, S, S]]]);
    assert.equal(decodeModel(res.bytes).graph?.input?.length, 1, 'weights are still listed as graph inputs');
    const groups = (decodeModel(res.bytes).graph?.node ?? []).filter((n) => n.opType === 'Conv').map((n) => Number(n.attribute?.find((a) => a.name === 'group')?.i ?? 1));
    assert.deepEqual(groups, [1, 2], 'the grouped Conv keeps group 2');

    const x = images(2, 10);
    const out = await runOrt(res.bytes, { [CF.input]: { data: x, dims: [2, 3, S, S] } }, [CF.fc8, CF.fc7]);
    const [refEmb, refLogits] = await reference(caffeLike([CF.fc7, CF.fc8]).bytes, CF.input, [CF.fc7, CF.fc8], x, 2);
    const emb = out[CF.fc7] ?? new Float32Array();
    assert.ok(relativeError(emb, refEmb) < 1e-6, 'embedding differs from the original fc7 ReLU');
    assert.ok(relativeError(out[CF.fc8] ?? [], refLogits) < 1e-6, 'logits differ from the pre-softmax fc8');
    assert.ok(relativeError(out[CF.fc8] ?? [], fc8ByHand(emb, src.fc8, 2)) < 1e-5, 'fc8(embedding) ≠ logits');

    const c = await readContract(res.bytes);
    assert.equal(c.name, 'bvlc');
    assert.deepEqual(c.preprocess, { inputSize: 32, resizeSize: 37, channels: 'bgr', scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], background: [255, 255, 255] });
  });

  it('rejects a label count that does not match the classifier and a preset it does not know', () => {
    const src = torchvisionLike().bytes;
    assert.throws(() => importOnnx(src, { preset: 'torchvision', labels: ['a', 'b'] }), (e: unknown) => e instanceof OnnxError && e.kind === 'invalid_argument' && /'labels' has 2 entries .* 5 classes/.test(e.message));
    assert.throws(() => importOnnx(src, { preset: 'keras' as 'caffe', labels }), (e: unknown) => e instanceof OnnxError && /'preset' must be one of torchvision, caffe, got 'keras'/.test(e.message));
  });

  it('refuses a graph whose last Gemm does not read a ReLU', () => {
    const g = {
      name: 'linear',
      node: [node('Flatten', ['x'], ['f'], 'flat', [attr.int('axis', 1)]), node('Gemm', ['f', 'w', 'b'], ['y'], 'fc', [attr.int('transB', 1)])],
      initializer: [floatTensor('w', [K, 12], new Float32Array(K * 12)), floatTensor('b', [K], new Float32Array(K))],
      input: [valueInfo('x', DataType.FLOAT, [1, 3, 2, 2])],
      output: [valueInfo('y', DataType.FLOAT, [1, K])],
    };
    assert.throws(() => importOnnx(encodeModel(modelProto(g)), { preset: 'torchvision', labels }), (e: unknown) => e instanceof OnnxError && e.code === 'onnx_unsupported_graph' && /'f'.*Flatten.*expected a Relu/.test(e.message));
  });
});
