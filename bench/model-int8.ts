/**
 * The fp32 vs int8 section of `npm run bench -- model`: crops/s at batch 1, 10 and 32 for the
 * bundled model and random-init full `alexnet` (two towers) and `alexnet-dense` (one tower), each
 * also quantized in-process (model/onnx/quantize.ts) on the 10 crops of the four fixture photos
 * (calibration quality does not change the speed). The fp32 and int8 sessions of a model are timed
 * in alternation, round by round, so both see the same machine load; `alexnet` and `alexnet-dense`
 * (same input) alternate all four sessions, so grouped/dense is side by side too; medians over the rounds.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getPreset, calibrate, rangesOf, exportOnnx, planQuantization, quantizeModel, readContractSync, batchLength, decodeImage, makeCrops, createSession } from '../model/index.js';
import type { ModelSession } from '../model/index.js';
import { initWeights } from '../training/index.js';

const BUNDLED = new URL('../model/default/sightline-fmnist.onnx', import.meta.url).pathname;
const FIXTURES = ['dog.jpg', 'eagle.jpg', 'horses.jpg', 'person.jpg'].map((f) => new URL(`../tests/fixtures/images/${f}`, import.meta.url).pathname);
const BATCHES = [1, 10, 32] as const;
export const INT8_MODELS = ['bundled', 'alexnet', 'alexnet-dense'] as const;
export type Int8Model = (typeof INT8_MODELS)[number];

/** fp32 file of a bench model: the bundled file, or a random-init export written to `dir`. */
export function fp32Model(which: Int8Model, dir: string): string | undefined {
  if (which === 'bundled') return existsSync(BUNDLED) ? BUNDLED : undefined;
  const preset = getPreset(which, { numClasses: 1000 });
  const bytes = exportOnnx(preset, initWeights(preset, 'he', 1), {
    name: `bench-${which}`,
    modelVersion: '0',
    labels: Array.from({ length: 1000 }, (_, i) => `class-${i}`),
    preprocess: { inputSize: 224, resizeSize: 256, channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], background: [255, 255, 255] },
    source: 'random-init',
  });
  const path = join(dir, `${which}.onnx`);
  writeFileSync(path, bytes);
  return path;
}

/** 10 crops of each fixture photo under the model's contract, one batch per photo. */
export async function photoBatches(path: string): Promise<Float32Array[]> {
  const pre = readContractSync(path).preprocess;
  return Promise.all(FIXTURES.map(async (f) => makeCrops(await decodeImage(readFileSync(f), pre, { maxPixels: 1e8 }), pre, 10)));
}

