/**
 * A small graph shaped like the ONNX model zoo's bvlcalexnet-12-int8 (Intel Neural Compressor,
 * "QOperator" format). Its operator set, as listed for that file: QuantizeLinear, QLinearConv,
 * DequantizeLinear, LRN, MaxPool, Reshape, QLinearMatMul, QLinearAdd and Softmax. So: no Relu
 * node (each ReLU is fused into the uint8 output range of the layer before it, zero point 0), LRN
 * runs in float between a DequantizeLinear and a QuantizeLinear, MaxPool and Reshape run on uint8,
 * every fc is a QLinearMatMul with [in, out] int8 weights plus a QLinearAdd bias (com.microsoft),
 * and fc8's uint8 output is dequantized before the Softmax `softmaxout_1`.
 * Input `data_0` [1, 3, 32, 32] with a baked-in batch of 1, like the zoo file.
 */
import type { INodeProto, ITensorProto } from '../../model/onnx/proto.js';
import { attr, DataType, encodeModel, floatTensor, int64Tensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { mulberry32 } from '../../training/network.js';

export const INT8_SIZE = 32;
export const INT8_HID = 16;

function typed(name: string, dims: number[], dataType: number, data: Int8Array | Uint8Array | Int32Array): ITensorProto {
  return { name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export interface Int8Options {
  classes?: number;
  seed?: number;
  /** Zero point of fc7's uint8 output (0 = ReLU fused, as the zoo file; > 0 = values below zero exist). */
  fc7ZeroPoint?: number;
  /** Also output fc7's uint8 values dequantized as `fc7_reference` and fc8's float scores as `fc8_reference`. */
  reference?: boolean;
}

export function zooInt8LikeAlexnet(opts: Int8Options = {}): Uint8Array {
  const classes = opts.classes ?? 1000;
  const rand = mulberry32(opts.seed ?? 5);
  const inits: ITensorProto[] = [];
  const nodes: INodeProto[] = [];
  const scalar = (name: string, scale: number, zp: number, zpType: number = DataType.UINT8): [string, string] => {
    inits.push(floatTensor(`${name}_scale`, [], Float32Array.of(scale)));
    inits.push(typed(`${name}_zero_point`, [], zpType, zpType === DataType.INT8 ? Int8Array.of(zp) : Uint8Array.of(zp)));
    return [`${name}_scale`, `${name}_zero_point`];
  };
  // int8 weights uniform in [-127, 127] (std ≈ 73.3), scaled to He's std √(2/fanIn).
  const weight = (name: string, dims: number[], fanIn: number): [string, string, string] => {
    const n = dims.reduce((a, b) => a * b, 1);
    inits.push(typed(name, dims, DataType.INT8, Int8Array.from({ length: n }, () => Math.round(rand() * 254) - 127)));
    const [s, z] = scalar(name, Math.sqrt(2 / fanIn) / 73.3, 0, DataType.INT8);
    return [name, s, z];
  };
  const bias = (name: string, n: number): string => {
    inits.push(typed(name, [n], DataType.INT32, Int32Array.from({ length: n }, () => Math.round((rand() - 0.5) * 200))));
    return name;
  };
  const act = (name: string, zp = 0): [string, string, string] => [name, ...scalar(name, 6 / 255, zp)];
  const lrn = [attr.int('size', 5), attr.float('alpha', 1e-4), attr.float('beta', 0.75), attr.float('bias', 1)];
  const pool = [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2])];

  const inQ = scalar('data_0_quantized', 8 / 255, 128);
  nodes.push(node('QuantizeLinear', ['data_0', ...inQ], ['data_0_quantized'], 'data_0_QuantizeLinear'));
  // conv1 3→4, 3×3/2 pad 1: 32 → 16; pool → 7. conv2 4→4 in two groups of 2: 7 → 7; pool → 3.
  const c1 = act('conv1_1_quantized');
  nodes.push(node('QLinearConv', ['data_0_quantized', ...inQ, ...weight('conv1_w_0_quantized', [4, 3, 3, 3], 27), c1[1], c1[2], bias('conv1_b_0_quantized', 4)], [c1[0]], 'conv1_quant', [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2]), attr.ints('pads', [1, 1, 1, 1])]));
  const floatLrnPool = (i: number, q: [string, string, string]): [string, string, string] => {
    const back = act(`norm${i}_1_quantized`);
    nodes.push(node('DequantizeLinear', q, [`conv${i}_2`], `conv${i}_DequantizeLinear`));
    nodes.push(node('LRN', [`conv${i}_2`], [`norm${i}_1`], `norm${i}`, lrn));
    nodes.push(node('QuantizeLinear', [`norm${i}_1`, back[1], back[2]], [back[0]], `norm${i}_QuantizeLinear`));
    // MaxPool on uint8 keeps the scale and zero point of its input.
    nodes.push(node('MaxPool', [back[0]], [`pool${i}_1_quantized`], `pool${i}`, pool));
    return [`pool${i}_1_quantized`, back[1], back[2]];
  };
  const p1 = floatLrnPool(1, c1);
  const c2 = act('conv2_1_quantized');
  nodes.push(node('QLinearConv', [...p1, ...weight('conv2_w_0_quantized', [4, 2, 3, 3], 18), c2[1], c2[2], bias('conv2_b_0_quantized', 4)], [c2[0]], 'conv2_quant', [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1]), attr.int('group', 2)]));
  const p2 = floatLrnPool(2, c2);
  inits.push(int64Tensor('OC2_DUMMY_1', [2], [1, 36]));
  nodes.push(node('Reshape', [p2[0], 'OC2_DUMMY_1'], ['OC2_DUMMY_0_quantized'], 'flatten'));
  let a: [string, string, string] = ['OC2_DUMMY_0_quantized', p2[1], p2[2]];
  let fin = 36;
  for (const [i, units] of [[6, INT8_HID], [7, INT8_HID], [8, classes]] as const) {
    const mm = act(`fc${i}_MatMul_quantized`, 128);
    nodes.push(node('QLinearMatMul', [...a, ...weight(`fc${i}_w_0_quantized`, [fin, units], fin), mm[1], mm[2]], [mm[0]], `fc${i}_MatMul_quant`));
    const b = `fc${i}_b_0_quantized`;
    inits.push(typed(b, [units], DataType.UINT8, Uint8Array.from({ length: units }, () => 118 + Math.round(rand() * 20))));
    const bq = scalar(b, 0.01, 128);
    // fc6/fc7: the ReLU lives in the output range (zero point 0); fc8 (the scores) is signed.
    const out = act(`fc${i}_1_quantized`, i === 8 ? 128 : i === 7 ? (opts.fc7ZeroPoint ?? 0) : 0);
    const addNode = node('QLinearAdd', [...mm, b, ...bq, out[1], out[2]], [out[0]], `fc${i}_Add_quant`);
    addNode.domain = 'com.microsoft';
    nodes.push(addNode);
    a = out;
    fin = units;
  }
  nodes.push(node('DequantizeLinear', a, ['fc8_1'], 'fc8_DequantizeLinear'));
  nodes.push(node('Softmax', ['fc8_1'], ['softmaxout_1'], 'prob', [attr.int('axis', 1)]));
  const outputs = [valueInfo('softmaxout_1', DataType.FLOAT, [1, classes])];
  if (opts.reference) {
    nodes.push(node('DequantizeLinear', ['fc7_1_quantized', 'fc7_1_quantized_scale', 'fc7_1_quantized_zero_point'], ['fc7_reference'], 'fc7_reference'));
    nodes.push(node('Identity', ['fc8_1'], ['fc8_reference'], 'fc8_reference'));
    outputs.push(valueInfo('fc7_reference', DataType.FLOAT, [1, INT8_HID]), valueInfo('fc8_reference', DataType.FLOAT, [1, classes]));
  }
  const model = modelProto({ name: 'bvlc_alexnet_int8', node: nodes, initializer: inits, input: [valueInfo('data_0', DataType.FLOAT, [1, 3, INT8_SIZE, INT8_SIZE])], output: outputs });
  model.opsetImport = [
    { domain: '', version: 12 },
    { domain: 'com.microsoft', version: 1 },
  ];
  return encodeModel(model);
}
