/**
 * Every layer's weights of an ONNX model, in tfjs layout for `preset` (model/weights.ts), so that
 * training can continue from an exported model (`train --from MODEL --train-layers all`). The
 * graph's Conv nodes in order are the preset's conv layers, its last dense layers the fc layers;
 * each shape must be the preset's (names of both in the error otherwise).
 */
import type { Preset } from '../architecture.js';
import { kernelShape, layerShapes } from '../architecture.js';
import type { NamedWeights } from '../weights.js';
import { OnnxError } from './errors.js';
import { constantTensor, nodesOf } from './graph.js';
import { readDenseHead, tensorFloats } from './head.js';
import { nchwRowsToNhwc, oihwToHwio } from './layout.js';
import { decodeModel, tensorDims } from './proto.js';

function mismatch(msg: string): OnnxError {
  return new OnnxError('onnx_unsupported_graph', msg);
}

/** Weights of all layers but those in `skip` (e.g. the fc8 that fine-tuning replaces). */
export function readPresetWeights(bytes: Uint8Array, preset: Preset, skip: ReadonlySet<string> = new Set()): NamedWeights {
  const g = decodeModel(bytes, 'source model').graph;
  if (!g) throw new OnnxError('onnx_malformed', 'source model has no graph');
  const convs = nodesOf(g).filter((n) => n.opType === 'Conv');
  const shapes = layerShapes(preset);
  const convShapes = shapes.filter((s) => s.layer.kind === 'conv');
  if (convs.length !== convShapes.length) throw mismatch(`the model has ${convs.length} Conv nodes, preset '${preset.name}' has ${convShapes.length} conv layers`);
  const dense = readDenseHead(bytes).layers;
  const out: NamedWeights = new Map();
  let convIndex = 0;
  let prevConv: readonly number[] | undefined;
  for (const s of shapes) {
    const { layer } = s;
    const want = kernelShape(s);
    if (layer.kind === 'conv') {
      const n = convs[convIndex++];
      prevConv = s.outShape;
      if (!n || skip.has(layer.name)) continue;
      const wT = constantTensor(g, n.input?.[1] ?? '');
      const bT = constantTensor(g, n.input?.[2] ?? '');
      const [k = 0, , cin = 0, cout = 0] = want;
      const dims = wT ? tensorDims(wT) : [];
      if (!wT || !bT || dims.join() !== [cout, cin, k, k].join()) {
        throw mismatch(`Conv '${n.name ?? '?'}' has weights [${dims.join(', ')}], preset '${preset.name}' layer '${layer.name}' needs [${[cout, cin, k, k].join(', ')}] with a bias`);
      }
      out.set(layer.name, { w: oihwToHwio(tensorFloats(wT), k, k, cin, cout), wShape: want, b: tensorFloats(bT) });
      continue;
    }
    if (skip.has(layer.name)) continue;
    const d = dense.find((l) => l.name === layer.name);
    if (!d || d.weights.wShape.join() !== want.join()) {
      throw mismatch(`dense layer '${layer.name}' has weights [${d?.weights.wShape.join(', ') ?? 'none'}], preset '${preset.name}' needs [${want.join(', ')}]`);
    }
    let w = d.weights.w;
    if (prevConv) {
      const [c = 0, h = 0, wd = 0] = prevConv;
      w = nchwRowsToNhwc(w, c, h, wd, want[1] ?? 0);
      prevConv = undefined;
    }
    out.set(layer.name, { w, wShape: want, b: d.weights.b });
  }
  return out;
}
