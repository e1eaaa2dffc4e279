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
import type { INodeProto, ITensorProto, IValueInfoProto } from '../../model/onnx/proto.js';
import { attr, DataType, decodeModel, encodeModel, floatTensor, int64Tensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { checkModels, relativeError, runOrt } from './onnx-checker.js';

const S = 32;
const K = 5;
const HID = 16;

interface Built {
  inits: ITensorProto[];
  nodes: INodeProto[];
  fc8: { w: Float32Array; b: Float32Array };
}

/**
 * Conv(3→4, 3×3/2 p1) → Relu → [LRN] → MaxPool → Conv(4→6) → Relu → [LRN] → MaxPool: 32 → 16 → 7 → 7 → 3; 6·3·3 = 54 features.
 * With LRN (the caffe/zoo layout) the second Conv is grouped (group 2), as the zoo's conv2/4/5 are.
 */
function features(names: (i: number) => string, input: string, lrn: boolean, seed: number): { inits: ITensorProto[]; nodes: INodeProto[]; out: string } {
  const rand = mulberry32(seed);
  const inits: ITensorProto[] = [];
  const nodes: INodeProto[] = [];
  let x = input;
  let cin = 3;
  let k = 0;
  for (const [cout, stride, group] of [[4, 2, 1], [6, 1, lrn ? 2 : 1]] as const) {
    const w = names(k++);
    const b = names(k++);
    const cg = cin / group;
    inits.push(floatTensor(w, [cout, cg, 3, 3], gaussianFill(new Float32Array(cout * cg * 9), Math.sqrt(2 / (cg * 9)), rand)));
    inits.push(floatTensor(b, [cout], gaussianFill(new Float32Array(cout), 0.1, rand)));
    const conv = names(k++);
    const attrs = [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [stride, stride]), attr.ints('pads', [1, 1, 1, 1])];
    nodes.push(node('Conv', [x, w, b], [conv], `Conv_${k}`, group === 1 ? attrs : [...attrs, attr.int('group', group)]));
    x = names(k++);
    nodes.push(node('Relu', [conv], [x], `Relu_${k}`));
    if (lrn) {
      const n = names(k++);
      nodes.push(node('LRN', [x], [n], `LRN_${k}`, [attr.int('size', 5), attr.float('alpha', 1e-4), attr.float('beta', 0.75), attr.float('bias', 1)]));
      x = n;
    }
    const pool = names(k++);
    nodes.push(node('MaxPool', [x], [pool], `MaxPool_${k}`, [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2])]));
    x = pool;
    cin = cout;
  }
  return { inits, nodes, out: x };
}

/** fc6 → Relu → Dropout → fc7 → Relu(`fc7Relu`) → Dropout → fc8, all Gemm with transB=1 (PyTorch/Caffe2 layout [out, in]). */
function classifier(names: (i: number) => string, input: string, fc7Relu: string, fc8Out: string, seed: number): Built {
  const rand = mulberry32(seed);
  const inits: ITensorProto[] = [];
  const nodes: INodeProto[] = [];
  let x = input;
  let fin = 54;
  let fc8: Built['fc8'] = { w: new Float32Array(), b: new Float32Array() };
  const layers = [[HID, true], [HID, true], [K, false]] as const;
  layers.forEach(([units, hidden], li) => {
    const w = gaussianFill(new Float32Array(units * fin), Math.sqrt(2 / fin), rand);
    const b = gaussianFill(new Float32Array(units), 0.1, rand);
    const wn = names(100 + li * 10);
    const bn = names(101 + li * 10);
    inits.push(floatTensor(wn, [units, fin], w), floatTensor(bn, [units], b));
    const out = hidden ? names(102 + li * 10) : fc8Out;
    nodes.push(node('Gemm', [x, wn, bn], [out], `Gemm_${li}`, [attr.float('alpha', 1), attr.float('beta', 1), attr.int('transB', 1)]));
    x = out;
    if (hidden) {
      const relu = li === 1 ? fc7Relu : names(103 + li * 10);
      nodes.push(node('Relu', [out], [relu], `Relu_fc${li + 6}`));
      x = names(104 + li * 10);
      nodes.push(node('Dropout', [relu], li === 0 ? [x, names(105)] : [x], `Dropout_${li}`));
    }
    if (!hidden) fc8 = { w, b };
    fin = units;
  });
  return { inits, nodes, fc8 };
}

