/**
 * Local response normalization as plain ONNX operators instead of one `LRN` node, applied to a
 * model's graph just before onnxruntime loads it (model/session.ts); model files keep their `LRN`:
 *
 *   y = x / (bias + alpha/size · Σ_window x²)^beta      (ONNX LRN semantics, window of `size` channels)
 *
 * as   sq = x·x;  avg = AveragePool over the channel axis (size × 1 × 1 on [N,1,C,H,W], or
 *      1 × 1 × size on [N,1,H,W,C] channels-last; zero padded, padding counted, so avg = Σ/size);
 *      d = bias + alpha · avg (one BatchNormalization);  y = x / d^beta.
 *
 * Why: onnxruntime's CPU LRN kernel costs 25–30 ns per element (pow per value): on the full
 * `alexnet` at batch 10 it took 136 of 308 ms (conv1.lrn 83 ms, conv2.lrn 53 ms, profiled), more
 * than conv2–conv5 together, and in the int8 graph it was more than half of the run. The expansion
 * takes 35–45 % of that time (profiled, and in isolation): the pool is 5 adds per value and the
 * power is vectorized (beta = 0.75, the paper's, as 1 / (√d · √√d); other betas use Pow). The
 * result equals LRN to float rounding (max |Δlogit| ≈ 1e-6 on the full network).
 *
 * Scalars are Constant nodes, not initializers, so parameter counts and initializer types of a
 * graph are those of its weights alone.
 */
import { nodesOf, producerOf } from './graph.js';
import type { IGraphProto, INodeProto } from './proto.js';
import { attr, DataType, decodeModel, encodeModel, getAttr, intAttr, node, toNumber } from './proto.js';

export interface LrnParams {
  /** Channels in the window (odd). */
  size: number;
  /** ONNX alpha: the sum of squares is scaled by alpha / size. */
  alpha: number;
  beta: number;
  bias: number;
}

