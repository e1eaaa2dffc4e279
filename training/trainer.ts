/**
 * The training loop: data-parallel SGD over worker threads, the paper's recipe, deterministic
 * from a seed (data order, crops, flips and dropout masks all derive from (seed, epoch, step)),
 * so a run resumed from a checkpoint continues exactly as if it had never stopped.
 */
import { getPreset, type Preset } from '../model/index.js';
import type { NamedWeights } from '../model/index.js';
import { fillBatch } from './augment.js';
import { loadCheckpointArrays, saveCheckpoint, CHECKPOINT_FORMAT } from './checkpoint.js';
import type { SquareDataset } from './data/dataset.js';
import { initWeights, mulberry32 } from './network.js';
import { packWeights, paramLayout, sharedFloats, unpackWeights, type ParamLayout } from './params.js';
import { rgbCovariance, symmetricEigen3, type ColorPca } from './pca.js';
import { WorkerPool } from './pool.js';
import type { RunArgs } from './options.js';
import type { WorkerStepTimes } from './protocol.js';
import type { EpochRecord, StepPhases, StepProgress, TrainConfig, TrainState } from './types.js';

export interface TrainerEvents {
  onStep?: (p: StepProgress) => void;
  onEpoch?: (r: EpochRecord, state: TrainState) => void;
  onCheckpoint?: (dir: string) => void;
}

/** Mixes integers into a 32-bit seed (FNV-1a over the words). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(mixSeed(seed, epoch, 0x5eed));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  return order;
}

export function initialState(cfg: TrainConfig): TrainState {
  return {
    epoch: 0, step: 0, lr: cfg.lr, bestValError: Infinity, badEpochs: 0,
    epochLossSum: 0, epochCorrect: 0, epochSeen: 0, epochSeconds: 0, totalSeconds: 0, history: [],
  };
}

/** End-of-epoch learning-rate schedule: fixed drops and/or divide by 10 on a validation plateau. */
export function scheduleAfterEpoch(cfg: TrainConfig, state: TrainState, valError: number | undefined): void {
  let drop = cfg.lrDrops.includes(state.epoch + 2);
  if (valError !== undefined) {
    if (valError < state.bestValError - 1e-4) {
      state.bestValError = valError;
      state.badEpochs = 0;
    } else if (++state.badEpochs >= cfg.patience) {
      drop = true;
      state.badEpochs = 0;
    }
  }
  if (drop) state.lr = Math.max(state.lr / 10, cfg.minLr);
}

function phasesOf(workers: WorkerStepTimes[], updates: number[], fill: number, stepWait: number, updateWait: number): StepPhases {
  const slowest = (k: keyof WorkerStepTimes) => Math.max(...workers.map((w) => w[k]));
  return {
    fill, stepWait, updateWait, upload: slowest('upload'), compute: slowest('compute'), copyOut: slowest('copyOut'),
    finish: slowest('finish'), update: Math.max(...updates),
  };
}

export class Trainer {
  private stopRequested = false;
  readonly preset: Preset;
  readonly layout: ParamLayout;
  readonly params: Float32Array;
  readonly velocity: Float32Array;
  private readonly batches: Float32Array[];
  private readonly labels: Int32Array[];
  private readonly pca: ColorPca | undefined;
  private pool: WorkerPool | undefined;
  /** Recorded in every checkpoint (training/options.ts). */
  runArgs: RunArgs | undefined;
  /** Convolutions and matrix products on onnxruntime's native kernels (off: all on wasm; the train bench compares both). */
  nativeKernels = true;
  /** Checkpoint also every this many steps within an epoch (0: at epoch ends and on stop only). */
  checkpointEvery = 0;

  constructor(
    readonly cfg: TrainConfig,
    readonly train: SquareDataset,
    readonly val: SquareDataset | undefined,
    readonly state: TrainState = initialState(cfg),
  ) {
    if (cfg.batch % cfg.workers !== 0) throw new Error(`--batch ${cfg.batch} must be a multiple of the worker count ${cfg.workers}`);
    if (train.n < cfg.batch) throw new Error(`the training set has ${train.n} images, fewer than one batch of ${cfg.batch}; lower --batch`);
    this.preset = getPreset(cfg.preset.name, cfg.preset);
    this.layout = paramLayout(this.preset);
    this.params = sharedFloats(this.layout.total);
    this.velocity = sharedFloats(this.layout.total);
    const per = this.preset.inputSize * this.preset.inputSize * this.preset.channels;
    const rows = Math.max(cfg.batch, 256);
    this.batches = [sharedFloats(rows * per), sharedFloats(rows * per)];
    this.labels = [new Int32Array(new SharedArrayBuffer(rows * 4)), new Int32Array(new SharedArrayBuffer(rows * 4))];
    this.pca = train.channels === 3 && cfg.pcaStd > 0 ? symmetricEigen3(rgbCovariance(train)) : undefined;
  }

