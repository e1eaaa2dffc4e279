/**
 * Small graphs that mimic real third-party AlexNet exports, for the importer's tests
 * (tests/model/onnx-import.test.ts) and the ONNX checker (tests/system/onnx-checker.test.ts):
 * torchvision's alexnet through torch.onnx.export and the model zoo's Caffe bvlcalexnet.
 */
import type { INodeProto, ITensorProto, IValueInfoProto } from '../../model/onnx/proto.js';
import { attr, DataType, encodeModel, floatTensor, int64Tensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';

export const S = 32;
export const K = 5;
export const HID = 16;

export interface Built {
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

export const TV = { input: 'input.1', fc7: '/classifier/classifier.5/Relu_output_0', out: 'output' };

/** torchvision-like: symbolic batch 'batch_size', AveragePool (adaptive 3→3), Flatten, Dropout. */
export function torchvisionLike(extraOutputs: string[] = []): { bytes: Uint8Array; fc8: Built['fc8'] } {
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

export const CF = { input: 'data_0', fc7: 'fc7_2', fc8: 'fc8_1', out: 'softmaxout_1' };

/** caffe-like (model zoo bvlcalexnet): fixed batch 1, LRN, Reshape to [1, 54], Softmax, weights also listed as inputs. */
export function caffeLike(extraOutputs: string[] = []): { bytes: Uint8Array; fc8: Built['fc8'] } {
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
