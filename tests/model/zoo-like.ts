/**
 * A small graph shaped like the ONNX model zoo's bvlcalexnet-12: input `data_0` with a fixed batch
 * of 1, conv1 → ReLU → LRN → MaxPool, a two-tower grouped conv2 (group 2) → ReLU → LRN → MaxPool,
 * Reshape to [1, F] with the batch baked in, fc6/fc7 Gemm → ReLU → Dropout, fc8 Gemm, and a final
 * Softmax `softmaxout_1`. Weights are seeded; 1,000 classes by default, like ImageNet.
 */
import type { INodeProto, ITensorProto } from '../../model/onnx/proto.js';
import { attr, DataType, encodeModel, floatTensor, int64Tensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';

export const ZOO_SIZE = 32;
const HID = 16;

export function zooLikeAlexnet(numClasses = 1000, seed = 5): Uint8Array {
  const rand = mulberry32(seed);
  const inits: ITensorProto[] = [];
  const nodes: INodeProto[] = [];
  const weight = (name: string, dims: number[], fanIn: number): string => {
    const n = dims.reduce((a, b) => a * b, 1);
    inits.push(floatTensor(name, dims, gaussianFill(new Float32Array(n), Math.sqrt(2 / fanIn), rand)));
    return name;
  };
  const lrn = [attr.int('size', 5), attr.float('alpha', 1e-4), attr.float('beta', 0.75), attr.float('bias', 1)];
  const pool = [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2])];
  // conv1 3→4, 3×3/2 pad 1: 32 → 16; pool → 7. conv2 4→4 in two groups of 2: 7 → 7; pool → 3.
  nodes.push(node('Conv', ['data_0', weight('conv1_w_0', [4, 3, 3, 3], 27), weight('conv1_b_0', [4], 27)], ['conv1_1'], 'conv1', [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2]), attr.ints('pads', [1, 1, 1, 1])]));
  nodes.push(node('Relu', ['conv1_1'], ['conv1_2'], 'relu1'), node('LRN', ['conv1_2'], ['norm1_1'], 'norm1', lrn), node('MaxPool', ['norm1_1'], ['pool1_1'], 'pool1', pool));
  nodes.push(node('Conv', ['pool1_1', weight('conv2_w_0', [4, 2, 3, 3], 18), weight('conv2_b_0', [4], 18)], ['conv2_1'], 'conv2', [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1]), attr.int('group', 2)]));
  nodes.push(node('Relu', ['conv2_1'], ['conv2_2'], 'relu2'), node('LRN', ['conv2_2'], ['norm2_1'], 'norm2', lrn), node('MaxPool', ['norm2_1'], ['pool2_1'], 'pool2', pool));
  inits.push(int64Tensor('OC2_DUMMY_1', [2], [1, 36]));
  nodes.push(node('Reshape', ['pool2_1', 'OC2_DUMMY_1'], ['OC2_DUMMY_0'], 'flatten'));
  let x = 'OC2_DUMMY_0';
  let fin = 36;
  for (const [i, units] of [[6, HID], [7, HID], [8, numClasses]] as const) {
    const out = `fc${i}_1`;
    nodes.push(node('Gemm', [x, weight(`fc${i}_w_0`, [units, fin], fin), weight(`fc${i}_b_0`, [units], fin)], [out], `fc${i}`, [attr.int('transB', 1)]));
    fin = units;
    if (i === 8) break;
    nodes.push(node('Relu', [out], [`fc${i}_2`], `relu${i}`), node('Dropout', [`fc${i}_2`], [`fc${i}_3`, `_fc${i}_mask`], `drop${i}`, [attr.float('ratio', 0.5)]));
    x = `fc${i}_3`;
  }
  nodes.push(node('Softmax', ['fc8_1'], ['softmaxout_1'], 'prob', [attr.int('axis', 1)]));
  const graph = {
    name: 'bvlc_alexnet',
    node: nodes,
    initializer: inits,
    input: [valueInfo('data_0', DataType.FLOAT, [1, 3, ZOO_SIZE, ZOO_SIZE])],
    output: [valueInfo('softmaxout_1', DataType.FLOAT, [1, numClasses])],
  };
  return encodeModel(modelProto(graph));
}