  initWeights(): void {
    packWeights(this.layout, initWeights(this.preset, this.cfg.init, this.cfg.seed), this.params);
    this.velocity.fill(0);
  }

  /** Starts from given weights (fine-tuning every layer of a trained model). */
  setWeights(weights: NamedWeights): void {
    packWeights(this.layout, weights, this.params);
    this.velocity.fill(0);
  }

  async loadCheckpoint(dir: string): Promise<void> {
    await loadCheckpointArrays(dir, this.params, this.velocity);
  }

  async saveCheckpoint(dir: string): Promise<void> {
    await saveCheckpoint(dir, { format: CHECKPOINT_FORMAT, config: this.cfg, state: this.state, args: this.runArgs }, this.params, this.velocity);
  }

  weights(): NamedWeights {
    return unpackWeights(this.layout, this.params);
  }

  /** Finish the current step, checkpoint and return (Ctrl-C). */
  requestStop(): void {
    this.stopRequested = true;
  }

  private async startPool(): Promise<WorkerPool> {
    if (this.pool) return this.pool;
    const gradSlots = Array.from({ length: this.cfg.workers }, () => sharedFloats(this.layout.total));
    this.pool = await WorkerPool.start(this.cfg.workers, (workerIndex) => ({
      type: 'init', workerIndex, preset: this.cfg.preset, layout: this.layout, params: this.params,
      velocity: this.velocity, gradSlots, batches: this.batches, labels: this.labels, backend: this.cfg.backend, native: this.nativeKernels,
    }));
    return this.pool;
  }

  private fill(buffer: number, ds: SquareDataset, indices: Uint32Array, augment: boolean, seed: number): void {
    const rand = mulberry32(seed);
    const batch = this.batches[buffer] as Float32Array;
    const labels = this.labels[buffer] as Int32Array;
    fillBatch(ds, { indices, inputSize: this.preset.inputSize, augment, rand, pca: this.pca, pcaStd: this.cfg.pcaStd, erasing: this.cfg.randomErasing ?? 0 }, this.cfg.normalization, batch);
    indices.forEach((j, i) => (labels[i] = ds.labels[j] as number));
  }

  private stepLr(globalStep: number): number {
    const w = this.cfg.warmupSteps;
    return w > 0 && globalStep < w ? (this.state.lr * (globalStep + 1)) / w : this.state.lr;
  }

