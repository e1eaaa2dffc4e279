/**
 * The autoencoder's training loop: seeded shuffles, minibatches gathered into one reused buffer,
 * Adam steps, per-epoch history, and the final code statistics recorded in the codes metadata.
 */
import { Autoencoder, normalizationStats, type AutoencoderOptions, type EmbeddingSet } from '../autoencoder.js';
import { mulberry32 } from '../network.js';
import type { EncoderWeights } from './export.js';

export interface AeProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  rec: number;
  cls: number;
}

export interface AeEpoch {
  epoch: number;
  loss: number;
  /** Mean squared reconstruction error of the normalized embedding (≈ unexplained variance). */
  rec: number;
  cls: number;
  /** Code-layer classifier accuracy on the (noisy) training codes; 0 without labels. */
  accuracy: number;
  seconds: number;
}

export interface CodeStats {
  /** Mean over bits of |P(bit = 1) − 0.5| on the training set (0 = perfectly balanced). */
  imbalance: number;
  /** Fraction of code logits with |z| < 1, i.e. bits a small perturbation could flip. */
  unsure: number;
  /** Bits that are constant over the training set (carry no information). */
  deadBits: number;
}

export interface TrainedCodes {
  encoder: EncoderWeights;
  history: AeEpoch[];
  stats: CodeStats;
  seconds: number;
}

function shuffle(order: Uint32Array, rand: () => number): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
}

/** Statistics of sign(z) over the set, computed in chunks through the tfjs encoder. */
export function codeStats(ae: Autoencoder, set: EmbeddingSet, chunk = 1024): CodeStats {
  const bits = ae.opts.bits;
  const ones = new Float64Array(bits);
  let unsure = 0;
  for (let start = 0; start < set.n; start += chunk) {
    const m = Math.min(chunk, set.n - start);
    const z = ae.codeLogits(set.embeddings.subarray(start * set.dim, (start + m) * set.dim), m);
    for (let i = 0; i < m * bits; i++) {
      const v = z[i] as number;
      if (v > 0) ones[i % bits] = (ones[i % bits] as number) + 1;
      if (Math.abs(v) < 1) unsure++;
    }
  }
  let imbalance = 0;
  let deadBits = 0;
  for (let b = 0; b < bits; b++) {
    const p = (ones[b] as number) / set.n;
    imbalance += Math.abs(p - 0.5) / bits;
    if (p === 0 || p === 1) deadBits++;
  }
  return { imbalance, unsure: unsure / (set.n * bits), deadBits };
}

export async function trainAutoencoder(set: EmbeddingSet, opts: AutoencoderOptions, onStep?: (p: AeProgress) => void): Promise<TrainedCodes> {
  if (set.n < 2) throw new Error(`the autoencoder needs at least 2 embeddings, got ${set.n}`);
  if (set.embeddings.length < set.n * set.dim) throw new Error(`'embeddings' holds ${set.embeddings.length} floats, ${set.n} × ${set.dim} needed`);
  const t0 = performance.now();
  const labels = (opts.clsWeight > 0 || opts.centerWeight > 0) && set.labels && (set.numClasses ?? 0) > 1 ? set.labels : undefined;
  const ae = new Autoencoder(set.dim, opts, normalizationStats(set), labels ? (set.numClasses ?? 0) : 0);
  try {
    const batch = Math.min(opts.batch, set.n);
    const steps = Math.floor(set.n / batch);
    const x = new Float32Array(batch * set.dim);
    const y = new Int32Array(batch);
    const order = Uint32Array.from({ length: set.n }, (_, i) => i);
    const rand = mulberry32(opts.seed ^ 0x5bd1e995);
    const history: AeEpoch[] = [];
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const e0 = performance.now();
      shuffle(order, rand);
      const sums = { loss: 0, rec: 0, cls: 0, correct: 0 };
      for (let step = 0; step < steps; step++) {
        for (let i = 0; i < batch; i++) {
          const row = order[step * batch + i] as number;
          x.set(set.embeddings.subarray(row * set.dim, (row + 1) * set.dim), i * set.dim);
          if (labels) y[i] = labels[row] as number;
        }
        const r = ae.trainStep(x, batch, labels ? y : undefined, opts.seed * 100_003 + epoch * steps + step);
        if (!Number.isFinite(r.loss)) throw new Error(`autoencoder loss diverged at epoch ${epoch + 1}, step ${step + 1} (lr ${opts.lr})`);
        sums.loss += r.loss;
        sums.rec += r.rec;
        sums.cls += r.cls;
        sums.correct += r.correct;
        onStep?.({ epoch: epoch + 1, epochs: opts.epochs, step: step + 1, steps, loss: r.loss, rec: r.rec, cls: r.cls });
        // Let progress bars redraw and signals through; a step is tens of milliseconds.
        if (step % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      history.push({
        epoch: epoch + 1, loss: sums.loss / steps, rec: sums.rec / steps, cls: sums.cls / steps,
        accuracy: labels ? sums.correct / (steps * batch) : 0, seconds: (performance.now() - e0) / 1000,
      });
    }
    const stats = codeStats(ae, set);
    return { encoder: await ae.encoderWeights(), history, stats, seconds: (performance.now() - t0) / 1000 };
  } finally {
    ae.dispose();
  }
}
