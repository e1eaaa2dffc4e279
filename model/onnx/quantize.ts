/**
 * Static int8 quantization of an fp32 Sightline model into QDQ format: every Conv and Gemm reads
 * DequantizeLinear(int8 weights, per-channel scales), an int32 bias and a QuantizeLinear →
 * DequantizeLinear pair on its data input; every Conv output gets a pair too. onnxruntime fuses
 * DQ → Conv → Q into QLinearConv and DQ → Gemm into QGemm (u8 activations × s8 weights, VNNI).
 *
 * Where the pairs go is chosen for what onnxruntime's graph optimizer does with them (profiled on
 * `alexnet` at batch 10; README, benchmarks):
 * - A Conv whose only reader is a ReLU gets its pair after the ReLU (Conv → Relu → Q → DQ), with
 *   the ReLU output's range: lower end 0, so zero point 0, and onnxruntime drops the ReLU into the
 *   QLinearConv's uint8 output (ReluQuantFusion) instead of running it in float on the dequantized
 *   tensor. The uint8 grid spends no codes on negatives either.
 * - An LRN reading a dequantized tensor reads it through a Relu (see quantizeModel); the session
 *   then writes that LRN channels-last (onnx/lrn.ts), so the QLinearConvs around it, the LRN and
 *   the uint8 MaxPool after it all run in NHWC. (With a channels-first LRN, onnxruntime moved the
 *   next conv's input QuantizeLinear above the pool and ran it as a uint8 NCHW MaxPool, 8–10×
 *   slower than in float: 11–17 ms for pool1 at batch 10.)
 * Graph outputs (`logits`, `embedding`) stay float: the embedding is the ReLU of fc7's
 * dequantized QGemm output, and fc8 reads its quantized copy.
 *
 * Two steps around a calibration run (quantize-calibrate.ts): planQuantization() says which
 * tensors to measure, quantizeModel() rewrites the graph with the measured ranges.
 */
import type { ModelContract } from '../contract.js';
import { CONTRACT_KEY, parseContract } from '../contract.js';
import { OnnxError } from './errors.js';
import { constantTensor, consumersOf, isGraphOutput, nodesOf } from './graph.js';
import { tensorFloats } from './head.js';
import { contractMetadata } from './metadata.js';
import type { IGraphProto, IModelProto, INodeProto, ITensorProto } from './proto.js';
import { attr, DataType, decodeModel, encodeModel, getAttr, intAttr, metadataEntry, node, tensorDims, toNumber } from './proto.js';
import type { ActivationQuant, WeightBits } from './quantize-math.js';
import { activationParams, DEFAULT_WEIGHT_BITS, quantizeBias, quantizePerChannel, weightQmax } from './quantize-math.js';

/** Operators whose presence means the graph is already quantized. */
const QUANTIZED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'QGemm', 'QLinearAdd']);

export interface QuantTarget {
  node: INodeProto;
  /** Channel axis of the weight: 0 for Conv (OIHW) and Gemm transB = 1, 1 for Gemm transB = 0. */
  axis: number;
}

export interface QuantPlan {
  targets: QuantTarget[];
  /** Tensor that gets a Q → DQ pair → the tensor whose calibrated range sets its parameters. */
  qdq: Map<string, string>;
  /** Tensors whose ranges calibration must measure. */
  observe: string[];
  /** Conv/Gemm nodes left in float, with why. */
  skipped: string[];
}

/** A float or float16 initializer's values; undefined for any other type (integer weights are not quantized here). */
function floatData(t: ITensorProto): Float32Array | undefined {
  return t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16 ? tensorFloats(t) : undefined;
}

/** Throws when the model already holds quantization operators or integer-typed weights of a Conv/Gemm. */
export function assertNotQuantized(g: IGraphProto, what: string): void {
  const ops = nodesOf(g).filter((n) => QUANTIZED_OPS.has(n.opType ?? ''));
  if (ops.length > 0) {
    const kinds = [...new Set(ops.map((n) => n.opType))].join(', ');
    throw new OnnxError('onnx_invalid_argument', `${what} is already quantized (${ops.length} ${kinds} node(s)): quantize its fp32 original instead`);
  }
}

