/**
 * The fully connected head of any AlexNet-style ONNX (our exports, torchvision or the model zoo's
 * Caffe AlexNet after `sightline import`): read its dense layers' weights, expose the tensor each
 * one reads (so frozen layers' features can be computed once by onnxruntime), and write a copy of
 * the model with new weights for some dense layers — everything else, the convolutions and the
 * preprocessing contract's pixels included, stays byte for byte the source's.
 *
 * Weights come and go in tfjs layout: kernels [in, out], biases [out]. Gemm's transB and
 * MatMul (+ Add) forms are both read; a replaced layer is written as a plain float Gemm.
 */
import type { ModelContract } from '../contract.js';
import type { LayerWeights } from '../weights.js';
import { OnnxError } from './errors.js';
import { fromFloat16Array, toFloat16Array } from './fp16.js';
import { consumersOf, constantTensor, nodesOf } from './graph.js';
import { contractMetadata } from './metadata.js';
import type { IGraphProto, INodeProto, ITensorProto } from './proto.js';
import { attr, DataType, decodeModel, encodeModel, float16Tensor, floatTensor, intAttr, metadataEntry, node, tensorDims, valueInfo, valueInfoDims } from './proto.js';

export interface HeadLayer {
  /** fc6, fc7, fc8 counted back from the last dense layer. */
  name: string;
  /** The tensor this layer reads (fc6: the flattened conv features; fc8: the fc7 embedding). */
  input: string;
  weights: LayerWeights;
}

export interface DenseHead {
  /** In graph order; the last one emits the logits. */
  layers: HeadLayer[];
}

function bad(msg: string): OnnxError {
  return new OnnxError('onnx_unsupported_graph', msg);
}

/** Float values of a FLOAT or FLOAT16 initializer (raw or typed storage). */
export function tensorFloats(t: ITensorProto): Float32Array {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataType === DataType.FLOAT) {
    if (raw) return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    return Float32Array.from(t.floatData ?? []);
  }
  if (t.dataType === DataType.FLOAT16) {
    if (raw) return fromFloat16Array(new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
    return fromFloat16Array(Uint16Array.from(t.int32Data ?? []));
  }
  throw bad(`tensor '${t.name}' has data type ${t.dataType}; only float and float16 weights can be read`);
}

interface DenseNode {
  node: INodeProto;
  /** The Add that carries a MatMul's bias, if any. */
  add?: INodeProto;
  out: string;
}

function denseNodes(g: IGraphProto): DenseNode[] {
  return nodesOf(g)
    .filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul')
    .map((n) => {
      const out = n.output?.[0] ?? '';
      const add = n.opType === 'MatMul' ? consumersOf(g, out).find((c) => c.opType === 'Add') : undefined;
      return { node: n, add, out: add?.output?.[0] ?? out };
    });
}

function readDense(g: IGraphProto, d: DenseNode, name: string): HeadLayer {
  const n = d.node;
  const label = n.name || d.out;
  const wT = constantTensor(g, n.input?.[1] ?? '');
  if (!wT) throw bad(`the weight of ${n.opType} '${label}' is not a constant`);
  const dims = tensorDims(wT);
  if (dims.length !== 2) throw bad(`the weight of ${n.opType} '${label}' has shape [${dims.join(', ')}], expected 2-D`);
  if (n.opType === 'Gemm' && (intAttr(n, 'transA', 0) !== 0 || (n.attribute ?? []).some((a) => (a.name === 'alpha' || a.name === 'beta') && a.f !== 1))) {
    throw bad(`Gemm '${label}' uses transA or alpha/beta ≠ 1`);
  }
  const transB = n.opType === 'Gemm' && intAttr(n, 'transB', 0) === 1;
  const [d0 = 0, d1 = 0] = dims;
  const [fin, units] = transB ? [d1, d0] : [d0, d1];
  const raw = tensorFloats(wT);
  let w = raw;
  if (transB) {
    w = new Float32Array(raw.length);
    for (let o = 0; o < units; o++) for (let i = 0; i < fin; i++) w[i * units + o] = raw[o * fin + i] as number;
  }
  const biasName = n.opType === 'Gemm' ? n.input?.[2] : d.add?.input?.find((x) => x !== n.output?.[0]);
  const bT = biasName ? constantTensor(g, biasName) : undefined;
  const b = bT ? tensorFloats(bT) : new Float32Array(units);
  if (b.length !== units) throw bad(`the bias of '${label}' has ${b.length} values, the layer has ${units} units`);
  return { name, input: n.input?.[0] ?? '', weights: { w, wShape: [fin, units], b } };
}

function headOf(g: IGraphProto): { nodes: DenseNode[]; layers: HeadLayer[] } {
  const all = denseNodes(g);
  if (all.length === 0) throw bad('no Gemm or MatMul node: not an AlexNet-style classifier');
  const nodes = all.slice(-3);
  const names = ['fc6', 'fc7', 'fc8'].slice(3 - nodes.length);
  return { nodes, layers: nodes.map((d, i) => readDense(g, d, names[i] as string)) };
}

