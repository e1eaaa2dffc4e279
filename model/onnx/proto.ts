/**
 * Thin builders over the generated `onnx-proto` classes (protobufjs 6, ONNX 1.10 schema), so the
 * exporter, the importer and the tests describe graphs in a few readable lines.
 */
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { OnnxError } from './errors.js';

// onnx-proto is CommonJS: its `module.exports` is the protobufjs root holding the `onnx` namespace.
export const onnx = onnxProto.onnx;
export type IModelProto = OnnxTypes.IModelProto;
export type IGraphProto = OnnxTypes.IGraphProto;
export type INodeProto = OnnxTypes.INodeProto;
export type ITensorProto = OnnxTypes.ITensorProto;
export type IValueInfoProto = OnnxTypes.IValueInfoProto;
export type IAttributeProto = OnnxTypes.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** A tensor dimension: a fixed size or a symbolic name such as 'N'. */
export type Dim = number | string;

export const OPSET = 13;
/** IR 7 is the version that onnx 1.8+ writes for opset 13; every runtime we care about reads it. */
export const IR_VERSION = 7;

// raw_data is little-endian by spec; typed-array views are host-endian, so refuse big-endian hosts
// rather than silently writing swapped floats.
if (endianness() !== 'LE') throw new Error('sightline ONNX export needs a little-endian host');

/** int64 fields decode as numbers or as Long objects (when `long` is installed). */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object' && 'toNumber' in v && typeof v.toNumber === 'function') return Number(v.toNumber());
  if (typeof v === 'string' || typeof v === 'bigint') return Number(v);
  return 0;
}

function bytesOf(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): ITensorProto {
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData: bytesOf(data) };
}

/** `bits` are IEEE 754 half-precision bit patterns (see fp16.ts). */
export function float16Tensor(name: string, dims: readonly number[], bits: Uint16Array): ITensorProto {
  return { name, dims: [...dims], dataType: DataType.FLOAT16, rawData: bytesOf(bits) };
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): ITensorProto {
  return { name, dims: [...dims], dataType: DataType.INT64, int64Data: [...values] };
}

/** Values of an INT64 tensor, whether stored in int64_data or raw_data. */
export function int64Values(t: ITensorProto): number[] {
  if (t.rawData && t.rawData.length > 0) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const out: number[] = [];
    for (let i = 0; i + 8 <= t.rawData.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
    return out;
  }
  return (t.int64Data ?? []).map(toNumber);
}

export function tensorDims(t: ITensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

export const attr = {
  int: (name: string, i: number): IAttributeProto => ({ name, type: AttrType.INT, i }),
  ints: (name: string, ints: readonly number[]): IAttributeProto => ({ name, type: AttrType.INTS, ints: [...ints] }),
  float: (name: string, f: number): IAttributeProto => ({ name, type: AttrType.FLOAT, f }),
  string: (name: string, s: string): IAttributeProto => ({ name, type: AttrType.STRING, s: new TextEncoder().encode(s) }),
  tensor: (name: string, t: ITensorProto): IAttributeProto => ({ name, type: AttrType.TENSOR, t }),
};

export function node(opType: string, inputs: readonly string[], outputs: readonly string[], name: string, attributes: IAttributeProto[] = []): INodeProto {
  return { opType, input: [...inputs], output: [...outputs], name, attribute: attributes };
}

export function getAttr(n: INodeProto, name: string): IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

export function intAttr(n: INodeProto, name: string, fallback: number): number {
  const a = getAttr(n, name);
  return a ? toNumber(a.i) : fallback;
}

export function dimProto(d: Dim): OnnxTypes.TensorShapeProto.IDimension {
  return typeof d === 'number' ? { dimValue: d } : { dimParam: d };
}

export function valueInfo(name: string, elemType: number, dims: readonly Dim[]): IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map(dimProto) } } } };
}

/** Shape of a value info as numbers and symbolic names ('?' where neither is set). */
export function valueInfoDims(v: IValueInfoProto): Dim[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : '?'));
}

export function metadataEntry(key: string, value: string): OnnxTypes.IStringStringEntryProto {
  return { key, value };
}

export function encodeModel(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Decodes a whole model; tensor raw_data stays a view into `bytes` (protobufjs slices, no copy). */
export function decodeModel(bytes: Uint8Array, what = 'model'): OnnxTypes.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OnnxError('onnx_malformed', `${what} is not a valid ONNX ModelProto (${(err as Error).message})`);
  }
}

export function modelProto(graph: IGraphProto, fields: { docString?: string; modelVersion?: number; metadata?: Record<string, string> } = {}): IModelProto {
  return {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'sightline',
    producerVersion: '0.1.0',
    docString: fields.docString ?? '',
    modelVersion: fields.modelVersion ?? 1,
    graph,
    metadataProps: Object.entries(fields.metadata ?? {}).map(([k, v]) => metadataEntry(k, v)),
  };
}
