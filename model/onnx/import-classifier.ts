/**
 * Finds fc8 (the classifier) and fc7-after-ReLU (the embedding) in an imported graph, float or
 * already quantized. Quantized graphs come in two formats: QDQ (float Gemm/MatMul reading
 * DequantizeLinear outputs, e.g. the zoo's bvlcalexnet-12-qdq) and QOperator (integer operators:
 * QLinearMatMul + QLinearAdd, QGemm, MatMulInteger, e.g. the zoo's bvlcalexnet-12-int8, where each
 * ReLU is fused into the uint8 output range of the layer before it and no Relu node is left).
 * The graph is run as it is; only a DequantizeLinear is added when fc7 exists in uint8/int8 alone.
 */
import { OnnxError } from './errors.js';
import { constantTensor, nodesOf, producerOf } from './graph.js';
import type { IGraphProto, INodeProto, ITensorProto } from './proto.js';
import { DataType, intAttr, node, tensorDims } from './proto.js';

/** Fully connected operators, with the input index of their weight. */
const FC_WEIGHT_INPUT: Readonly<Record<string, number>> = { Gemm: 1, MatMul: 1, MatMulInteger: 1, QLinearMatMul: 3, QGemm: 3 };
/** Of those, the ones that read a quantized activation (uint8/int8) directly. */
const INTEGER_FC = new Set(['MatMulInteger', 'QLinearMatMul', 'QGemm']);
/** Nodes between fc8 and the logits that keep the scores' meaning (bias adds, (de)quantization, copies). */
const SCORE_PASSTHROUGH = new Set(['Add', 'QLinearAdd', 'DequantizeLinear', 'QuantizeLinear', 'Identity', 'Cast']);

export interface Classifier {
  /** fc8: the last fully connected node. */
  node: INodeProto;
  /** fc7 after ReLU, float: fc8's data input, or a DequantizeLinear added on it (see `added`). */
  embedding: string;
  embeddingDim: number;
  numClasses: number;
  /** Nodes the importer must append to expose the embedding in float (quantized graphs only). */
  added: INodeProto[];
  /** What was found or added, for the import's list of changes. */
  notes: string[];
}

function unsupported(msg: string): OnnxError {
  return new OnnxError('onnx_unsupported_graph', msg);
}

const label = (n: INodeProto): string => n.name || (n.output?.[0] ?? '?');

/** A zero point's single value (0 when absent, as ONNX specifies); undefined when it is not a constant scalar. */
function zeroPoint(g: IGraphProto, name: string | undefined): { value: number; type: number } | undefined {
  if (!name) return { value: 0, type: DataType.UINT8 };
  const t: ITensorProto | undefined = constantTensor(g, name);
  if (!t || tensorDims(t).reduce((a, b) => a * b, 1) !== 1) return undefined;
  const type = t.dataType ?? DataType.UINT8;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData[0] : t.int32Data?.[0];
  if (raw === undefined || raw === null) return undefined;
  const value = type === DataType.INT8 && raw > 127 ? raw - 256 : raw;
  return { value, type };
}

/** True when a tensor quantized with this zero point cannot hold a negative value (a fused ReLU). */
function nonNegative(zp: { value: number; type: number } | undefined): boolean {
  if (!zp) return false;
  return (zp.type === DataType.UINT8 && zp.value === 0) || (zp.type === DataType.INT8 && zp.value === -128);
}

/** Does `tensor` come from `target` through score-preserving nodes only (bias adds, Q/DQ, copies)? */
function scoresFrom(g: IGraphProto, tensor: string, target: string, depth = 0): boolean {
  if (tensor === target) return true;
  const p = producerOf(g, tensor);
  if (!p || depth > 8 || !SCORE_PASSTHROUGH.has(p.opType ?? '')) return false;
  const data = p.opType === 'QLinearAdd' ? [p.input?.[0], p.input?.[3]] : p.opType === 'Add' ? (p.input ?? []) : [p.input?.[0]];
  return data.some((d) => d !== undefined && d !== null && scoresFrom(g, d, target, depth + 1));
}

/** The weight's dims, seen through a DequantizeLinear (QDQ graphs keep int8 weights behind one). */
function weightDims(g: IGraphProto, name: string): number[] | undefined {
  const direct = constantTensor(g, name);
  if (direct) return tensorDims(direct);
  const dq = producerOf(g, name);
  if (dq?.opType !== 'DequantizeLinear') return undefined;
  const t = constantTensor(g, dq.input?.[0] ?? '');
  return t ? tensorDims(t) : undefined;
}

