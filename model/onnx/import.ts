/**
 * Wraps an AlexNet-layout ONNX exported by someone else (torchvision via torch.onnx.export, or the
 * ONNX model zoo's Caffe-derived bvlcalexnet) into a Sightline model: adds fc7-after-ReLU as an
 * `embedding` output, exposes pre-softmax logits, and writes the preprocessing contract.
 * Tensor names are discovered from the graph, never assumed, and recorded in the contract's `io`.
 * Already-quantized graphs (the zoo's -int8 and -qdq files) are taken as they are: fc8 and fc7 are
 * found through their integer or Q/DQ operators (import-classifier.ts); nothing is re-quantized.
 */
import type { ModelContract, PreprocessContract } from '../contract.js';
import { CONTRACT_VERSION, parseContract } from '../contract.js';
import { OnnxError } from './errors.js';
import { consumersOf, constantInts, nodesOf, producerOf, removeNodes, stripDropout } from './graph.js';
import { findClassifier } from './import-classifier.js';
import { feedInputs } from './inspect.js';
import { contractMetadata } from './metadata.js';
import type { Dim, IGraphProto, IValueInfoProto } from './proto.js';
import { DataType, decodeModel, dimProto, encodeModel, int64Tensor, intAttr, metadataEntry, toNumber, valueInfo, valueInfoDims } from './proto.js';

export type ImportPreset = 'torchvision' | 'caffe';
export const IMPORT_PRESETS: readonly ImportPreset[] = ['torchvision', 'caffe'];

export interface ImportOptions {
  preset: ImportPreset;
  labels: string[];
  name?: string;
  modelVersion?: string;
}

export interface ImportResult {
  bytes: Uint8Array;
  contract: ModelContract;
  /** What was changed in the graph, one line each (printed by the CLI). */
  changes: string[];
}

type ChannelNorm = Pick<PreprocessContract, 'channels' | 'scale' | 'mean' | 'std'>;

/** torchvision: RGB in [0,1] normalized with ImageNet stats; Caffe: BGR 0–255 minus the BGR mean of the model zoo's evaluation script. */
export const IMPORT_PREPROCESS: Record<ImportPreset, ChannelNorm> = {
  torchvision: { channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  caffe: { channels: 'bgr', scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1] },
};

const DEFAULT_INPUT_SIZE = 224;

function unsupported(msg: string): OnnxError {
  return new OnnxError('onnx_unsupported_graph', msg);
}

/** The integer/quantization operators of a graph with their counts ('' when it is float). */
function quantizedOps(g: IGraphProto): string {
  const counts = new Map<string, number>();
  for (const n of nodesOf(g)) if (/^(QLinear|Quantize|Dequantize|DynamicQuantize)|Integer$|^QGemm$/.test(n.opType ?? '')) counts.set(n.opType ?? '', (counts.get(n.opType ?? '') ?? 0) + 1);
  return [...counts].map(([op, c]) => `${c} ${op}`).join(', ');
}

/** Removes a trailing Softmax so the graph emits logits (the runtime applies softmax itself). */
function logitsTensor(g: IGraphProto, changes: string[]): string {
  const outs = g.output ?? [];
  const first = outs[0]?.name;
  if (outs.length !== 1 || !first) {
    throw unsupported(`expected exactly one graph output (the class scores), found ${outs.length}: ${outs.map((o) => `'${o.name}'`).join(', ')}`);
  }
  const p = producerOf(g, first);
  if (p?.opType !== 'Softmax') return first;
  const logits = p.input?.[0];
  if (!logits) throw unsupported(`Softmax '${p.name ?? first}' has no input`);
  if (consumersOf(g, first).length > 0) throw unsupported(`softmax output '${first}' also feeds other nodes; cannot remove the Softmax`);
  removeNodes(g, new Set([p]));
  changes.push(`removed trailing Softmax '${p.name || first}': logits are '${logits}'`);
  return logits;
}

/**
 * A fixed batch dim (torch.onnx.export without dynamic_axes, the model zoo's [1,3,224,224]) becomes
 * symbolic. Reshape targets that bake that batch in ([1, 9216]) are rewritten to copy it from the
 * input (0 = "keep this dim" under allowzero=0), and stale intermediate shapes are dropped.
 */
function symbolicBatch(g: IGraphProto, input: IValueInfoProto, weightsAreInputs: boolean, changes: string[]): string {
  const dims = input.type?.tensorType?.shape?.dim ?? [];
  const first = dims[0];
  if (first?.dimParam) return first.dimParam;
  const fixed = valueInfoDims(input)[0];
  const batch = 'N';
  if (!first || typeof fixed !== 'number' || !input.type?.tensorType?.shape) return batch;
  input.type.tensorType.shape.dim = [dimProto(batch), ...dims.slice(1)];
  changes.push(`input '${input.name}': fixed batch ${fixed} → symbolic '${batch}'`);
  const replaced = new Set<string>();
  for (const n of nodesOf(g)) {
    if (n.opType !== 'Reshape' || intAttr(n, 'allowzero', 0) !== 0) continue;
    const shapeName = n.input?.[1] ?? '';
    const target = constantInts(g, shapeName);
    if (!target || target.length < 2 || target[0] !== fixed) continue;
    const name = `${shapeName}.dynbatch`;
    if (!(g.initializer ?? []).some((t) => t.name === name)) {
      g.initializer = [...(g.initializer ?? []), int64Tensor(name, [target.length], [0, ...target.slice(1)])];
      // IR < 4 requires every initializer to be declared as a graph input too.
      if (weightsAreInputs) g.input = [...(g.input ?? []), valueInfo(name, DataType.INT64, [target.length])];
    }
    n.input = [n.input?.[0] ?? '', name];
    replaced.add(shapeName);
    changes.push(`Reshape to '${n.output?.[0] ?? '?'}': target [${target.join(', ')}] → [0, ${target.slice(1).join(', ')}]`);
  }
  const unused = [...replaced].filter((name) => consumersOf(g, name).length === 0);
  g.initializer = (g.initializer ?? []).filter((t) => !unused.includes(t.name ?? ''));
  g.input = (g.input ?? []).filter((i) => !unused.includes(i.name ?? ''));
  if ((g.valueInfo ?? []).length > 0) changes.push(`dropped ${(g.valueInfo ?? []).length} value_info shapes (they pinned batch ${fixed})`);
  g.valueInfo = [];
  return batch;
}

