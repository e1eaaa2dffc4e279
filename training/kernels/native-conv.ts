/**
 * Stride-1 convolutions of training (forward, input gradient, filter gradient) on onnxruntime's
 * native CPU kernels instead of the wasm backend's XNNPACK. XNNPACK compiled to WebAssembly gets
 * 128-bit SIMD without FMA; onnxruntime-node's MLAS uses the machine's AVX2/AVX-512 FMA: measured
 * here, one thread, batch 64: conv2 forward 80 vs 294–568 ms of CPU, conv4 63 vs 300 (3.5–5×).
 *
 * tfjs kernels are synchronous and onnxruntime-node's public run() returns a promise, but its
 * native binding runs synchronously (the promise only wraps it in setImmediate), so the kernels call
 * the binding directly. One tiny graph per op and shape (layout changes included, as native
 * Transposes), built on first use and cached per thread; inputs are read in place from the wasm
 * heap and the result copied into a new wasm tensor.
 *
 *   forward:  y  = Conv(x, w)                                   x NHWC, w HWIO → y NHWC
 *   input:    dx = ConvTranspose(dy, w)                         the adjoint of Conv with the same w and pads
 *   filter:   dW = Conv(xᵀ, dyᵀ) with the batch as channels     [CI,B,H,W] ⊛ [CO,B,OH,OW] → [CI,CO,KH,KW]
 *
 * Anything else (strides, dilations, NCHW, grouped shapes) stays on the wasm kernels.
 */
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { attr, DataType, encodeModel, modelProto, node, valueInfo } from '../../model/index.js';
import { heapView, makeOutput, type Backend } from './wasm-util.js';

interface NativeSession {
  loadModel(buffer: ArrayBufferLike, offset: number, length: number, options: object): void;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor>;
}

interface Binding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

let native: Binding | undefined;
/** Why the native binding could not be loaded (then every kernel stays on wasm); undefined while it works. */
let unavailable: string | undefined;

/**
 * The binding is not onnxruntime-node's public API (tested with 1.30): if a later release moves or
 * changes it, training falls back to the wasm kernels (slower, same results) and says why once.
 */
function loadBinding(): Binding | undefined {
  if (native || unavailable !== undefined) return native;
  try {
    const b = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<Binding>;
    if (typeof b.initOrt !== 'function' || typeof b.binding?.InferenceSession !== 'function') {
      throw new Error('onnxruntime-node/dist/binding.js has no initOrt() or binding.InferenceSession');
    }
    b.initOrt();
    native = b as Binding;
  } catch (e: unknown) {
    unavailable = e instanceof Error ? e.message : String(e);
    process.emitWarning(`training: onnxruntime's native kernels are not usable (${unavailable}); convolutions run on the wasm kernels`);
  }
  return native;
}

function binding(): Binding {
  const b = loadBinding();
  if (!b) throw new Error(`onnxruntime native binding unavailable: ${unavailable ?? 'not loaded'}`);
  return b;
}

/** The native path is taken when it is switched on and the binding loads. */
function active(): boolean {
  return enabled && loadBinding() !== undefined;
}

const sessions = new Map<string, NativeSession>();

/** Sessions built so far in this thread (tests check that the native path is the one taken). */
export function nativeSessionCount(): number {
  return sessions.size;
}

/** One thread per session: each training worker thread owns one core. */
const SESSION_OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' };

function session(key: string, build: () => Uint8Array): NativeSession {
  let s = sessions.get(key);
  if (!s) {
    const bytes = build();
    s = new (binding().binding.InferenceSession)();
    s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, SESSION_OPTIONS);
    sessions.set(key, s);
  }
  return s;
}

type Shape4 = [number, number, number, number];

function graphModel(name: string, nodes: ReturnType<typeof node>[], inputs: [string, Shape4][], output: [string, Shape4]): Uint8Array {
  return encodeModel(modelProto({
    name,
    node: nodes,
    input: inputs.map(([n, s]) => valueInfo(n, DataType.FLOAT, s)),
    output: [valueInfo(output[0], DataType.FLOAT, output[1])],
  }));
}

/** Stride-1, undilated, NHWC convolution geometry (or undefined when this module does not handle it). */
export interface Geometry {
  x: Shape4;
  w: Shape4;
  y: Shape4;
  /** ONNX pads: [top, left, bottom, right]. */
  pads: [number, number, number, number];
}

