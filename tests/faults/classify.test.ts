/**
 * 2,000 files in one `sightline classify`: onnxruntime's telemetry used to match the whole command
 * line with a recursive regex when the runtime started, and ~1,200 arguments overflowed the main
 * thread's stack (segfault before any output). See model/ort.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import sharp from 'sharp';
import { tinyPreset, FMNIST_LABELS, tempDir } from '../server/helpers.js';
import { exportOnnx } from '../../model/onnx/index.js';
import { initWeights } from '../../training/network.js';
import { writeFileSync } from 'node:fs';
import { runCli } from './fixtures/proc.js';
import { faultReport } from './report.js';

const report = faultReport('classify');
const work = tempDir('sightline-faults-classify-');
after(() => work.cleanup());

/** `n` distinct 32×32 gray PNGs with long-ish names (the command line is what matters). */
async function pngs(n: number): Promise<string[]> {
  const dir = join(work.path, 'a-folder-name-that-makes-each-argument-longer');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const px = Buffer.alloc(32 * 32);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < px.length; j++) px[j] = (i * 31 + j * 7) & 255;
    const file = join(dir, `image-${String(i).padStart(5, '0')}.png`);
    await sharp(px, { raw: { width: 32, height: 32, channels: 1 } }).png({ compressionLevel: 1 }).toFile(file);
    files.push(file);
  }
  return files;
}

/**
 * The tiny test model with 64-wide fc6/fc7: the crash was in starting the runtime, so the model's
 * size does not matter, and 2,000 images cost ~1/20 of the 4096-wide model's time.
 */
function narrowModel(): string {
  const base = tinyPreset();
  const preset = Object.freeze({ ...base, layers: base.layers.map((l) => (l.kind === 'dense' && l.hidden ? { ...l, units: 64 } : l)) });
  const path = join(work.path, 'narrow.onnx');
  writeFileSync(
    path,
    exportOnnx(preset, initWeights(preset, 'he', 3), {
      name: 'narrow-fmnist',
      modelVersion: 'random-3',
      labels: FMNIST_LABELS,
      preprocess: { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1 / 255, mean: [0.286], std: [0.353], background: [255, 255, 255] },
      source: 'random-init',
    }),
  );
  return path;
}

it('classifies 2,000 files given in one invocation', { timeout: 240_000 }, async () => {
  const files = await pngs(2000);
  const child = runCli(['classify', '--json', '--crops', '1', '--topk', '1', '--model', narrowModel(), ...files]);
  const code = await child.exited;
  const lines = child
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  report.add({ kind: `classify with ${files.length} file arguments`, outcome: `exit ${code}, ${lines.length} results`, lost: files.length - lines.length });
  assert.equal(code, 0, child.output().slice(-2000));
  assert.equal(lines.length, files.length);
  const seen = new Set(lines.map((l) => (JSON.parse(l) as { file: string }).file));
  assert.equal(seen.size, files.length, 'one result per file');
});