function constant(name: string, dataType: number, dims: readonly number[], bytes: ArrayBufferView): INodeProto {
  const t = { name, dims: [...dims], dataType, rawData: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  return node('Constant', [], [name], name, [attr.tensor('value', t)]);
}

/**
 * Channels first (NCHW, as stored) or channels last: in an int8 graph onnxruntime runs each
 * QLinearConv in NHWC behind Transposes it inserts; an LRN written channels-last (a Transpose to
 * NHWC, the expansion with the pool along the last axis, a Transpose back) lets its optimizer
 * cancel those Transposes against ours, and the MaxPool after it then runs on uint8 in NHWC
 * (NhwcMaxPool): no layout change left between conv1 and conv5 (alexnet int8: 1.10–1.14× faster,
 * identical outputs). In a float graph the Conv and MaxPool run in NCHWc and onnxruntime folds our
 * Transposes into the reorders it places around them (ReorderOutput/ReorderInput channels-last),
 * so channels-last costs nothing there either, and the pool is cheaper: its 5 reads per value are
 * adjacent instead of 5 planes apart (full `alexnet`, batch 10, 2 threads, profiled under load:
 * conv2's pool 1.3 ms vs 6.8–10.9, LRN with reorders 25–37 ms vs 36–52). A LRN that reads neither
 * a Conv nor a DequantizeLinear stays channels-first, as the Transposes would then stay too.
 */
export type LrnLayout = 'nchw' | 'nhwc';

/**
 * `out` = bias + alpha · `mean` on the pooled 5-D tensor, whose channel axis has size 1: one
 * BatchNormalization (scale alpha, B bias, mean 0, variance 1, epsilon 0, so exactly alpha·v + bias)
 * instead of a Mul and an Add, one pass over the tensor less. Opsets before 9 (BatchNormalization's
 * `spatial`/`is_test` forms) keep the Mul and Add.
 */
function affine(mean: string, out: string, t: (s: string) => string, p: LrnParams, opset: number): INodeProto[] {
  const scalar = (s: string, v: number, dims: number[]): INodeProto => constant(t(s), DataType.FLOAT, dims, Float32Array.of(v));
  if (opset < 9) {
    return [scalar('alpha', p.alpha, []), scalar('bias', p.bias, []), node('Mul', [mean, t('alpha')], [t('scaled')], t('scale')), node('Add', [t('scaled'), t('bias')], [out], t('shift'))];
  }
  return [
    scalar('alpha', p.alpha, [1]),
    scalar('bias', p.bias, [1]),
    scalar('zero', 0, [1]),
    scalar('one', 1, [1]),
    node('BatchNormalization', [mean, t('alpha'), t('bias'), t('zero'), t('one')], [out], t('affine'), [attr.float('epsilon', 0)]),
  ];
}

/** Nodes computing `y` = LRN(`x`) under `name` (every intermediate tensor is named `${name}.*`). */
export function lrnNodes(x: string, y: string, name: string, p: LrnParams, opset = 13, layout: LrnLayout = 'nchw'): INodeProto[] {
  if (!Number.isInteger(p.size) || p.size < 1 || p.size % 2 === 0) throw new RangeError(`LRN size must be a positive odd integer, got ${p.size}`);
  const half = (p.size - 1) / 2;
  const t = (s: string): string => `${name}.${s}`;
  const last = layout === 'nhwc';
  const [xin, yout] = last ? [t('input.nhwc'), t('output.nhwc')] : [x, y];
  // Opset 13 moved Unsqueeze/Squeeze axes from an attribute to an input.
  const axes = opset >= 13 ? { extra: [t('axis')], attrs: [] } : { extra: [], attrs: [attr.ints('axes', [1])] };
  const nodes = [
    ...(opset >= 13 ? [constant(t('axis'), DataType.INT64, [1], BigInt64Array.of(1n))] : []),
    ...(last ? [node('Transpose', [x], [xin], t('to_nhwc'), [attr.ints('perm', [0, 2, 3, 1])])] : []),
    node('Mul', [xin, xin], [t('square')], t('square')),
    // [N,C,H,W] → [N,1,C,H,W] (or [N,H,W,C] → [N,1,H,W,C]): a 3-D pool of size 1 except along the channels.
    node('Unsqueeze', [t('square'), ...axes.extra], [t('square5d')], t('unsqueeze'), axes.attrs),
    node('AveragePool', [t('square5d')], [t('mean5d')], t('window'), [
      attr.ints('kernel_shape', last ? [1, 1, p.size] : [p.size, 1, 1]),
      attr.ints('pads', last ? [0, 0, half, 0, 0, half] : [half, 0, 0, half, 0, 0]),
      attr.int('count_include_pad', 1),
    ]),
    ...affine(t('mean5d'), t('base5d'), t, p, opset),
    node('Squeeze', [t('base5d'), ...axes.extra], [t('base')], t('squeeze'), axes.attrs),
  ];
  if (p.beta === 0.75) {
    nodes.push(
      node('Sqrt', [t('base')], [t('root2')], t('root2')),
      node('Sqrt', [t('root2')], [t('root4')], t('root4')),
      node('Mul', [t('root2'), t('root4')], [t('denominator')], t('denominator')),
    );
  } else {
    nodes.push(constant(t('beta'), DataType.FLOAT, [], Float32Array.of(p.beta)), node('Pow', [t('base'), t('beta')], [t('denominator')], t('denominator')));
  }
  nodes.push(node('Div', [xin, t('denominator')], [yout], t('divide')));
  if (last) nodes.push(node('Transpose', [yout], [y], t('to_nchw'), [attr.ints('perm', [0, 3, 1, 2])]));
  return nodes;
}

/** ONNX LRN attributes with the operator's defaults (alpha 1e-4, beta 0.75, bias 1; size is required). */
function lrnParams(n: INodeProto): LrnParams {
  const f = (k: string, d: number): number => getAttr(n, k)?.f ?? d;
  return { size: intAttr(n, 'size', 0), alpha: f('alpha', 1e-4), beta: f('beta', 0.75), bias: f('bias', 1) };
}

/** Channels last when the LRN reads (through Relus) a Conv or a dequantized tensor (an int8 graph's QLinearConv output). */
function layoutFor(g: IGraphProto, x: string): LrnLayout {
  for (let p = producerOf(g, x), depth = 0; p && depth < 4; p = producerOf(g, p.input?.[0] ?? ''), depth++) {
    if (p.opType === 'DequantizeLinear' || (p.opType === 'Conv' && !p.domain)) return 'nhwc';
    if (p.opType !== 'Relu') return 'nchw';
  }
  return 'nchw';
}

/**
 * The model with every `LRN` node of its main graph replaced by lrnNodes(), and how many were;
 * undefined when it has none, or keeps weights in external files (the caller then loads the file
 * as it is).
 */
export function expandLrn(bytes: Uint8Array, what = 'model'): { bytes: Uint8Array; expanded: number } | undefined {
  const m = decodeModel(bytes, what);
  const g = m.graph;
  if (!g || !nodesOf(g).some((n) => n.opType === 'LRN' && !n.domain)) return undefined;
  // Weights in external files are found relative to the model's path, which bytes do not carry.
  if ((g.initializer ?? []).some((t) => toNumber(t.dataLocation) === 1)) return undefined;
  const opset = toNumber((m.opsetImport ?? []).find((o) => !o.domain)?.version ?? 13);
  let expanded = 0;
  g.node = nodesOf(g).flatMap((n, i) => {
    const [x, y] = [n.input?.[0], n.output?.[0]];
    if (n.opType !== 'LRN' || n.domain || !x || !y) return [n];
    expanded++;
    return lrnNodes(x, y, `${n.name || y}.expanded${i}`, lrnParams(n), opset, layoutFor(g, x));
  });
  return { bytes: encodeModel(m), expanded };
}