/** The dense layers (up to the last three: fc6, fc7, fc8) of an ONNX classifier. */
export function readDenseHead(bytes: Uint8Array): DenseHead {
  const g = decodeModel(bytes, 'source model').graph;
  if (!g) throw new OnnxError('onnx_malformed', 'source model has no graph');
  return { layers: headOf(g).layers };
}

/** The model with `tensors` added as graph outputs (float, [N, width]), for feature extraction. */
export function withFeatureOutputs(bytes: Uint8Array, tensors: { name: string; width: number }[]): Uint8Array {
  const model = decodeModel(bytes, 'source model');
  const g = model.graph;
  if (!g) throw new OnnxError('onnx_malformed', 'source model has no graph');
  const have = new Set((g.output ?? []).map((o) => o.name));
  const batch = valueInfoDims((g.output ?? [])[0] ?? {})[0] ?? 'N';
  for (const t of tensors) if (!have.has(t.name)) g.output = [...(g.output ?? []), valueInfo(t.name, DataType.FLOAT, [batch, t.width])];
  return encodeModel(model);
}

/**
 * The source model with new weights for the named dense layers (a layer may change its width:
 * a new fc8 sized to new classes) and a new contract. Untouched initializers keep their bytes.
 */
export function replaceDenseLayers(bytes: Uint8Array, replace: ReadonlyMap<string, LayerWeights>, contract: ModelContract, opts: { fp16?: boolean } = {}): Uint8Array {
  const model = decodeModel(bytes, 'source model');
  const g = model.graph;
  if (!g) throw new OnnxError('onnx_malformed', 'source model has no graph');
  const { nodes, layers } = headOf(g);
  const used = new Set(nodesOf(g).flatMap((n) => n.input ?? []));
  for (const [i, layer] of layers.entries()) {
    const lw = replace.get(layer.name);
    if (!lw) continue;
    const d = nodes[i] as DenseNode;
    const [fin = 0, units = 0] = lw.wShape;
    if (fin !== layer.weights.wShape[0]) throw bad(`new '${layer.name}' reads ${fin} features, the model gives it ${layer.weights.wShape[0]}`);
    const base = `${layer.name}.finetuned`;
    const inits: ITensorProto[] = [];
    const casts: INodeProto[] = [];
    const add = (name: string, dims: number[], data: Float32Array): void => {
      if (!opts.fp16) return void inits.push(floatTensor(name, dims, data));
      inits.push(float16Tensor(`${name}.fp16`, dims, toFloat16Array(data)));
      casts.push(node('Cast', [`${name}.fp16`], [name], `${name}.cast`, [attr.int('to', DataType.FLOAT)]));
    };
    add(`${base}.weight`, [fin, units], lw.w);
    add(`${base}.bias`, [units], lw.b);
    const gemm = node('Gemm', [d.node.input?.[0] ?? '', `${base}.weight`, `${base}.bias`], [d.out], base, [attr.int('transB', 0)]);
    const old = new Set([d.node, ...(d.add ? [d.add] : [])]);
    const list = nodesOf(g);
    const at = list.indexOf(d.node);
    g.node = [...casts, ...list.slice(0, at), gemm, ...list.slice(at + 1).filter((n) => !old.has(n))];
    g.initializer = [...(g.initializer ?? []), ...inits];
    if (units !== layer.weights.wShape[1]) {
      for (const o of g.output ?? []) {
        if (o.name !== d.out) continue;
        Object.assign(o, valueInfo(d.out, DataType.FLOAT, [valueInfoDims(o)[0] ?? 'N', units]));
      }
    }
  }
  // Drop the replaced layers' old weights (and their Casts) that nothing reads any more.
  const reads = new Set(nodesOf(g).flatMap((n) => n.input ?? []));
  const deadCasts = nodesOf(g).filter((n) => n.opType === 'Cast' && !reads.has(n.output?.[0] ?? '') && !(g.output ?? []).some((o) => o.name === n.output?.[0]));
  g.node = nodesOf(g).filter((n) => !deadCasts.includes(n));
  const stillRead = new Set(nodesOf(g).flatMap((n) => n.input ?? []));
  const removed = new Set((g.initializer ?? []).map((t) => t.name ?? '').filter((n) => used.has(n) && !stillRead.has(n)));
  g.initializer = (g.initializer ?? []).filter((t) => !removed.has(t.name ?? ''));
  g.input = (g.input ?? []).filter((i) => !removed.has(i.name ?? ''));
  g.valueInfo = [];
  const kept = (model.metadataProps ?? []).filter((e) => !(e.key ?? '').startsWith('sightline.'));
  model.metadataProps = [...kept, ...Object.entries(contractMetadata(contract)).map(([k, v]) => metadataEntry(k, v))];
  return encodeModel(model);
}
