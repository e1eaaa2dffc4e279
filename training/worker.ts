/**
 * Training worker thread. tfjs-backend-wasm runs one thread in Node, so data parallelism across
 * worker threads is how training uses every core: each worker holds its own wasm backend, computes
 * the gradient of its share of the batch against the SHARED weights, writes it to its own slot,
 * and then applies the paper's SGD update to its own slice of the shared weights (reading all
 * slots). Every worker therefore sees identical weights at every step, with no copies between them.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { getPreset, type Preset } from '../model/index.js';
import { useBackend } from './backend.js';
import { forward, type Params } from './network.js';
import { sgdStep } from './sgd.js';
import { heapView, makeOutput } from './kernels/wasm-util.js';
import { transpose2dInto } from './kernels/transpose.js';
import { nativeConvolutions, setNativeConvolutions } from './kernels/native-conv.js';
import type { FromWorker, InitMessage, ToWorker } from './protocol.js';

if (!parentPort) throw new Error('training/worker.ts must run in a worker thread');
const port = parentPort;

let ctx: InitMessage | undefined;
let preset: Preset | undefined;

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

/**
 * Dense weight matrices at least this large also get a transposed copy (network.ts, denseViaTransposed):
 * fc6 and fc7, not fc8; only when products run on the wasm kernels (onnxruntime's Gemm takes x·W as is).
 */
const TRANSPOSED_MIN = 1 << 20;

/** [rows, cols] of the shared array → a [cols, rows] tensor, transposed on the way into the wasm heap (one pass, no extra copy). */
function uploadTransposed(src: Float32Array, rows: number, cols: number): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm') return tf.tidy(() => tf.transpose(tf.tensor2d(src, [rows, cols])));
  const backend = tf.backend() as unknown as Parameters<typeof heapView>[0];
  const info = makeOutput(backend, [cols, rows]);
  transpose2dInto(src, rows, cols, heapView(backend, info));
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor2D;
}

/** Uploads the shared weights into fresh tensors (one copy into the wasm heap per step; a transposed one too for large dense layers). */
function paramTensors(c: InitMessage, withTransposed: boolean): { vars: tf.Tensor[]; consts: tf.Tensor[]; params: Params } {
  const vars: tf.Tensor[] = [];
  const consts: tf.Tensor[] = [];
  const params: Params = new Map();
  for (const e of c.layout.entries) {
    const src = c.params.subarray(e.wOffset, e.wOffset + e.wSize);
    const w = tf.tensor(src, e.wShape);
    const b = tf.tensor1d(c.params.subarray(e.bOffset, e.bOffset + e.bSize));
    vars.push(w, b);
    const [rows, cols] = e.wShape as [number, number];
    const wT = withTransposed && !nativeConvolutions() && e.wShape.length === 2 && e.wSize >= TRANSPOSED_MIN ? uploadTransposed(src, rows, cols) : undefined;
    if (wT) consts.push(wT);
    params.set(e.name, { w, b, wT });
  }
  return { vars, consts, params };
}

function inputOf(c: InitMessage, p: Preset, buffer: number, offset: number, count: number): tf.Tensor4D {
  const per = p.inputSize * p.inputSize * p.channels;
  const batch = c.batches[buffer];
  if (!batch) throw new Error(`no batch buffer ${buffer}`);
  return tf.tensor4d(batch.subarray(offset * per, (offset + count) * per), [count, p.inputSize, p.inputSize, p.channels]);
}

function labelsOf(c: InitMessage, buffer: number, offset: number, count: number): tf.Tensor1D {
  const l = c.labels[buffer];
  if (!l) throw new Error(`no label buffer ${buffer}`);
  return tf.tensor1d(l.subarray(offset, offset + count), 'int32');
}