  /** Runs until the configured epoch count or a stop request; checkpoints each epoch, on stop and every `checkpointEvery` steps. */
  async run(checkpointDir: string | undefined, events: TrainerEvents = {}): Promise<{ stopped: boolean }> {
    const pool = await this.startPool();
    const { cfg, state } = this;
    const steps = Math.floor(this.train.n / cfg.batch);
    const share = cfg.batch / cfg.workers;
    const chunk = Math.ceil(this.layout.total / cfg.workers);
    while (state.epoch < cfg.epochs) {
      const order = epochOrder(this.train.n, cfg.seed, state.epoch);
      const indicesOf = (s: number) => order.subarray(s * cfg.batch, (s + 1) * cfg.batch);
      let buffer = 0;
      if (state.step < steps) this.fill(buffer, this.train, indicesOf(state.step), true, mixSeed(cfg.seed, state.epoch, state.step, 1));
      while (state.step < steps) {
        const t0 = performance.now();
        const s = state.step;
        const tStart = performance.now();
        const stepping = pool.all((w) => ({ type: 'step', buffer, offset: w * share, count: share, dropoutSeed: mixSeed(cfg.seed, state.epoch, s, 2, w) }), 'stepped');
        // Overlap: prepare the next batch while the workers compute this one.
        if (s + 1 < steps) this.fill(1 - buffer, this.train, indicesOf(s + 1), true, mixSeed(cfg.seed, state.epoch, s + 1, 1));
        const tFilled = performance.now();
        const replies = await stepping;
        const tStepped = performance.now();
        const lr = this.stepLr(state.epoch * steps + s);
        const updates = await pool.all((w) => ({ type: 'update', start: w * chunk, end: Math.min((w + 1) * chunk, this.layout.total), lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay }), 'updated');
        const loss = replies.reduce((a, r) => a + r.loss, 0) / replies.length;
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${state.epoch + 1} step ${s + 1}; lower --lr`);
        state.epochLossSum += loss * cfg.batch;
        state.epochCorrect += replies.reduce((a, r) => a + r.correct, 0);
        state.epochSeen += cfg.batch;
        const tUpdated = performance.now();
        const seconds = (tUpdated - t0) / 1000;
        state.epochSeconds += seconds;
        state.totalSeconds += seconds;
        state.step = s + 1;
        buffer = 1 - buffer;
        const ips = state.epochSeen / Math.max(state.epochSeconds, 1e-9);
        events.onStep?.({
          epoch: state.epoch + 1, epochs: cfg.epochs, step: state.step, steps, loss: state.epochLossSum / state.epochSeen,
          accuracy: state.epochCorrect / state.epochSeen, imagesPerSecond: ips, etaSeconds: ((steps - state.step) * cfg.batch) / ips, lr,
          phases: phasesOf(replies.map((r) => r.ms), updates.map((u) => u.ms), tFilled - tStart, tStepped - tStart, tUpdated - tStepped),
        });
        if (this.stopRequested) {
          if (checkpointDir) await this.checkpoint(checkpointDir, events);
          return { stopped: true };
        }
        if (checkpointDir && this.checkpointEvery > 0 && state.step % this.checkpointEvery === 0 && state.step < steps) await this.checkpoint(checkpointDir, events);
      }
      const v = this.val ? await this.evaluate(this.val) : undefined;
      const record: EpochRecord = {
        epoch: state.epoch + 1, lr: state.lr, trainLoss: state.epochLossSum / Math.max(state.epochSeen, 1),
        trainAccuracy: state.epochCorrect / Math.max(state.epochSeen, 1), valLoss: v?.loss, valAccuracy: v?.accuracy,
        seconds: state.epochSeconds, imagesPerSecond: state.epochSeen / Math.max(state.epochSeconds, 1e-9),
      };
      state.history.push(record);
      scheduleAfterEpoch(cfg, state, v ? 1 - v.accuracy : undefined);
      Object.assign(state, { epoch: state.epoch + 1, step: 0, epochLossSum: 0, epochCorrect: 0, epochSeen: 0, epochSeconds: 0 });
      events.onEpoch?.(record, state);
      if (checkpointDir) await this.checkpoint(checkpointDir, events);
    }
    return { stopped: false };
  }

  private async checkpoint(dir: string, events: TrainerEvents): Promise<void> {
    await this.saveCheckpoint(dir);
    events.onCheckpoint?.(dir);
  }

  /** Center-crop (1-crop) loss and accuracy with the current weights, computed by the workers. */
  async evaluate(ds: SquareDataset): Promise<{ loss: number; accuracy: number; predictions: Int32Array }> {
    const pool = await this.startPool();
    const rows = (this.labels[0] as Int32Array).length;
    const predictions = new Int32Array(ds.n);
    let lossSum = 0;
    for (let start = 0; start < ds.n; start += rows) {
      const count = Math.min(rows, ds.n - start);
      const indices = Uint32Array.from({ length: count }, (_, i) => start + i);
      this.fill(0, ds, indices, false, 0);
      const share = Math.ceil(count / pool.size);
      const parts = await pool.all((w) => ({ type: 'eval', buffer: 0, offset: Math.min(w * share, count), count: Math.max(0, Math.min(share, count - w * share)) }), 'evaluated');
      parts.forEach((p, w) => {
        predictions.set(p.predictions, start + w * share);
        if (p.predictions.length > 0) lossSum += p.loss * p.predictions.length;
      });
    }
    let correct = 0;
    predictions.forEach((p, i) => (correct += p === ds.labels[i] ? 1 : 0));
    return { loss: lossSum / ds.n, accuracy: correct / ds.n, predictions };
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}