export async function quantizeFile(path: string, dest: string, threads: number): Promise<string> {
  const bytes = readFileSync(path);
  const c = readContractSync(bytes);
  const plan = planQuantization(bytes, path);
  const p = c.preprocess;
  const batches = (await photoBatches(path)).map((data) => ({ data, n: 10 }));
  const stats = await calibrate(bytes, plan, { input: c.io.input, shape: [p.channels === 'gray' ? 1 : 3, p.inputSize, p.inputSize], batches: () => batches, threads });
  const q = quantizeModel(bytes, plan, { ranges: rangesOf(stats, 'percentile'), calibration: { set: 'fixture photos', images: batches.length, crops: 10, method: 'percentile' } });
  writeFileSync(dest, q.bytes);
  return dest;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/**
 * Median ms per run of each session at batch `n`, alternating sessions every round. The sessions
 * are made as the server makes them, with onnxruntime's spin-waiting off (config `inferenceSpin`):
 * with it on, the session that ran before kept its threads spinning after its run and, on 2 cores,
 * took them from the next one (fp32 `alexnet` at batch 10: 115 ms timed right after another
 * session against 79–89 ms back to back), which no single-model server sees.
 */
async function alternate(sessions: readonly ModelSession[], input: Float32Array, n: number, rounds: number): Promise<number[]> {
  const times = sessions.map(() => [] as number[]);
  for (const s of sessions) await s.run(input, n);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of sessions.entries()) {
      const t0 = performance.now();
      await s.run(input, n);
      times[i]?.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

export interface Int8Row {
  model: Int8Model;
  batch: number;
  fp32: number;
  int8: number;
}

/** Models timed together: `alexnet` and `alexnet-dense` share an input, so their four sessions alternate and grouped/dense is measured side by side too. */
function timingGroups(models: readonly Int8Model[]): Int8Model[][] {
  const towers = models.filter((m) => m !== 'bundled');
  return [...(models.includes('bundled') ? [['bundled' as const]] : []), ...(towers.length > 0 ? [towers] : [])];
}

/** crops/s rows for each model and batch; `log` gets one line per model as it is quantized. */
export async function int8Rows(models: readonly Int8Model[], dir: string, threads: number, iters: number, log: (s: string) => void): Promise<Int8Row[]> {
  const rows: Int8Row[] = [];
  for (const group of timingGroups(models)) {
    const files: { which: Int8Model; fp32: string; int8: string }[] = [];
    const sessions: ModelSession[] = [];
    try {
      for (const which of group) {
        const fp32 = fp32Model(which, dir);
        if (!fp32) {
          log(`${which}: ${BUNDLED} not found, skipped`);
          continue;
        }
        const t0 = performance.now();
        const int8 = await quantizeFile(fp32, join(dir, `${which}-int8.onnx`), threads);
        files.push({ which, fp32, int8 });
        log(`${which}: quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s (${(readFileSync(fp32).length / 1e6).toFixed(0)} → ${(readFileSync(int8).length / 1e6).toFixed(0)} MB)`);
        sessions.push(await createSession(fp32, { device: 'cpu', threads, spin: false }), await createSession(int8, { device: 'cpu', threads, spin: false }));
      }
      const first = files[0];
      const pre = sessions[0]?.contract.preprocess;
      if (!first || !pre) continue;
      const crops = await photoBatches(first.fp32);
      const input = new Float32Array(batchLength(pre, 32));
      for (let i = 0; i < 32; i++) input.set((crops[Math.floor(i / 10) % crops.length] ?? new Float32Array()).subarray(0, batchLength(pre, 1)), i * batchLength(pre, 1));
      for (const n of BATCHES) {
        const ms = await alternate(sessions, input, n, n === 32 ? Math.max(3, Math.ceil(iters / 2)) : iters);
        for (const [i, f] of files.entries()) rows.push({ model: f.which, batch: n, fp32: (n * 1000) / (ms[2 * i] ?? NaN), int8: (n * 1000) / (ms[2 * i + 1] ?? NaN) });
      }
    } finally {
      for (const s of sessions) await s.close();
      for (const f of files) {
        if (f.fp32 !== BUNDLED) rmSync(f.fp32, { force: true });
        rmSync(f.int8, { force: true });
      }
    }
  }
  return rows;
}

/** Table rows: model, batch, fp32 and int8 crops/s, int8/fp32; then grouped/dense per batch. */
export function int8Table(rows: readonly Int8Row[]): { speed: string[][]; towers: string[][] } {
  const order = (r: Int8Row): number => INT8_MODELS.indexOf(r.model) * 1000 + r.batch;
  const speed = [...rows].sort((a, b) => order(a) - order(b)).map((r) => [r.model, String(r.batch), r.fp32.toFixed(1), r.int8.toFixed(1), (r.int8 / r.fp32).toFixed(2)]);
  const towers: string[][] = [];
  for (const n of BATCHES) {
    const g = rows.find((r) => r.model === 'alexnet' && r.batch === n);
    const d = rows.find((r) => r.model === 'alexnet-dense' && r.batch === n);
    if (g && d) towers.push([String(n), (g.fp32 / d.fp32).toFixed(2), (g.int8 / d.int8).toFixed(2)]);
  }
  return { speed, towers };
}
