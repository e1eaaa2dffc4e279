// Exports a training checkpoint as an ONNX model (dev use only).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getPreset } from '/work/main/model/architecture.js';
import { exportOnnx } from '/work/main/model/onnx/index.js';
import { readCheckpointData } from '/work/main/training/checkpoint.js';
import { paramLayout, unpackWeights } from '/work/main/training/params.js';
import { FASHION_MNIST_LABELS } from '/work/main/training/data/fashion-mnist.js';
const [dir, out] = process.argv.slice(2) as [string, string];
const data = await readCheckpointData(dir);
const spec = data.config.preset;
const preset = getPreset(spec.name, { numClasses: spec.numClasses, channels: spec.channels, inputSize: spec.inputSize });
const layout = paramLayout(preset);
const buf = await readFile(join(dir, 'params.bin'));
const flat = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const n = data.config.normalization;
await writeFile(out, exportOnnx(preset, unpackWeights(layout, flat), {
  name: 'sightline-fmnist-dev', modelVersion: String(data.state.epoch), labels: [...FASHION_MNIST_LABELS],
  preprocess: { inputSize: spec.inputSize, resizeSize: preset.resizeSize, channels: 'gray', scale: n.scale, mean: n.mean, std: n.std, background: [0, 0, 0] },
  source: 'sightline-train', metrics: { epochs: data.state.epoch },
}, { fp16: true }));
console.log('wrote', out, 'epoch', data.state.epoch, JSON.stringify(data.state.history.at(-1)));
