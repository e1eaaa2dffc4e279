/**
 * `npm run bench -- model [--model FILE] [--threads N] [--iters N] [--int8 bundled,alexnet,alexnet-dense|none]`
 *
 * 0. fp32 vs int8 (model-int8.ts): crops/s at batch 1, 10, 32 of the bundled model and of random-init
 *    `alexnet` and `alexnet-dense`, each quantized in-process; then grouped vs dense.
 * 1. Inference: crops/s of the full `alexnet` preset in onnxruntime-node at batch 1 and batch 10
 *    (a random-init model exported with our exporter unless --model is given).
 * 2. Preprocessing: ms/image of decodeImage + makeCrops(10) for a 4000×3000 and a 500×375 JPEG.
 * 3. End to end: classifyImage on the 500×375 JPEG with 1 and 10 crops.
 * Medians over --iters runs after one untimed run; the machine is shared, so read ratios first.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { alexnetPreset, parameterCount, classifyImage, exportOnnx, batchLength, decodeImage, makeCrops, createSession } from '../model/index.js';
import type { ModelSession } from '../model/index.js';
import { initWeights } from '../training/index.js';
import { INT8_MODELS, int8Rows, int8Table } from './model-int8.js';
import type { Int8Model } from './model-int8.js';

const MAX_PIXELS = 100_000_000;
const PHOTO = new URL('../tests/fixtures/images/eagle.jpg', import.meta.url);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Median wall time of `fn` in ms over `iters` runs, after one untimed warm-up run. */
async function timeIt(iters: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Random-init full AlexNet (the paper's init), exported to a temp file; returns its path. */
function exportRandomAlexnet(dir: string): { path: string; ms: number; mb: number } {
  const t0 = performance.now();
  const preset = alexnetPreset(1000);
  const bytes = exportOnnx(preset, initWeights(preset, 'paper', 1), {
    name: 'bench-alexnet',
    modelVersion: '0',
    labels: Array.from({ length: 1000 }, (_, i) => `class-${i}`),
    preprocess: { inputSize: 224, resizeSize: 256, channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], background: [255, 255, 255] },
    source: 'random-init',
  });
  const path = join(dir, 'alexnet.onnx');
  writeFileSync(path, bytes);
  return { path, ms: performance.now() - t0, mb: bytes.length / 2 ** 20 };
}

async function inferenceRows(session: ModelSession, batch: Float32Array, iters: number): Promise<string[][]> {
  const one = await timeIt(iters, () => session.run(batch, 1));
  const ten = await timeIt(Math.max(2, Math.ceil(iters / 3)), () => session.run(batch, 10));
  const perCrop10 = ten / 10;
  return [
    ['batch 1', one.toFixed(1), one.toFixed(1), (1000 / one).toFixed(1), '1.00'],
    ['batch 10', ten.toFixed(1), perCrop10.toFixed(1), (10_000 / ten).toFixed(1), (perCrop10 / one).toFixed(2)],
  ];
}

async function preprocessRows(session: ModelSession, iters: number): Promise<{ rows: string[][]; small: Buffer }> {
  const pre = session.contract.preprocess;
  const photo = readFileSync(PHOTO);
  const big = await sharp(photo).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  const small = await sharp(photo).resize(500, 375, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  const out = new Float32Array(batchLength(pre, 10));
  const rows: string[][] = [];
  for (const [label, bytes, n] of [['4000×3000 JPEG', big, Math.max(3, Math.ceil(iters / 2))], ['500×375 JPEG', small, iters * 2]] as const) {
    const square = await decodeImage(bytes, pre, { maxPixels: MAX_PIXELS });
    const decode = await timeIt(n, () => decodeImage(bytes, pre, { maxPixels: MAX_PIXELS }));
    const crops = await timeIt(n, () => makeCrops(square, pre, 10, out));
    rows.push([label, `${(bytes.length / 1024).toFixed(0)} KiB`, decode.toFixed(2), crops.toFixed(2), (decode + crops).toFixed(2)]);
  }
  return { rows, small };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, threads: { type: 'string', default: '2' }, iters: { type: 'string', default: '10' }, int8: { type: 'string', default: INT8_MODELS.join(',') } } });
  const threads = Number(values.threads);
  const iters = Number(values.iters);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer, got '${values.threads}'`);
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`--iters must be a positive integer, got '${values.iters}'`);

  const int8 = values.int8 === 'none' ? [] : values.int8.split(',');
  const bad = int8.find((m) => !(INT8_MODELS as readonly string[]).includes(m));
  if (bad !== undefined) throw new Error(`--int8 takes 'none' or a comma list of ${INT8_MODELS.join(', ')}; got '${bad}'`);

  const dir = mkdtempSync(join(tmpdir(), 'sightline-bench-'));
  try {
    if (int8.length > 0) {
      console.log(`fp32 vs int8 (QDQ, percentile calibration on the fixture photos), onnxruntime-node cpu, ${threads} threads, sessions alternated; load average ${loadavg()[0]?.toFixed(2)}`);
      const rows = await int8Rows(int8 as Int8Model[], dir, threads, iters, (s) => console.log(`  ${s}`));
      const { speed, towers } = int8Table(rows);
      console.log(table(['model', 'batch', 'fp32 crops/s', 'int8 crops/s', 'int8 / fp32'], speed));
      if (towers.length > 0) {
        console.log('\nGrouped (alexnet, two towers) vs dense (alexnet-dense) crops/s');
        console.log(table(['batch', 'fp32 grouped / dense', 'int8 grouped / dense'], towers));
      }
      console.log('');
    }
    let path = values.model;
    let origin = `--model ${path ?? ''}`;
    if (path === undefined) {
      const e = exportRandomAlexnet(dir);
      path = e.path;
      origin = `random init ('paper'), ${(parameterCount(alexnetPreset(1000)) / 1e6).toFixed(1)}M parameters, exported in ${(e.ms / 1000).toFixed(1)} s (${e.mb.toFixed(0)} MB)`;
    }
    const t0 = performance.now();
    const session = await createSession(path, { device: 'cpu', threads });
    const loadMs = performance.now() - t0;
    try {
      const { preprocess: pre, name } = session.contract;
      console.log(`model: ${name} ${session.inputShape.join('×')}, ${origin}`);
      console.log(`onnxruntime-node ${session.provider}, intraOpNumThreads ${threads}; load + warm-up ${(loadMs / 1000).toFixed(1)} s`);
      console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg()[0]?.toFixed(2)}; median of ${iters} runs\n`);

      const batch = makeCrops(await decodeImage(readFileSync(PHOTO), pre, { maxPixels: MAX_PIXELS }), pre, 10);
      console.log('Inference');
      console.log(table(['case', 'ms/run', 'ms/crop', 'crops/s', 'per-crop cost vs batch 1'], await inferenceRows(session, batch, iters)));

      const { rows, small } = await preprocessRows(session, iters);
      console.log(`\nPreprocessing (sharp decode + shorter side → ${pre.resizeSize} + center square, then 10 crops of ${pre.inputSize} in JS)`);
      console.log(table(['image', 'size', 'decode ms', '10-crop ms', 'total ms/image'], rows));

      const e2e: string[][] = [];
      for (const crops of [1, 10] as const) {
        const ms = await timeIt(Math.max(2, Math.ceil(iters / 2)), () => classifyImage(session, small, { crops, topk: 5, maxPixels: MAX_PIXELS }));
        e2e.push([`${crops} crop${crops === 1 ? '' : 's'}`, ms.toFixed(1), (1000 / ms).toFixed(2)]);
      }
      console.log('\nclassifyImage, 500×375 JPEG (decode + crops + one batch + softmax averaging)');
      console.log(table(['crops', 'ms/image', 'images/s'], e2e));
    } finally {
      await session.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