function step(c: InitMessage, p: Preset, buffer: number, offset: number, count: number, dropoutSeed: number): FromWorker {
  const t0 = performance.now();
  const { vars, consts, params } = paramTensors(c, true);
  const t1 = performance.now();
  const x = inputOf(c, p, buffer, offset, count);
  const y = labelsOf(c, buffer, offset, count);
  const oneHot = tf.oneHot(y, p.numClasses);
  let logits: tf.Tensor | undefined;
  const f = () => {
    const out = forward(p, params, x, { training: true, dropoutSeed });
    logits = tf.keep(out.logits);
    return tf.losses.softmaxCrossEntropy(oneHot, out.logits) as tf.Scalar;
  };
  const { value, grads } = tf.tidy(() => tf.valueAndGrads(f)(vars));
  const t2 = performance.now();
  const slot = c.gradSlots[c.workerIndex];
  if (!slot) throw new Error(`no gradient slot ${c.workerIndex}`);
  const backend = tf.backend() as unknown as Parameters<typeof heapView>[0];
  // On wasm, read straight out of the heap: a dataSync() copy of 94 MB per step would fault in
  // fresh pages. The cpu backend has no wasm heap: its arrays come through dataSync().
  const values = (t: tf.Tensor): Float32Array => (c.backend === 'wasm' ? heapView(backend, t) : (t.dataSync() as Float32Array));
  c.layout.entries.forEach((e, i) => {
    const gw = grads[2 * i];
    const gb = grads[2 * i + 1];
    if (!gw || !gb) throw new Error(`missing gradient for '${e.name}'`);
    slot.set(values(gw), e.wOffset);
    slot.set(values(gb), e.bOffset);
  });
  const t3 = performance.now();
  const loss = value.dataSync()[0] ?? NaN;
  const pred = logits ? tf.argMax(logits, 1) : tf.zeros([count], 'int32');
  // In a tidy: equal, cast and sum would otherwise stay registered, three tensors leaked per step.
  const correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(pred, y), 'int32')).dataSync()[0] ?? 0);
  tf.dispose([value, ...grads, ...vars, ...consts, x, y, oneHot, pred, ...(logits ? [logits] : [])]);
  const t4 = performance.now();
  return { type: 'stepped', loss, correct, ms: { upload: t1 - t0, compute: t2 - t1, copyOut: t3 - t2, finish: t4 - t3 } };
}

function evaluate(c: InitMessage, p: Preset, buffer: number, offset: number, count: number): FromWorker {
  if (count === 0) return { type: 'evaluated', loss: 0, predictions: new Int32Array(0) };
  return tf.tidy(() => {
    const { params } = paramTensors(c, false);
    const x = inputOf(c, p, buffer, offset, count);
    const y = labelsOf(c, buffer, offset, count);
    const { logits } = forward(p, params, x, { training: false });
    const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, p.numClasses), logits).dataSync()[0] ?? NaN;
    return { type: 'evaluated', loss, predictions: Int32Array.from(tf.argMax(logits, 1).dataSync()) } as FromWorker;
  });
}

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'init') {
    ctx = msg;
    preset = getPreset(msg.preset.name, msg.preset);
    await useBackend(msg.backend);
    setNativeConvolutions(msg.native);
    send({ type: 'ready' });
    return;
  }
  if (msg.type === 'exit') {
    port.close();
    return;
  }
  if (!ctx || !preset) throw new Error('worker used before init');
  if (msg.type === 'step') send(step(ctx, preset, msg.buffer, msg.offset, msg.count, msg.dropoutSeed));
  else if (msg.type === 'eval') send(evaluate(ctx, preset, msg.buffer, msg.offset, msg.count));
  else if (msg.type === 'update') {
    const t0 = performance.now();
    sgdStep(ctx.params, ctx.velocity, ctx.gradSlots, msg.lr, { momentum: msg.momentum, weightDecay: msg.weightDecay }, msg.start, msg.end);
    send({ type: 'updated', ms: performance.now() - t0 });
  }
}

// Messages are handled strictly one after another.
let chain = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg)).catch((err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    send({ type: 'error', message: e.message, stack: e.stack });
  });
});
