/**
 * A tiny real AlexNet-shaped ONNX model for the model/ tests: 3×32×32 crops from a 36² square,
 * conv widths 8, dense 64-64-5, exported by our own exporter with seeded He weights. Seed 14 is
 * chosen so that the fixture photos get different top labels and only partial crop agreement.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Preset } from '../../model/architecture.js';
import { PAPER_LRN } from '../../model/architecture.js';
import type { PreprocessContract } from '../../model/contract.js';
import { exportOnnx } from '../../model/onnx/export.js';
import type { NamedWeights } from '../../model/weights.js';
import { initWeights } from '../../training/network.js';

export const TINY_LABELS = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];

export const tinyPreset: Preset = {
  name: 'tiny-test',
  channels: 3,
  inputSize: 32,
  resizeSize: 36,
  numClasses: TINY_LABELS.length,
  layers: [
    { kind: 'conv', name: 'conv1', filters: 8, kernel: 5, stride: 1, pad: 2, biasInit: 0, lrn: true, pool: true },
    { kind: 'conv', name: 'conv2', filters: 8, kernel: 3, stride: 1, pad: 1, biasInit: 1, lrn: true, pool: true },
    { kind: 'conv', name: 'conv3', filters: 8, kernel: 3, stride: 1, pad: 1, biasInit: 0, lrn: false, pool: false },
    { kind: 'conv', name: 'conv4', filters: 8, kernel: 3, stride: 1, pad: 1, biasInit: 1, lrn: false, pool: false },
    { kind: 'conv', name: 'conv5', filters: 8, kernel: 3, stride: 1, pad: 1, biasInit: 1, lrn: false, pool: true },
    { kind: 'dense', name: 'fc6', units: 64, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc7', units: 64, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc8', units: TINY_LABELS.length, biasInit: 0, hidden: false },
  ],
  pool: { size: 3, stride: 2 },
  dropout: 0.5,
  lrn: PAPER_LRN,
};

/** The same tiny net with the paper's two towers: conv2, conv4 and conv5 grouped (groups = 2). */
export const groupedTinyPreset: Preset = {
  ...tinyPreset,
  name: 'tiny-test-grouped',
  layers: tinyPreset.layers.map((l) => (l.kind === 'conv' && ['conv2', 'conv4', 'conv5'].includes(l.name) ? { ...l, groups: 2 } : l)),
};

/** ImageNet-style normalization, so that scale, mean and std all matter. */
export const tinyPreprocess: PreprocessContract = {
  inputSize: 32,
  resizeSize: 36,
  channels: 'rgb',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  background: [255, 255, 255],
};

export interface TinyModel {
  path: string;
  weights: NamedWeights;
  dir: string;
  cleanup(): void;
}

/** One-channel variant, as the Fashion-MNIST default model is. */
const grayPreset: Preset = { ...tinyPreset, name: 'tiny-test-gray', channels: 1 };
const grayPreprocess: PreprocessContract = { ...tinyPreprocess, channels: 'gray', mean: [0.5], std: [0.25], background: [0, 0, 0] };

export function buildTinyModel(opts: { gray?: boolean } = {}): TinyModel {
  const preset = opts.gray ? grayPreset : tinyPreset;
  const weights = initWeights(preset, 'he', 14);
  const bytes = exportOnnx(preset, weights, {
    name: preset.name,
    modelVersion: '3',
    labels: TINY_LABELS,
    preprocess: opts.gray ? grayPreprocess : tinyPreprocess,
    source: 'random-init',
  });
  const dir = mkdtempSync(join(tmpdir(), 'sightline-model-'));
  const path = join(dir, 'tiny.onnx');
  writeFileSync(path, bytes);
  return { path, weights, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
