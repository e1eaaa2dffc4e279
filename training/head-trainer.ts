/**
 * Trains the dense head (fc8, or fc6–fc8) on cached features with the paper's SGD rule
 * (momentum 0.9, weight decay 0.0005, ε linearly warmed up, divided by 10 on a validation plateau),
 * dropout on every hidden layer's output and on fc8's cached fc7 input as in the source's
 * training. Keeps the weights of the epoch with the best validation accuracy.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerWeights, NamedWeights } from '../model/index.js';
import type { FeatureSet } from './features.js';
import { mulberry32 } from './network.js';
import type { HeadResume } from './head-checkpoint.js';
import { PAPER_SGD } from './sgd.js';
import { epochOrder, mixSeed } from './trainer.js';
import type { EpochRecord, StepProgress } from './types.js';

export interface HeadConfig {
  epochs: number;
  batch: number;
  lr: number;
  minLr: number;
  patience: number;
  warmupSteps: number;
  seed: number;
  dropout: number;
}

export interface HeadEvents {
  onStep?: (p: StepProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** After each epoch, with everything a resumed run needs (the caller checkpoints it). */
  onEpochEnd?: (r: HeadResume) => Promise<void>;
}

interface Layer {
  name: string;
  w: tf.Variable;
  b: tf.Variable;
  vw: tf.Variable;
  vb: tf.Variable;
}

/** N(0, 0.01) weights and zero biases, the paper's init for a new last layer. */
export function newLastLayer(fin: number, classes: number, seed: number): LayerWeights {
  const rand = mulberry32(mixSeed(seed, 0xf8));
  const w = new Float32Array(fin * classes);
  for (let i = 0; i < w.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * 0.01;
    const t = 2 * Math.PI * rand();
    w[i] = r * Math.cos(t);
    if (i + 1 < w.length) w[i + 1] = r * Math.sin(t);
  }
  return { w, wShape: [fin, classes], b: new Float32Array(classes) };
}

/** Logits of the head for the rows of `x` (inference: no dropout). */
export function headForward(layers: readonly { w: tf.Tensor; b: tf.Tensor }[], x: tf.Tensor2D, train = false, dropout = 0, seed = 0): tf.Tensor2D {
  let h: tf.Tensor2D = x;
  if (train && dropout > 0 && layers.length === 1) h = tf.dropout(h, dropout, undefined, seed) as tf.Tensor2D;
  layers.forEach((l, i) => {
    h = tf.add(tf.matMul(h, l.w as tf.Tensor2D), l.b) as tf.Tensor2D;
    if (i < layers.length - 1) {
      h = tf.relu(h);
      if (train && dropout > 0) h = tf.dropout(h, dropout, undefined, seed * 31 + i) as tf.Tensor2D;
    }
  });
  return h;
}

async function snapshot(layers: Layer[]): Promise<NamedWeights> {
  const out: NamedWeights = new Map();
  for (const l of layers) out.set(l.name, { w: new Float32Array(await l.w.data()), wShape: [...l.w.shape], b: new Float32Array(await l.b.data()) });
  return out;
}

function accuracy(layers: Layer[], set: FeatureSet): { loss: number; accuracy: number } {
  return tf.tidy(() => {
    const x = tf.tensor2d(set.x, [set.rows, set.width]);
    const logits = headForward(layers, x);
    const y = tf.oneHot(tf.tensor1d(set.labels, 'int32'), logits.shape[1] ?? 1);
    const loss = tf.losses.softmaxCrossEntropy(y, logits).dataSync()[0] ?? NaN;
    const pred = logits.argMax(1).dataSync();
    let ok = 0;
    pred.forEach((p, i) => (ok += p === set.labels[i] ? 1 : 0));
    return { loss, accuracy: ok / set.rows };
  });
}