function inputSizeOf(input: IValueInfoProto, changes: string[]): number {
  const dims = valueInfoDims(input);
  if (dims.length !== 4) throw unsupported(`input '${input.name}' has rank ${dims.length}, expected 4 (N, C, H, W)`);
  const [, c, h, w] = dims;
  if (typeof c === 'number' && c !== 3) throw unsupported(`input '${input.name}' has ${c} channels, the import presets take 3`);
  if (typeof h === 'number' && h === w) return h;
  changes.push(`input '${input.name}' has no fixed square size; contract uses inputSize ${DEFAULT_INPUT_SIZE}`);
  return DEFAULT_INPUT_SIZE;
}

function buildContract(opts: ImportOptions, io: ModelContract['io'], embeddingDim: number, inputSize: number, modelVersion: number): ModelContract {
  const contract: ModelContract = {
    version: CONTRACT_VERSION,
    name: opts.name ?? `alexnet-${opts.preset}`,
    modelVersion: opts.modelVersion ?? String(modelVersion || 1),
    preset: 'alexnet',
    labels: opts.labels,
    preprocess: { ...IMPORT_PREPROCESS[opts.preset], inputSize, resizeSize: Math.round((inputSize * 256) / 224), background: [255, 255, 255] },
    io,
    embeddingDim,
    metrics: {},
    source: `import:${opts.preset}`,
  };
  try {
    return parseContract(JSON.stringify(contract), `${contract.name} (import)`);
  } catch (err) {
    throw new OnnxError('onnx_invalid_contract', (err as Error).message);
  }
}

export function importOnnxDetailed(src: Uint8Array, opts: ImportOptions): ImportResult {
  if (!IMPORT_PRESETS.includes(opts.preset)) {
    throw new OnnxError('onnx_invalid_argument', `'preset' must be one of ${IMPORT_PRESETS.join(', ')}, got '${String(opts.preset)}'`);
  }
  const model = decodeModel(src, 'import source');
  const g = model.graph;
  if (!g) throw new OnnxError('onnx_malformed', 'import source has no graph');
  const changes: string[] = [];

  const feeds = feedInputs(g);
  const input = feeds[0];
  if (feeds.length !== 1 || !input?.name) throw unsupported(`expected one image input, found ${feeds.length}: ${feeds.map((i) => `'${i.name}'`).join(', ')}`);
  const weightsAreInputs = toNumber(model.irVersion) < 4;
  if (!weightsAreInputs) {
    // IR ≥ 4 allows weights that are not inputs; listed as inputs they stay overridable, which keeps
    // onnxruntime from constant-folding them (older Caffe2 conversions list every blob).
    const inits = new Set((g.initializer ?? []).map((t) => t.name));
    const weightInputs = (g.input ?? []).filter((i) => inits.has(i.name));
    if (weightInputs.length > 0) {
      g.input = (g.input ?? []).filter((i) => !inits.has(i.name));
      changes.push(`removed ${weightInputs.length} initializer(s) from the graph inputs`);
    }
  }
  const dropped = stripDropout(g);
  if (dropped > 0) changes.push(`removed ${dropped} Dropout node(s) (identity at inference)`);
  const logits = logitsTensor(g, changes);
  const fc = findClassifier(g, logits);
  const quantized = quantizedOps(g);
  if (quantized) changes.push(`already quantized (${quantized}): run as it is`);
  if (fc.added.length > 0) g.node = [...nodesOf(g), ...fc.added];
  changes.push(...fc.notes);
  if (opts.labels.length !== fc.numClasses) {
    throw new OnnxError('onnx_invalid_argument', `'labels' has ${opts.labels.length} entries but the model's last layer '${fc.node.name || logits}' has ${fc.numClasses} classes`);
  }
  const inputSize = inputSizeOf(input, changes);
  const batch = symbolicBatch(g, input, weightsAreInputs, changes);
  const dims = (n: number): Dim[] => [batch, n];
  g.output = [valueInfo(logits, DataType.FLOAT, dims(fc.numClasses)), valueInfo(fc.embedding, DataType.FLOAT, dims(fc.embeddingDim))];
  changes.push(`added output '${fc.embedding}' [${batch}, ${fc.embeddingDim}] (fc7 after ReLU) as the embedding`);

  const io = { input: input.name, logits, embedding: fc.embedding };
  const contract = buildContract(opts, io, fc.embeddingDim, inputSize, toNumber(model.modelVersion));
  const kept = (model.metadataProps ?? []).filter((e) => !(e.key ?? '').startsWith('sightline.'));
  model.metadataProps = [...kept, ...Object.entries(contractMetadata(contract)).map(([k, v]) => metadataEntry(k, v))];
  return { bytes: encodeModel(model), contract, changes };
}

/** Imported model bytes; see importOnnxDetailed for the list of graph edits. */
export function importOnnx(src: Uint8Array, opts: ImportOptions): Uint8Array {
  return importOnnxDetailed(src, opts).bytes;
}
