/**
 * `npm run bench -- train [--batch 128] [--steps 3] [--workers 2,1] [--cpu-batch 2] [--no-profile]`
 *
 * Training throughput of the `alexnet-small` preset (Fashion-MNIST shape: 1×28×28, 10 classes)
 * through the real Trainer (worker threads, shared weights, the paper's SGD):
 * 1. wasm backend with each worker count, images/s over --steps timed steps after one warm-up step;
 * 2. the pure-JS cpu backend, about 1000× slower: one step of --cpu-batch images, extrapolated
 *    (labelled as such; the first step also pays one-off costs, so it flatters nothing);
 * 3. a per-kernel breakdown of one forward + backward pass of a worker's share of the batch on
 *    wasm (tf.profile, in this thread), which is where the step time goes.
 * The PyTorch rows are the team's reference measurements on this machine (default malloc, and the
 * malloc settings of the notes), not run here; the goal is half of PyTorch's default-malloc rate.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { getPreset, parameterCount, type Preset } from '../model/index.js';
import { useBackend, loadFashionMnist, forward, initWeights, mulberry32, paramsFromWeights, initialState, Trainer } from '../training/index.js';
import type { SquareDataset, TrainConfig } from '../training/index.js';

const FIXTURE = new URL('../tests/fixtures/fashion-mnist', import.meta.url).pathname;
/** Re-measured 2026-11-30 (/work/shared/NOTES.md, "Training peer"): batch 128, 2 threads. */
const PYTORCH = [
  { label: 'PyTorch 1.13 CPU, same small AlexNet, batch 128 (team notes, not run here)', imagesPerSecond: 166 },
  { label: 'PyTorch 1.13 CPU, with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ (team notes, not run here)', imagesPerSecond: 204 },
];

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function config(backend: 'wasm' | 'cpu', workers: number, batch: number): TrainConfig {
  return {
    preset: { name: 'alexnet-small', numClasses: 10, channels: 1, inputSize: 28 },
    epochs: 1000, batch, lr: 0.001, minLr: 1e-5, patience: 3, lrDrops: [], warmupSteps: 0, init: 'he', seed: 1,
    momentum: 0.9, weightDecay: 0.0005, workers, backend, pcaStd: 0, normalization: { scale: 1 / 255, mean: [0.29], std: [0.35] },
  };
}

interface Throughput {
  imagesPerSecond: number;
  secondsPerStep: number;
  startSeconds: number;
  timedSteps: number;
}

/**
 * Runs `warmup + steps` steps; throughput is measured between the warm-up step's end and the last
 * step's end (the Trainer prepares the next batch while the workers compute, as in real training).
 */
async function measure(cfg: TrainConfig, train: SquareDataset, warmup: number, steps: number): Promise<Throughput> {
  const t0 = performance.now();
  const trainer = new Trainer(cfg, train, undefined, initialState(cfg));
  trainer.initWeights();
  const ends: number[] = [];
  let firstStepStart = 0;
  try {
    await trainer.run(undefined, {
      onStep: (p) => {
        ends.push(performance.now());
        // The first step's own duration (without the pool start) is in the progress report.
        if (ends.length === 1) firstStepStart = (ends[0] as number) - (cfg.batch / p.imagesPerSecond) * 1000;
        if (ends.length >= warmup + steps) trainer.requestStop();
      },
    });
  } finally {
    await trainer.close();
  }
  const startSeconds = (firstStepStart - t0) / 1000;
  const from = warmup > 0 ? (ends[warmup - 1] as number) : firstStepStart;
  const seconds = ((ends.at(-1) as number) - from) / 1000;
  return { imagesPerSecond: (steps * cfg.batch) / seconds, secondsPerStep: seconds / steps, startSeconds, timedSteps: steps };
}

interface KernelRow {
  name: string;
  ms: number;
  calls: number;
}

/** One forward + backward pass of `batch` images on wasm in this thread, kernel by kernel. */
async function profileStep(p: Preset, batch: number): Promise<{ rows: KernelRow[]; wallMs: number }> {
  await useBackend('wasm');
  const rand = mulberry32(5);
  const params = paramsFromWeights(initWeights(p, 'he', 1));
  const vars = [...params.values()].flatMap((l) => [l.w, l.b]);
  const x = tf.tensor4d(Float32Array.from({ length: batch * p.inputSize ** 2 }, () => rand() * 2 - 1), [batch, p.inputSize, p.inputSize, 1]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from({ length: batch }, () => Math.floor(rand() * 10)), 'int32'), 10);
  const step = () => {
    const { value, grads } = tf.valueAndGrads(() => tf.losses.softmaxCrossEntropy(y, forward(p, params, x, { training: true, dropoutSeed: 1 }).logits) as tf.Scalar)(vars);
    return [value, ...grads];
  };
  tf.dispose(tf.tidy(step)); // warm-up: first calls allocate the wasm heap
  const t0 = performance.now();
  tf.dispose(tf.tidy(step));
  const wallMs = performance.now() - t0;
  const info = await tf.profile(() => tf.tidy(step));
  tf.dispose(info.result as tf.Tensor[]);
  tf.dispose([x, y, ...vars]);
  const byName = new Map<string, KernelRow>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const row = byName.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
    row.ms += ms;
    row.calls++;
    byName.set(k.name, row);
  }
  return { rows: [...byName.values()].sort((a, b) => b.ms - a.ms), wallMs };
}