/** Why a Conv/Gemm cannot be quantized here, or undefined when it can. */
function unsupportedReason(g: IGraphProto, n: INodeProto): string | undefined {
  const w = constantTensor(g, n.input?.[1] ?? '');
  if (!w || !floatData(w)) return 'its weight is not a constant float tensor';
  const bias = n.input?.[2];
  if (bias && !constantTensor(g, bias)) return 'its bias is not a constant';
  if (n.opType === 'Gemm') {
    if (intAttr(n, 'transA', 0) !== 0) return 'Gemm with transA = 1';
    const alpha = getAttr(n, 'alpha')?.f ?? 1;
    const beta = getAttr(n, 'beta')?.f ?? 1;
    if (alpha !== 1 || beta !== 1) return `Gemm with alpha ${alpha}, beta ${beta}`;
    const b = bias ? constantTensor(g, bias) : undefined;
    if (b && tensorDims(b).length !== 1) return 'Gemm bias is not 1-D';
  }
  return undefined;
}

/** Which tensors get Q/DQ pairs, and which ranges calibration must measure. */
export function planQuantization(bytes: Uint8Array, what = 'model'): QuantPlan {
  const g = decodeModel(bytes, what).graph;
  if (!g) throw new OnnxError('onnx_malformed', `${what} has no graph`);
  assertNotQuantized(g, what);
  const targets: QuantTarget[] = [];
  const qdq = new Map<string, string>();
  const skipped: string[] = [];
  for (const n of nodesOf(g)) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
    const label = `${n.opType} '${n.name || n.output?.[0]}'`;
    const why = unsupportedReason(g, n);
    if (why) {
      skipped.push(`${label}: ${why}`);
      continue;
    }
    const axis = n.opType === 'Gemm' && intAttr(n, 'transB', 0) === 0 ? 1 : 0;
    targets.push({ node: n, axis });
    const x = n.input?.[0] ?? '';
    qdq.set(x, x);
    if (n.opType === 'Conv') {
      const y = n.output?.[0] ?? '';
      const readers = consumersOf(g, y);
      const relu = readers.length === 1 && readers[0]?.opType === 'Relu' && !isGraphOutput(g, y) ? readers[0].output?.[0] : undefined;
      const q = relu ?? y;
      qdq.set(q, q);
    }
  }
  if (targets.length === 0) throw new OnnxError('onnx_unsupported_graph', `${what} has no Conv or Gemm with constant float weights to quantize${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
  return { targets, qdq, observe: [...new Set(qdq.values())], skipped };
}

/** The model with every observed tensor added as a graph output, for the calibration run. */
export function calibrationModel(bytes: Uint8Array, plan: QuantPlan): Uint8Array {
  const m = decodeModel(bytes);
  const g = m.graph ?? {};
  const outs = new Set((g.output ?? []).map((o) => o.name));
  const extra = plan.observe.filter((t) => !outs.has(t)).map((name) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } }));
  g.output = [...(g.output ?? []), ...extra];
  return encodeModel(m);
}

export interface QuantizeInfo {
  /** Calibrated [lo, hi] of every tensor in plan.observe. */
  ranges: ReadonlyMap<string, readonly [number, number]>;
  calibration: { set: string; images: number; crops: number; method: string };
  /** Range of the int8 weights (quantize-math.ts says why 7 is the default). */
  weightBits?: WeightBits;
}

const scalar = (name: string, dataType: number, bytes: ArrayBufferView): ITensorProto => ({ name, dims: [], dataType, rawData: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
const vector = (name: string, dataType: number, dims: readonly number[], bytes: ArrayBufferView): ITensorProto => ({ ...scalar(name, dataType, bytes), dims: [...dims] });

class Rewriter {
  readonly inits: ITensorProto[] = [];
  readonly params = new Map<string, ActivationQuant>();

  constructor(
    private readonly g: IGraphProto,
    private readonly weightBits: WeightBits,
  ) {}

  /** Q → DQ nodes for activation `t`; readers then use `${t}.dq`. */
  qdqNodes(t: string, p: ActivationQuant): INodeProto[] {
    this.params.set(t, p);
    this.inits.push(scalar(`${t}.scale`, DataType.FLOAT, Float32Array.of(p.scale)), scalar(`${t}.zp`, DataType.UINT8, Uint8Array.of(p.zeroPoint)));
    return [
      node('QuantizeLinear', [t, `${t}.scale`, `${t}.zp`], [`${t}.q`], `${t}.quantize`),
      node('DequantizeLinear', [`${t}.q`, `${t}.scale`, `${t}.zp`], [`${t}.dq`], `${t}.dequantize`),
    ];
  }

  /** DQ nodes for the int8 weight and int32 bias of a target; returns them and the names the node reads. */
  weightNodes(t: QuantTarget, inputScale: number): { nodes: INodeProto[]; w: string; b?: string } {
    const [, wName = '', bName] = t.node.input ?? [];
    const wt = constantTensor(this.g, wName);
    const data = wt ? floatData(wt) : undefined;
    if (!wt || !data) throw new OnnxError('onnx_unsupported_graph', `weight '${wName}' disappeared while quantizing`);
    const dims = tensorDims(wt);
    const base = t.node.name || wName;
    const wq = quantizePerChannel(data, dims, t.axis, this.weightBits);
    const C = dims[t.axis] ?? 0;
    this.inits.push(
      vector(`${base}.weight.int8`, DataType.INT8, dims, wq.q),
      vector(`${base}.weight.scale`, DataType.FLOAT, [C], wq.scales),
      vector(`${base}.weight.zp`, DataType.INT8, [C], new Int8Array(C)),
    );
    const nodes = [node('DequantizeLinear', [`${base}.weight.int8`, `${base}.weight.scale`, `${base}.weight.zp`], [`${base}.weight.dq`], `${base}.weight.dequantize`, [attr.int('axis', t.axis)])];
    if (!bName) return { nodes, w: `${base}.weight.dq` };
    const bt = constantTensor(this.g, bName);
    const bData = bt ? floatData(bt) : undefined;
    if (!bData || bData.length !== C) return { nodes, w: `${base}.weight.dq`, b: bName };
    const bq = quantizeBias(bData, inputScale, wq.scales);
    this.inits.push(
      vector(`${base}.bias.int32`, DataType.INT32, [C], bq.q),
      vector(`${base}.bias.scale`, DataType.FLOAT, [C], bq.scales),
      vector(`${base}.bias.zp`, DataType.INT32, [C], new Int32Array(C)),
    );
    nodes.push(node('DequantizeLinear', [`${base}.bias.int32`, `${base}.bias.scale`, `${base}.bias.zp`], [`${base}.bias.dq`], `${base}.bias.dequantize`, [attr.int('axis', 0)]));
    return { nodes, w: `${base}.weight.dq`, b: `${base}.bias.dq` };
  }
}

/** Drops nodes nothing reads (e.g. the fp16 weights' Casts) and initializers nothing reads. */
function prune(g: IGraphProto): void {
  for (;;) {
    const read = new Set<string>([...(g.output ?? []).map((o) => o.name ?? ''), ...nodesOf(g).flatMap((n) => n.input ?? [])]);
    const keep = nodesOf(g).filter((n) => (n.output ?? []).some((o) => read.has(o)));
    if (keep.length === nodesOf(g).length) break;
    g.node = keep;
  }
  const read = new Set(nodesOf(g).flatMap((n) => n.input ?? []));
  g.initializer = (g.initializer ?? []).filter((t) => read.has(t.name ?? ''));
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  // Inputs that named a dropped initializer (old IRs list weights as inputs) go with it.
  g.input = (g.input ?? []).filter((i) => inits.has(i.name) || read.has(i.name ?? '') || !(i.name ?? '').length);
}

/**
 * The source's measured results (`test_*`, `val_*`) were measured on the fp32 graph: the int8
 * contract keeps them as `fp32_*`, so that it never shows them as its own accuracy (that is
 * measured on the int8 graph: `quantize --eval`, `eval classify --record`). Training facts stay.
 */
export function fp32Metrics(metrics: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [/^(test|val)_/.test(k) ? `fp32_${k}` : k, v]));
}

/** The QDQ model bytes and its updated contract. */
export function quantizeModel(bytes: Uint8Array, plan: QuantPlan, info: QuantizeInfo): { bytes: Uint8Array; contract: ModelContract } {
  const m: IModelProto = decodeModel(bytes);
  const g = m.graph ?? {};
  const weightBits = info.weightBits ?? DEFAULT_WEIGHT_BITS;
  const rw = new Rewriter(g, weightBits);
  const paramsOf = (t: string): ActivationQuant => {
    const src = plan.qdq.get(t) ?? t;
    const r = info.ranges.get(src);
    if (!r) throw new OnnxError('onnx_invalid_argument', `no calibrated range for tensor '${src}'`);
    return activationParams(r[0], r[1]);
  };
  const dq = (t: string): string => (plan.qdq.has(t) ? `${t}.dq` : t);
  // The plan was made on another decode of the same bytes: match nodes by their first output.
  const targets = new Map(plan.targets.map((t) => [t.node.output?.[0] ?? '', t]));
  const out: INodeProto[] = [];
  const inputs = new Set((g.input ?? []).map((i) => i.name ?? ''));
  for (const t of plan.qdq.keys()) if (inputs.has(t)) out.push(...rw.qdqNodes(t, paramsOf(t)));
  for (const n of nodesOf(g)) {
    const target = targets.get(n.output?.[0] ?? '');
    const ins = n.input ?? [];
    if (target) {
      const x = ins[0] ?? '';
      const xs = rw.params.get(x)?.scale ?? paramsOf(x).scale;
      const wn = rw.weightNodes(target, xs);
      out.push(...wn.nodes);
      n.input = [dq(x), wn.w, ...(wn.b ? [wn.b] : [])];
    } else if (n.opType === 'LRN' && plan.qdq.has(ins[0] ?? '') && rw.params.get(ins[0] ?? '')?.zeroPoint === 0) {
      // The session expands LRN into nodes that read its input three times (onnx/lrn.ts), and
      // onnxruntime gives every reader of a DequantizeLinear its own copy (EnsureUniqueDQForNodeUnit):
      // three dequantizations of conv1's output instead of one. A Relu (exact: zero point 0 means
      // no negative values) is the one reader.
      const x = ins[0] ?? '';
      out.push(node('Relu', [dq(x)], [`${x}.dq.once`], `${x}.dq.once`));
      n.input = [`${x}.dq.once`, ...ins.slice(1)];
    } else {
      n.input = ins.map(dq);
    }
    out.push(n);
    for (const y of n.output ?? []) if (plan.qdq.has(y)) out.push(...rw.qdqNodes(y, paramsOf(y)));
  }
  g.node = out;
  g.initializer = [...(g.initializer ?? []), ...rw.inits];
  prune(g);
  // DequantizeLinear's per-channel `axis` needs opset 13, which needs IR 7.
  m.opsetImport = (m.opsetImport ?? []).map((o) => (o.domain ? o : { ...o, version: Math.max(13, toNumber(o.version)) }));
  m.irVersion = Math.max(7, toNumber(m.irVersion));

  const meta = Object.fromEntries((m.metadataProps ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const before = parseContract(meta[CONTRACT_KEY], 'model to quantize');
  const contract = parseContract(
    JSON.stringify({
      ...before,
      metrics: fp32Metrics(before.metrics),
      quantization: {
        format: 'qdq-int8',
        weights: `int8 (${weightBits}-bit range, ±${weightQmax(weightBits)}), symmetric, per output channel (Conv, Gemm)`,
        weightBits,
        activations: 'uint8, asymmetric, per tensor (Conv/Gemm inputs and Conv outputs, after their ReLU)',
        calibration: info.calibration,
        quantizedNodes: plan.targets.length,
        floatNodes: plan.skipped,
        from: { name: before.name, modelVersion: before.modelVersion },
      },
    } satisfies ModelContract),
    'quantized model',
  );
  return { bytes: withContract(m, contract), contract };
}

/** Re-encodes `m` with `contract` as its sightline.* metadata. */
function withContract(m: IModelProto, contract: ModelContract): Uint8Array {
  const kept = (m.metadataProps ?? []).filter((e) => !(e.key ?? '').startsWith('sightline.'));
  m.metadataProps = [...kept, ...Object.entries(contractMetadata(contract)).map(([k, v]) => metadataEntry(k, v))];
  return encodeModel(m);
}

/** The same model bytes with a new contract (e.g. the accuracy measured after quantizing). */
export function replaceContract(bytes: Uint8Array, contract: ModelContract): Uint8Array {
  return withContract(decodeModel(bytes), contract);
}