/** Exporters often leave output shapes unset; a rank-0 shape would claim a scalar. */
function unshaped(name: string): IValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT } } };
}

const TV = { input: 'input.1', fc7: '/classifier/classifier.5/Relu_output_0', out: 'output' };

/** torchvision-like: symbolic batch 'batch_size', AveragePool (adaptive 3→3), Flatten, Dropout. */
function torchvisionLike(extraOutputs: string[] = []): { bytes: Uint8Array; fc8: Built['fc8'] } {
  const names = (i: number): string => `onnx::Node_${i}`;
  const f = features((i) => (i % 4 === 0 ? `features.${i}.weight` : names(i)), TV.input, false, 1);
  const nodes = [...f.nodes, node('AveragePool', [f.out], ['/avgpool/AveragePool_output_0'], 'AveragePool_9', [attr.ints('kernel_shape', [1, 1]), attr.ints('strides', [1, 1])])];
  nodes.push(node('Flatten', ['/avgpool/AveragePool_output_0'], ['/Flatten_output_0'], 'Flatten_10', [attr.int('axis', 1)]));
  const c = classifier(names, '/Flatten_output_0', TV.fc7, TV.out, 2);
  const graph = {
    name: 'main_graph',
    node: [...nodes, ...c.nodes],
    initializer: [...f.inits, ...c.inits],
    input: [valueInfo(TV.input, DataType.FLOAT, ['batch_size', 3, S, S])],
    output: [TV.out, ...extraOutputs].map(unshaped),
  };
  return { bytes: encodeModel({ ...modelProto(graph), producerName: 'pytorch', producerVersion: '2.1.0' }), fc8: c.fc8 };
}

const CF = { input: 'data_0', fc7: 'fc7_2', fc8: 'fc8_1', out: 'softmaxout_1' };

/** caffe-like (model zoo bvlcalexnet): fixed batch 1, LRN, Reshape to [1, 54], Softmax, weights also listed as inputs. */
function caffeLike(extraOutputs: string[] = []): { bytes: Uint8Array; fc8: Built['fc8'] } {
  const names = (i: number): string => `blob_${i}_1`;
  const f = features(names, CF.input, true, 3);
  const nodes = [...f.nodes, node('Reshape', [f.out, 'OC2_DUMMY_1'], ['OC2_DUMMY_0'], 'Reshape_0')];
  const c = classifier(names, 'OC2_DUMMY_0', CF.fc7, CF.fc8, 4);
  nodes.push(...c.nodes, node('Softmax', [CF.fc8], [CF.out], 'Softmax_0', [attr.int('axis', 1)]));
  const inits = [...f.inits, ...c.inits, int64Tensor('OC2_DUMMY_1', [2], [1, 54])];
  const graph = {
    name: 'bvlc_alexnet',
    node: nodes,
    initializer: inits,
    input: [valueInfo(CF.input, DataType.FLOAT, [1, 3, S, S]), ...inits.map((t) => valueInfo(t.name ?? '', t.dataType ?? 0, (t.dims ?? []).map(Number)))],
    output: [CF.out, ...extraOutputs].map(unshaped),
  };
  return { bytes: encodeModel(modelProto(graph)), fc8: c.fc8 };
}

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
    assert.deepEqual(c.preprocess, { inputSize: 32, resizeSize: 37, channels: 'bgr', scale: 1, mean: [104, 117, 123], std: [1, 1, 1], background: [255, 255, 255] });
  });

  it('imported graphs pass onnx.checker full_check', () => {
    const results = checkModels([importOnnx(torchvisionLike().bytes, { preset: 'torchvision', labels }), importOnnx(caffeLike().bytes, { preset: 'caffe', labels })]);
    for (const r of results) assert.ok(r.ok, r.output);
  });

  it('rejects a label count that does not match the classifier and a preset it does not know', () => {
    const src = torchvisionLike().bytes;
    assert.throws(() => importOnnx(src, { preset: 'torchvision', labels: ['a', 'b'] }), (e: unknown) => e instanceof OnnxError && e.status === 400 && /'labels' has 2 entries .* 5 classes/.test(e.message));
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