function skipIdentity(g: IGraphProto, name: string): string {
  let data = name;
  for (let p = producerOf(g, data); p?.opType === 'Identity'; p = producerOf(g, data)) data = p.input?.[0] ?? '';
  return data;
}

/** fc7 after ReLU for a float fc8: a Relu output, also behind a QDQ pair whose quantized side is a Relu. */
function floatEmbedding(g: IGraphProto, fc: INodeProto, data: string): { embedding: string; notes: string[] } {
  const p = producerOf(g, data);
  if (p?.opType === 'Relu') return { embedding: data, notes: [] };
  if (p?.opType === 'DequantizeLinear') {
    const q = producerOf(g, p.input?.[0] ?? '');
    const before = q?.opType === 'QuantizeLinear' ? skipIdentity(g, q.input?.[0] ?? '') : undefined;
    if (before !== undefined && producerOf(g, before)?.opType === 'Relu') return { embedding: before, notes: [`embedding: '${before}', the Relu behind fc8's QuantizeLinear/DequantizeLinear pair`] };
    if (nonNegative(zeroPoint(g, p.input?.[2]))) return { embedding: data, notes: [`embedding: '${data}', dequantized with a zero point at the bottom of its range (a fused ReLU)`] };
  }
  throw unsupported(`the input of the last ${fc.opType} ('${data}') comes from ${p ? `a ${p.opType} node` : 'no node'}, expected a Relu (fc7 after ReLU)`);
}

/** fc7 after ReLU for an integer fc8 (QLinearMatMul, QGemm): its quantized input, dequantized by a node we add. */
function integerEmbedding(g: IGraphProto, fc: INodeProto, data: string): { embedding: string; added: INodeProto[]; notes: string[] } {
  const [scale, zp] = [fc.input?.[1], fc.input?.[2]];
  if (fc.opType === 'MatMulInteger' || !scale) {
    throw unsupported(`fc8 '${label(fc)}' is a ${fc.opType} without an input scale: the embedding '${data}' cannot be dequantized`);
  }
  const zero = zeroPoint(g, zp);
  const relu = producerOf(g, data)?.opType === 'Relu';
  if (!relu && !nonNegative(zero)) {
    throw unsupported(
      `fc8 '${label(fc)}' reads '${data}' quantized with zero point ${zero ? zero.value : `'${zp ?? ''}'`}: it can hold values below zero, so it is not fc7 after ReLU (expected a uint8 zero point of 0, int8 −128, or a Relu)`,
    );
  }
  const embedding = `${data}_dequantized`;
  const dq = node('DequantizeLinear', zp ? [data, scale, zp] : [data, scale], [embedding], `${embedding}_sightline`);
  return { embedding, added: [dq], notes: [`added DequantizeLinear '${embedding}' of fc8's quantized input '${data}' (scale '${scale}') as the float embedding`] };
}

/** fc8 = the last fully connected node (nodes are topologically sorted); its data input is fc7's ReLU. */
export function findClassifier(g: IGraphProto, logits: string): Classifier {
  const last = nodesOf(g)
    .filter((n) => FC_WEIGHT_INPUT[n.opType ?? ''] !== undefined)
    .at(-1);
  if (!last) throw unsupported('no Gemm, MatMul, QLinearMatMul, QGemm or MatMulInteger node found: not an AlexNet-style classifier');
  const out = last.output?.[0] ?? '';
  if (!scoresFrom(g, logits, out)) throw unsupported(`the last ${last.opType} '${last.name || out}' does not produce the output '${logits}'`);
  if ((last.opType === 'Gemm' || last.opType === 'QGemm') && intAttr(last, 'transA', 0) !== 0) throw unsupported(`${last.opType} '${label(last)}' uses transA=1`);

  const data = skipIdentity(g, last.input?.[0] ?? '');
  const found = INTEGER_FC.has(last.opType ?? '') ? integerEmbedding(g, last, data) : { ...floatEmbedding(g, last, data), added: [] };
  const wName = last.input?.[FC_WEIGHT_INPUT[last.opType ?? ''] ?? 1] ?? '';
  const dims = weightDims(g, wName);
  if (dims?.length !== 2) throw unsupported(`cannot read the shape of fc8's weight '${wName}' (expected a constant 2-D tensor)`);
  const transB = (last.opType === 'Gemm' || last.opType === 'QGemm') && intAttr(last, 'transB', 0) === 1;
  const [d0 = 0, d1 = 0] = dims;
  return { node: last, embedding: found.embedding, embeddingDim: transB ? d1 : d0, numClasses: transB ? d0 : d1, added: found.added, notes: found.notes };
}