/** Trains the head from `init`, or continues a checkpointed run exactly where it ended (`resume`). */
export async function trainHead(init: NamedWeights, order: string[], train: FeatureSet, val: FeatureSet | undefined, cfg: HeadConfig, events: HeadEvents = {}, resume?: HeadResume): Promise<{ weights: NamedWeights; history: EpochRecord[]; bestEpoch: number }> {
  const layers: Layer[] = order.map((name) => {
    const lw = (resume?.current ?? init).get(name);
    const v = resume?.velocity.get(name);
    if (!lw) throw new Error(`no initial weights for '${name}'`);
    return {
      name, w: tf.variable(tf.tensor2d(lw.w, lw.wShape as [number, number])), b: tf.variable(tf.tensor1d(lw.b)),
      vw: tf.variable(v ? tf.tensor2d(v.w, v.wShape as [number, number]) : tf.zeros(lw.wShape)), vb: tf.variable(v ? tf.tensor1d(v.b) : tf.zeros([lw.b.length])),
    };
  });
  const steps = Math.floor(train.rows / cfg.batch);
  const history: EpochRecord[] = [...(resume?.state.history ?? [])];
  let lr = resume?.state.lr ?? cfg.lr;
  let best = resume?.best ?? (await snapshot(layers));
  let bestAcc = resume?.state.bestAcc ?? -1;
  let bestEpoch = resume?.state.bestEpoch ?? 0;
  let bad = resume?.state.bad ?? 0;
  try {
    for (let epoch = resume?.state.epoch ?? 0; epoch < cfg.epochs; epoch++) {
      const perm = epochOrder(train.rows, cfg.seed, epoch);
      const t0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      for (let s = 0; s < steps; s++) {
        const idx = perm.subarray(s * cfg.batch, (s + 1) * cfg.batch);
        const xb = new Float32Array(cfg.batch * train.width);
        const yb = new Int32Array(cfg.batch);
        idx.forEach((r, i) => {
          xb.set(train.x.subarray(r * train.width, (r + 1) * train.width), i * train.width);
          yb[i] = train.labels[r] as number;
        });
        const global = epoch * steps + s;
        const stepLr = cfg.warmupSteps > 0 && global < cfg.warmupSteps ? (lr * (global + 1)) / cfg.warmupSteps : lr;
        const [loss, ok] = tf.tidy(() => {
          const x = tf.tensor2d(xb, [cfg.batch, train.width]);
          const y = tf.oneHot(tf.tensor1d(yb, 'int32'), layers.at(-1)?.w.shape[1] ?? 1);
          const vars = layers.flatMap((l) => [l.w, l.b]);
          let logits: tf.Tensor2D | undefined;
          const { value, grads } = tf.variableGrads(() => {
            // Kept past variableGrads' own tidy for the step's accuracy; disposed below.
            logits = tf.keep(headForward(layers, x, true, cfg.dropout, mixSeed(cfg.seed, epoch, s, 2)));
            return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
          }, vars);
          // The paper's rule: v ← m·v − decay·ε·w − ε·g; w ← w + v.
          for (const l of layers) {
            for (const [p, v] of [[l.w, l.vw], [l.b, l.vb]] as const) {
              const g = grads[p.name] as tf.Tensor;
              v.assign(tf.sub(tf.sub(tf.mul(v, PAPER_SGD.momentum), tf.mul(p, PAPER_SGD.weightDecay * stepLr)), tf.mul(g, stepLr)));
              p.assign(tf.add(p, v));
            }
          }
          const pred = (logits as tf.Tensor2D).argMax(1).dataSync();
          (logits as tf.Tensor2D).dispose();
          let c = 0;
          pred.forEach((p, i) => (c += p === yb[i] ? 1 : 0));
          return [value.dataSync()[0] ?? NaN, c];
        });
        if (!Number.isFinite(loss)) throw new Error(`fine-tuning diverged: loss is ${loss} at epoch ${epoch + 1} step ${s + 1}; lower --lr`);
        lossSum += loss * cfg.batch;
        correct += ok;
        const seen = (s + 1) * cfg.batch;
        const secs = (performance.now() - t0) / 1000;
        events.onStep?.({ epoch: epoch + 1, epochs: cfg.epochs, step: s + 1, steps, loss: lossSum / seen, accuracy: correct / seen, imagesPerSecond: seen / Math.max(secs, 1e-9), etaSeconds: ((steps - s - 1) * secs) / (s + 1), lr: stepLr });
      }
      const v = val ? accuracy(layers, val) : undefined;
      const seconds = (performance.now() - t0) / 1000;
      const record: EpochRecord = { epoch: epoch + 1, lr, trainLoss: lossSum / (steps * cfg.batch), trainAccuracy: correct / (steps * cfg.batch), valLoss: v?.loss, valAccuracy: v?.accuracy, seconds, imagesPerSecond: (steps * cfg.batch) / Math.max(seconds, 1e-9) };
      history.push(record);
      events.onEpoch?.(record);
      // Without a validation set the last epoch's weights are kept.
      const score = v?.accuracy ?? epoch;
      if (score >= bestAcc) {
        if (v === undefined || score > bestAcc + 1e-9) bad = 0;
        bestAcc = score;
        bestEpoch = epoch + 1;
        best = await snapshot(layers);
      } else if (++bad >= cfg.patience) {
        lr = Math.max(lr / 10, cfg.minLr);
        bad = 0;
      }
      if (events.onEpochEnd) {
        const velocity: NamedWeights = new Map();
        for (const l of layers) velocity.set(l.name, { w: new Float32Array(await l.vw.data()), wShape: [...l.vw.shape], b: new Float32Array(await l.vb.data()) });
        await events.onEpochEnd({ state: { epoch: epoch + 1, lr, bestAcc, bestEpoch, bad, history: [...history], batch: cfg.batch, warmupSteps: cfg.warmupSteps }, current: await snapshot(layers), velocity, best });
      }
    }
    return { weights: best, history, bestEpoch };
  } finally {
    for (const l of layers) tf.dispose([l.w, l.b, l.vw, l.vb]);
  }
}
