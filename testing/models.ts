/**
 * Test models for tests/ and bench/ (production code never imports testing/): a small random
 * AlexNet (real ONNX, exported by our own exporter, narrow conv widths so a 10-crop batch runs in
 * milliseconds) and a random-projection codes model, both written once per machine to the temp dir
 * and reused by every test file and benchmark.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alexnetPreset, DataType, encodeModel, exportOnnx, floatTensor, modelProto, node, smallPreset, valueInfo } from '../model/index.js';
import type { Preset } from '../model/index.js';
import { gaussianFill, initWeights, mulberry32 } from '../training/index.js';

export const FMNIST_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const CACHE = join(tmpdir(), 'sightline-test-models');

/** smallPreset's layer sequence with narrow convolutions; fc6/fc7 stay 4096 wide (the embedding). */
export function tinyPreset(): Preset {
  const base = smallPreset(10, 1, 28);
  const widths = [16, 32, 32, 32, 32];
  let i = 0;
  return Object.freeze({ ...base, layers: base.layers.map((l) => (l.kind === 'conv' ? { ...l, filters: widths[i++] ?? 32 } : l)) });
}

function writeOnce(name: string, produce: () => Uint8Array): string {
  const path = join(CACHE, name);
  if (existsSync(path)) return path;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, produce());
  renameSync(tmp, path);
  return path;
}

/** The paper's full AlexNet (RGB, 224 crops from 256, 10 classes), random He init: for the server bench only (228 MB). */
function fullModelPath(seed: number): string {
  return writeOnce(`full-alexnet-${seed}.onnx`, () => {
    const preset = alexnetPreset(10);
    return exportOnnx(preset, initWeights(preset, 'he', seed), {
      name: 'test-alexnet',
      modelVersion: `random-${seed}`,
      labels: FMNIST_LABELS,
      preprocess: { inputSize: 224, resizeSize: 256, channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], background: [255, 255, 255] },
      source: 'random-init',
    });
  });
}

/** A random (He init, fixed seed) Fashion-MNIST-shaped classifier: 1×28×28 in, 10 logits and 4096-d fc7 out. */
export function testModelPath(seed = 7, size: 'tiny' | 'small' | 'full' = 'tiny'): string {
  if (size === 'full') return fullModelPath(seed);
  return writeOnce(`${size}-fmnist-${seed}.onnx`, () => {
    // 'small' is the default model's real architecture (alexnet-small), for the benchmark.
    const preset = size === 'tiny' ? tinyPreset() : smallPreset(10, 1, 28);
    return exportOnnx(preset, initWeights(preset, 'he', seed), {
      name: 'test-fmnist',
      modelVersion: `random-${seed}`,
      labels: FMNIST_LABELS,
      preprocess: { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1 / 255, mean: [0.286], std: [0.353], background: [255, 255, 255] },
      source: 'random-init',
    });
  });
}

/**
 * A codes model in the autoencoder's format (input `embedding`, output `code_logits`, metadata
 * `sightline.codes` naming the image model's SHA-256): a seeded Gaussian projection [4096, bits].
 */
export function testCodesPath(bits = 128, seed = 11, cropPolicy: 'center' | 'mean10' = 'center', modelPath = testModelPath()): string {
  const modelHash = createHash('sha256').update(readFileSync(modelPath)).digest('hex');
  return writeOnce(`codes-${bits}-${seed}-${cropPolicy}-${modelHash.slice(0, 12)}.onnx`, () => {
    const w = gaussianFill(new Float32Array(4096 * bits), 1 / 64, mulberry32(seed));
    const graph = {
      name: 'codes',
      node: [node('MatMul', ['embedding', 'w'], ['code_logits'], 'project')],
      initializer: [floatTensor('w', [4096, bits], w)],
      input: [valueInfo('embedding', DataType.FLOAT, ['N', 4096])],
      output: [valueInfo('code_logits', DataType.FLOAT, ['N', bits])],
    };
    const meta = {
      version: 1,
      bits,
      embeddingDim: 4096,
      modelHash,
      model: { name: 'test-fmnist', version: 'random' },
      cropPolicy,
      normalization: 'none (random projection, tests only)',
      hidden: [],
    };
    return encodeModel(modelProto(graph, { metadata: { 'sightline.codes': JSON.stringify(meta) } }));
  });
}

export function tempDir(prefix = 'sightline-server-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
