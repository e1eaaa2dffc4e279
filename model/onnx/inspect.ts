/** A decoded summary of an ONNX model: what the CLI prints after export/import and tests assert on. */
import type { Dim, IGraphProto, IValueInfoProto } from './proto.js';
import { decodeModel, onnx, tensorDims, toNumber, valueInfoDims } from './proto.js';

export interface TensorSummary {
  name: string;
  elemType: string;
  shape: Dim[];
}

export interface OnnxSummary {
  bytes: number;
  irVersion: number;
  opset: number;
  producer: string;
  modelVersion: number;
  /** Graph inputs that are not initializers (old IR versions list weights as inputs too). */
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  initializers: number;
  /** Elements over all initializers. */
  parameters: number;
  /** Element type name of each initializer type, with counts (e.g. { FLOAT16: 16 }). */
  initializerTypes: Record<string, number>;
  ops: Record<string, number>;
  metadata: Record<string, string>;
}

function typeName(t: number): string {
  return onnx.TensorProto.DataType[t] ?? `type${t}`;
}

function summarize(v: IValueInfoProto): TensorSummary {
  return { name: v.name ?? '', elemType: typeName(v.type?.tensorType?.elemType ?? 0), shape: valueInfoDims(v) };
}

/** Graph inputs minus initializers: the tensors a caller actually feeds. */
export function feedInputs(graph: IGraphProto): IValueInfoProto[] {
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((i) => !inits.has(i.name));
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  const m = decodeModel(bytes);
  const g = m.graph ?? {};
  const inits = g.initializer ?? [];
  return {
    bytes: bytes.length,
    irVersion: toNumber(m.irVersion),
    opset: toNumber((m.opsetImport ?? []).find((o) => !o.domain)?.version),
    producer: [m.producerName, m.producerVersion].filter(Boolean).join(' '),
    modelVersion: toNumber(m.modelVersion),
    inputs: feedInputs(g).map(summarize),
    outputs: (g.output ?? []).map(summarize),
    initializers: inits.length,
    parameters: inits.reduce((sum, t) => sum + tensorDims(t).reduce((a, b) => a * b, 1), 0),
    initializerTypes: countBy(inits, (t) => typeName(t.dataType ?? 0)),
    ops: countBy(g.node ?? [], (n) => n.opType ?? '?'),
    metadata: Object.fromEntries((m.metadataProps ?? []).map((e) => [e.key ?? '', e.value ?? ''])),
  };
}

function shapeText(t: TensorSummary): string {
  return `${t.name} ${t.elemType.toLowerCase()}[${t.shape.join(', ')}]`;
}

/** Multi-line description for the terminal. */
export function formatSummary(s: OnnxSummary): string {
  const mb = (s.bytes / 1e6).toFixed(1);
  const ops = Object.entries(s.ops)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  return [
    `size     ${mb} MB (${s.bytes.toLocaleString('en-US')} bytes), ir ${s.irVersion}, opset ${s.opset}, producer ${s.producer || '?'}`,
    `params   ${s.parameters.toLocaleString('en-US')} in ${s.initializers} initializers (${Object.entries(s.initializerTypes).map(([k, v]) => `${v} ${k}`).join(', ')})`,
    `inputs   ${s.inputs.map(shapeText).join('; ')}`,
    `outputs  ${s.outputs.map(shapeText).join('; ')}`,
    `ops      ${ops}`,
  ].join('\n');
}