function parse(args: string[]): { batch: number; steps: number; workers: number[]; cpuBatch: number; profile: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      batch: { type: 'string', default: '128' },
      steps: { type: 'string', default: '3' },
      workers: { type: 'string', default: '2,1' },
      'cpu-batch': { type: 'string', default: '2' },
      'no-profile': { type: 'boolean', default: false },
    },
  });
  const int = (flag: string, raw: string, min: number): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new Error(`bench train: --${flag} must be an integer ≥ ${min}, got '${raw}'`);
    return v;
  };
  const workers = values.workers.split(',').map((w) => int('workers', w, 1));
  const batch = int('batch', values.batch, 2);
  for (const w of workers) if (batch % w !== 0) throw new Error(`bench train: --batch ${batch} must be a multiple of every worker count, got ${w}`);
  return { batch, steps: int('steps', values.steps, 1), workers, cpuBatch: int('cpu-batch', values['cpu-batch'], 0), profile: !values['no-profile'] };
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  const preset = getPreset('alexnet-small', { numClasses: 10, channels: 1, inputSize: 28 });
  const train = await loadFashionMnist('train', { dir: FIXTURE, size: preset.resizeSize });
  console.log(`train bench: ${preset.name} (1×28×28, ${(parameterCount(preset) / 1e6).toFixed(1)}M parameters), Fashion-MNIST fixture, ` +
    `${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)} at start (other jobs on this machine slow every figure)\n`);

  const rows: string[][] = [];
  let reference: number | undefined;
  for (const w of o.workers) {
    const t = await measure(config('wasm', w, o.batch), train, 1, o.steps);
    reference ??= t.imagesPerSecond;
    rows.push([`wasm, ${w} worker${w > 1 ? 's' : ''}, batch ${o.batch}`, t.imagesPerSecond.toFixed(1), t.secondsPerStep.toFixed(2), `${t.timedSteps} after 1 warm-up`, t.startSeconds.toFixed(1), `${(t.imagesPerSecond / reference).toFixed(2)}×`]);
    console.error(`  done wasm ${w} workers`);
  }
  if (o.cpuBatch > 0) {
    const t = await measure(config('cpu', 1, o.cpuBatch), train, 0, 1);
    rows.push([`cpu (pure JS), 1 worker, batch ${o.cpuBatch}: EXTRAPOLATED from 1 step`, t.imagesPerSecond.toFixed(3), t.secondsPerStep.toFixed(1), '1, no warm-up', t.startSeconds.toFixed(1), reference ? `${(t.imagesPerSecond / reference).toFixed(4)}×` : '']);
    console.error('  done cpu');
  }
  for (const p of PYTORCH) rows.push([p.label, String(p.imagesPerSecond), '', '', '', reference ? `${(p.imagesPerSecond / reference).toFixed(2)}×` : '']);
  console.log(table(['configuration', 'images/s', 's/step', 'timed steps', 'start s', 'vs first row'], rows));

  if (o.profile) {
    const share = o.batch / (o.workers[0] ?? 1);
    const { rows: kernels, wallMs } = await profileStep(preset, share);
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    console.log(`\nwasm kernels of one forward + backward pass of ${share} images (one worker's share), this thread: ` +
      `${wallMs.toFixed(0)} ms wall, ${total.toFixed(0)} ms in kernels\n`);
    const shown = kernels.filter((k) => k.ms >= total * 0.005);
    const rest = kernels.slice(shown.length);
    const krows = shown.map((k) => [k.name, k.ms.toFixed(1), String(k.calls), `${((k.ms / total) * 100).toFixed(1)}%`]);
    if (rest.length > 0) krows.push([`${rest.length} other kernels`, rest.reduce((s, k) => s + k.ms, 0).toFixed(1), String(rest.reduce((s, k) => s + k.calls, 0)), '']);
    console.log(table(['kernel', 'ms', 'calls', 'share'], krows));
  }
}