function geometry(info: tf.backend_util.Conv2DInfo): Geometry | undefined {
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  if (info.dataFormat !== 'channelsLast') return undefined;
  const { top, left, bottom, right } = info.padInfo;
  return {
    x: [info.batchSize, info.inHeight, info.inWidth, info.inChannels],
    w: [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels],
    y: [info.batchSize, info.outHeight, info.outWidth, info.outChannels],
    pads: [top, left, bottom, right],
  };
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];

export function forwardModel(g: Geometry): Uint8Array {
  return graphModel('conv', [
    node('Transpose', ['x'], ['xn'], 'x_nchw', [attr.ints('perm', NHWC_TO_NCHW)]),
    node('Transpose', ['w'], ['wn'], 'w_oihw', [attr.ints('perm', HWIO_TO_OIHW)]),
    node('Conv', ['xn', 'wn'], ['yn'], 'conv', [attr.ints('kernel_shape', [g.w[0], g.w[1]]), attr.ints('pads', g.pads)]),
    node('Transpose', ['yn'], ['y'], 'y_nhwc', [attr.ints('perm', NCHW_TO_NHWC)]),
  ], [['x', g.x], ['w', g.w]], ['y', g.y]);
}

/** ConvTranspose takes the forward weight as [C_in of dy = CO, CI, KH, KW]: the same OIHW array. */
export function inputGradModel(g: Geometry): Uint8Array {
  return graphModel('conv_input_grad', [
    node('Transpose', ['dy'], ['dyn'], 'dy_nchw', [attr.ints('perm', NHWC_TO_NCHW)]),
    node('Transpose', ['w'], ['wn'], 'w_oihw', [attr.ints('perm', HWIO_TO_OIHW)]),
    node('ConvTranspose', ['dyn', 'wn'], ['dxn'], 'conv_t', [attr.ints('kernel_shape', [g.w[0], g.w[1]]), attr.ints('pads', g.pads)]),
    node('Transpose', ['dxn'], ['dx'], 'dx_nhwc', [attr.ints('perm', NCHW_TO_NHWC)]),
  ], [['dy', g.y], ['w', g.w]], ['dx', g.x]);
}

/**
 * dW[kh, kw, ci, co] = Σ_{b, oh, ow} xpad[b, oh + kh, ow + kw, ci] · dy[b, oh, ow, co]: a convolution
 * of x with CI as its batch and B as its channels by dy with CO as its filters and OH×OW as taps.
 */
export function filterGradModel(g: Geometry): Uint8Array {
  return graphModel('conv_filter_grad', [
    node('Transpose', ['x'], ['xt'], 'x_cbhw', [attr.ints('perm', [3, 0, 1, 2])]),
    node('Transpose', ['dy'], ['dyt'], 'dy_obhw', [attr.ints('perm', [3, 0, 1, 2])]),
    node('Conv', ['xt', 'dyt'], ['gt'], 'conv', [attr.ints('kernel_shape', [g.y[1], g.y[2]]), attr.ints('pads', g.pads)]),
    node('Transpose', ['gt'], ['dw'], 'dw_hwio', [attr.ints('perm', [2, 3, 0, 1])]),
  ], [['x', g.x], ['dy', g.y]], ['dw', g.w]);
}

function run(s: NativeSession, backend: Backend, feeds: Record<string, [TensorInfo, number[]]>, output: string, shape: number[]): TensorInfo {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, [t, dims]] of Object.entries(feeds)) tensors[name] = new ort.Tensor('float32', heapView(backend, t), dims);
  const result = s.run(tensors, { [output]: null }, {})[output];
  if (!result) throw new Error(`native convolution returned no '${output}'`);
  const out = makeOutput(backend, [...shape]);
  // The view is taken after makeOutput: allocating may grow (and so replace) the heap buffer.
  heapView(backend, out).set(result.data as Float32Array);
  return out;
}

/** Off: every convolution stays on the wasm kernels (the train bench's comparison, or a machine where the native binding fails). */
let enabled = true;

export function setNativeConvolutions(on: boolean): void {
  enabled = on;
}

export function nativeConvolutions(): boolean {
  return active();
}

const key = (op: string, g: Geometry): string => `${op}:${g.x.join('x')}:${g.w.join('x')}:${g.pads.join(',')}`;

function convInfo(xShape: number[], filterShape: number[], attrs: { strides: number | [number, number]; pad: unknown; dimRoundingMode?: unknown; dilations?: number | [number, number]; dataFormat?: string }): tf.backend_util.Conv2DInfo {
  const format = attrs.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast';
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, attrs.strides, attrs.dilations ?? 1,
    attrs.pad as 'same', attrs.dimRoundingMode as 'round' | undefined, false, format,
  );
}

