/** Training configuration and resumable state. */
import type { InitScheme } from './network.js';
import type { PresetSpec } from './protocol.js';

export interface TrainConfig {
  preset: PresetSpec;
  epochs: number;
  /** Images per SGD step (the paper: 128); split evenly across workers. */
  batch: number;
  /** Initial learning rate ε (the paper: 0.01). */
  lr: number;
  /** The learning rate is never divided below this. */
  minLr: number;
  /** Divide ε by 10 after this many epochs without a validation-error improvement (needs a validation set). */
  patience: number;
  /** Also divide ε by 10 at the start of these (1-based) epochs, e.g. [11, 16]. */
  lrDrops: number[];
  /** Linear warm-up of ε over the first steps (He init stalls at ε = 0.01 without one). */
  warmupSteps: number;
  init: InitScheme;
  seed: number;
  momentum: number;
  weightDecay: number;
  workers: number;
  backend: 'wasm' | 'cpu';
  /** σ of the PCA color augmentation's α (the paper: 0.1); RGB data only. */
  pcaStd: number;
  /** Random-erasing probability per training image (training/erasing.ts); absent in older checkpoints: 0, off. */
  randomErasing?: number;
  /** Preprocessing normalization computed over the training set (stored in the model contract). */
  normalization: { scale: number; mean: number[]; std: number[] };
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface TrainState {
  /** 0-based epoch in progress. */
  epoch: number;
  /** Next step within that epoch. */
  step: number;
  lr: number;
  bestValError: number;
  badEpochs: number;
  /** Running sums over the current epoch (so a mid-epoch resume reports the same epoch metrics). */
  epochLossSum: number;
  epochCorrect: number;
  epochSeen: number;
  epochSeconds: number;
  totalSeconds: number;
  history: EpochRecord[];
}

/** Where one step's wall time went (ms); worker figures are the slowest worker's. */
export interface StepPhases {
  /** Main thread: assembling the next batch (overlaps the workers' compute). */
  fill: number;
  /** Main thread waiting for every worker's gradient. */
  stepWait: number;
  /** Main thread waiting for the SGD update of every slice. */
  updateWait: number;
  upload: number;
  compute: number;
  copyOut: number;
  finish: number;
  update: number;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
  lr: number;
  /** Timing breakdown of this step (not of the epoch). */
  phases?: StepPhases;
}