/** A plain float32 matrix product: Gemm (transA/transB are native to its kernel, no transposed copies). */
export function gemmModel(a: [number, number], b: [number, number], transA: boolean, transB: boolean): Uint8Array {
  const m = transA ? a[1] : a[0];
  const n = transB ? b[0] : b[1];
  return encodeModel(modelProto({
    name: 'gemm',
    node: [node('Gemm', ['a', 'b'], ['c'], 'gemm', [attr.int('transA', transA ? 1 : 0), attr.int('transB', transB ? 1 : 0)])],
    input: [valueInfo('a', DataType.FLOAT, a), valueInfo('b', DataType.FLOAT, b)],
    output: [valueInfo('c', DataType.FLOAT, [m, n])],
  }));
}

/** BatchMatMul of two float32 matrices (rank 2, or rank 3 with batch 1) on onnxruntime's Gemm. */
export function makeNativeBatchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = args.inputs['a'] as TensorInfo;
    const b = args.inputs['b'] as TensorInfo;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const rank = a.shape.length;
    const plain = rank === b.shape.length && (rank === 2 || (rank === 3 && a.shape[0] === 1 && b.shape[0] === 1));
    if (!plain || a.dtype !== 'float32' || b.dtype !== 'float32' || !active()) return original(args);
    const am = a.shape.slice(-2) as [number, number];
    const bm = b.shape.slice(-2) as [number, number];
    const m = transposeA ? am[1] : am[0];
    const n = transposeB ? bm[0] : bm[1];
    const s = session(`gemm:${am.join('x')}:${bm.join('x')}:${+transposeA}${+transposeB}`, () => gemmModel(am, bm, transposeA, transposeB));
    return run(s, args.backend, { a: [a, am], b: [b, bm] }, 'c', rank === 3 ? [1, m, n] : [m, n]);
  };
}

/** Which of a Geometry's shapes a graph tensor has. */
type Side = 'x' | 'w' | 'y';

/**
 * The tfjs kernel wrapper of one convolution op: `shapes` picks the x and w shapes its geometry is
 * computed from (from an input, or from the attribute naming the shape a gradient computes); each
 * tfjs input is fed to its graph input with the geometry's shape for it, and the graph output comes
 * back with the geometry's shape. What geometry() rejects, and everything while the native path is
 * off, stays on the wasm kernel (`original`).
 */
function nativeConvKernel(
  op: string,
  model: (g: Geometry) => Uint8Array,
  shapes: (inputs: NamedTensorInfoMap, attrs: unknown) => [number[], number[]],
  inputs: readonly [tfjs: string, graph: string, side: Side][],
  output: [graph: string, side: Side],
): (original: KernelFunc) => KernelFunc {
  return (original) => (args) => {
    const [xShape, wShape] = shapes(args.inputs, args.attrs);
    const g = geometry(convInfo(xShape, wShape, args.attrs as never));
    if (!g || !active()) return original(args);
    const feeds: Record<string, [TensorInfo, number[]]> = {};
    for (const [tfjs, graph, side] of inputs) feeds[graph] = [args.inputs[tfjs] as TensorInfo, g[side]];
    return run(session(key(op, g), () => model(g)), args.backend, feeds, output[0], g[output[1]]);
  };
}

const tensor = (inputs: NamedTensorInfoMap, name: string): TensorInfo => inputs[name] as TensorInfo;

export const makeNativeConv2D = nativeConvKernel('fwd', forwardModel,
  (i) => [tensor(i, 'x').shape, tensor(i, 'filter').shape],
  [['x', 'x', 'x'], ['filter', 'w', 'w']], ['y', 'y']);

export const makeNativeConv2DBackpropInput = nativeConvKernel('input', inputGradModel,
  (i, attrs) => [(attrs as tf.Conv2DBackpropInputAttrs).inputShape, tensor(i, 'filter').shape],
  [['dy', 'dy', 'y'], ['filter', 'w', 'w']], ['dx', 'x']);

export const makeNativeConv2DBackpropFilter = nativeConvKernel('filter', filterGradModel,
  (i, attrs) => [tensor(i, 'x').shape, (attrs as tf.Conv2DBackpropFilterAttrs).filterShape],
  [['x', 'x', 'x'], ['dy', 'dy', 'y']], ['dw', 'w']);
