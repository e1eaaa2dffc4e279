/**
 * `npm run bench -- train [--batch 128] [--steps 3] [--window N] [--workers 2,1] [--data DIR]
 *   [--baseline DIR] [--rounds 1] [--cpu-batch 2] [--no-profile]`
 *
 * Training throughput of the `alexnet-small` preset (Fashion-MNIST shape: 1×28×28, 10 classes)
 * through the real Trainer (worker threads, shared weights, the paper's SGD):
 * 1. wasm backend with each worker count, images/s over --steps timed steps after one warm-up step;
 *    with --window N also images/s over each window of N steps, to see whether a long run decays
 *    (e.g. `--steps 100 --window 20 --data /usr/share/datasets/fashion-mnist` approximates an epoch);
 * 2. where a step's time goes: the main thread's batch assembly and waits, each worker's upload of
 *    the shared weights, forward + backward, gradient copy-out, and its slice of the SGD update;
 * 3. with --baseline DIR, the same measurement with another checkout's training/ (e.g. a worktree
 *    of main), alternated with this one --rounds times, so both see the same machine load;
 * 4. the pure-JS cpu backend, about 1000× slower: one step of --cpu-batch images, extrapolated
 *    (labelled as such; the first step also pays one-off costs, so it flatters nothing);
 * 5. a per-kernel breakdown of one forward + backward pass of a worker's share of the batch on
 *    wasm (tf.profile, in this thread), which is where the compute time goes.
 * The PyTorch rows are the team's reference measurements on this machine (default malloc, and the
 * malloc settings of the notes), not run here; the goal is half of PyTorch's default-malloc rate.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { getPreset, parameterCount, type Preset } from '../model/index.js';
import * as current from '../training/index.js';
import { useBackend, loadFashionMnist, forward, initWeights, mulberry32, paramsFromWeights, setNativeConvolutions } from '../training/index.js';
import type { SquareDataset, StepPhases, TrainConfig } from '../training/index.js';

type TrainingModule = typeof current;

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
  /** images/s over each window of `window` timed steps. */
  windows: number[];
  /** Images per CPU-second of this process (all threads) over the timed steps: other jobs on the machine inflate it far less than wall time. */
  imagesPerCpuSecond: number;
  /** The same per window. */
  cpuWindows: number[];
  /** Mean over the timed steps (absent for a baseline without the breakdown). */
  phases?: StepPhases;
}

function meanPhases(all: StepPhases[]): StepPhases | undefined {
  const first = all[0];
  if (!first) return undefined;
  const out = { ...first };
  for (const k of Object.keys(out) as (keyof StepPhases)[]) out[k] = all.reduce((s, p) => s + p[k], 0) / all.length;
  return out;
}

/**
 * Runs `warmup + steps` steps; throughput is measured between the warm-up step's end and the last
 * step's end (the Trainer prepares the next batch while the workers compute, as in real training).
 */
async function measure(mod: TrainingModule, cfg: TrainConfig, train: SquareDataset, warmup: number, steps: number, window: number, native: boolean): Promise<Throughput> {
  const t0 = performance.now();
  const trainer = new mod.Trainer(cfg, train, undefined, mod.initialState(cfg));
  trainer.nativeKernels = native;
  trainer.initWeights();
  const ends: number[] = [];
  const cpu: number[] = [];
  const cpuNow = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const firstCpu = cpuNow();
  const phases: StepPhases[] = [];
  let firstStepStart = 0;
  try {
    await trainer.run(undefined, {
      onStep: (p) => {
        ends.push(performance.now());
        cpu.push(cpuNow());
        if (ends.length > warmup && p.phases) phases.push(p.phases);
        // The first step's own duration (without the pool start) is in the progress report.
        if (ends.length === 1) firstStepStart = (ends[0] as number) - (cfg.batch / p.imagesPerSecond) * 1000;
        if (ends.length >= warmup + steps) trainer.requestStop();
      },
    });
  } finally {
    await trainer.close();
  }
  const startSeconds = (firstStepStart - t0) / 1000;
  const at = (i: number): number => (i < 0 ? firstStepStart : (ends[i] as number));
  const seconds = (at(warmup + steps - 1) - at(warmup - 1)) / 1000;
  // Without a warm-up step the CPU count starts at the pool's start (it includes the workers' set-up).
  const cpuAt = (i: number): number => (i < 0 ? firstCpu : (cpu[i] as number));
  const windows: number[] = [];
  const cpuWindows: number[] = [];
  for (let w = 0; window > 0 && w + window <= steps; w += window) {
    windows.push((window * cfg.batch) / ((at(warmup + w + window - 1) - at(warmup + w - 1)) / 1000));
    cpuWindows.push((window * cfg.batch) / (cpuAt(warmup + w + window - 1) - cpuAt(warmup + w - 1)));
  }
  const cpuSeconds = cpuAt(warmup + steps - 1) - cpuAt(warmup - 1);
  return {
    imagesPerSecond: (steps * cfg.batch) / seconds, secondsPerStep: seconds / steps, startSeconds, timedSteps: steps, windows,
    imagesPerCpuSecond: (steps * cfg.batch) / cpuSeconds, cpuWindows, phases: meanPhases(phases),
  };
}

interface KernelRow {
  name: string;
  /** Process CPU time per step (ms): other jobs on the machine inflate it far less than wall time. */
  cpuMs: number;
  calls: number;
}

const cpuMsNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Wraps every wasm kernel in a CPU-time stopwatch (this thread is the only busy one here, so the
 * process's CPU time is the kernel's). Kernels that call others directly (ours do) count them as theirs.
 */
function timeKernels(into: Map<string, KernelRow>): () => void {
  const configs = tf.getKernelsForBackend('wasm');
  for (const k of configs) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t0 = cpuMsNow();
        const out = inner(args);
        const row = into.get(k.kernelName) ?? { name: k.kernelName, cpuMs: 0, calls: 0 };
        row.cpuMs += cpuMsNow() - t0;
        row.calls++;
        into.set(k.kernelName, row);
        return out;
      },
    });
  }
  return () => {
    for (const k of configs) {
      tf.unregisterKernel(k.kernelName, 'wasm');
      tf.registerKernel(k);
    }
  };
}

/**
 * One forward + backward pass of `batch` images on wasm in this thread, kernel by kernel, as a
 * worker computes it (on wasm alone, large dense layers get their transposed copy, network.ts), mean of `reps` passes.
 */
async function profileStep(p: Preset, batch: number, reps: number, native: boolean): Promise<{ rows: KernelRow[]; wallMs: number; cpuMs: number }> {
  await useBackend('wasm');
  setNativeConvolutions(native);
  const rand = mulberry32(5);
  const params = paramsFromWeights(initWeights(p, 'he', 1));
  const consts: tf.Tensor[] = [];
  for (const l of params.values()) {
    if (!native && l.w.rank === 2 && l.w.size >= 1 << 20) consts.push((l.wT = tf.transpose(l.w)));
  }
  const vars = [...params.values()].flatMap((l) => [l.w, l.b]);
  const x = tf.tensor4d(Float32Array.from({ length: batch * p.inputSize ** 2 }, () => rand() * 2 - 1), [batch, p.inputSize, p.inputSize, 1]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from({ length: batch }, () => Math.floor(rand() * 10)), 'int32'), 10);
  const step = () => {
    const { value, grads } = tf.valueAndGrads(() => tf.losses.softmaxCrossEntropy(y, forward(p, params, x, { training: true, dropoutSeed: 1 }).logits) as tf.Scalar)(vars);
    return [value, ...grads];
  };
  tf.dispose(tf.tidy(step)); // warm-up: first calls allocate the wasm heap
  const byName = new Map<string, KernelRow>();
  const restore = timeKernels(byName);
  const t0 = performance.now();
  const c0 = cpuMsNow();
  try {
    for (let r = 0; r < reps; r++) tf.dispose(tf.tidy(step));
  } finally {
    restore();
  }
  const wallMs = (performance.now() - t0) / reps;
  const cpuMs = (cpuMsNow() - c0) / reps;
  tf.dispose([x, y, ...vars, ...consts]);
  const rows = [...byName.values()].map((r) => ({ ...r, cpuMs: r.cpuMs / reps, calls: r.calls / reps }));
  return { rows: rows.sort((a, b) => b.cpuMs - a.cpuMs), wallMs, cpuMs };
}

interface Options {
  batch: number;
  steps: number;
  window: number;
  workers: number[];
  cpuBatch: number;
  profile: boolean;
  data: string;
  baseline: string | undefined;
  rounds: number;
  /** Native kernels (training/kernels/native-conv.ts) on, off, or each in turn. */
  native: boolean[];
}

function parse(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      batch: { type: 'string', default: '128' },
      steps: { type: 'string', default: '3' },
      window: { type: 'string', default: '0' },
      workers: { type: 'string', default: '2,1' },
      data: { type: 'string', default: FIXTURE },
      baseline: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      native: { type: 'string', default: 'on' },
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
  const baseline = values.baseline === undefined ? undefined : resolve(values.baseline);
  if (baseline !== undefined && !existsSync(join(baseline, 'training/index.ts'))) {
    throw new Error(`bench train: --baseline '${values.baseline}' is not a Sightline checkout (no training/index.ts there)`);
  }
  if (!existsSync(join(values.data, 'train-images-idx3-ubyte.gz'))) throw new Error(`bench train: --data '${values.data}' has no Fashion-MNIST train-images-idx3-ubyte.gz`);
  const steps = int('steps', values.steps, 1);
  const window = int('window', values.window, 0);
  if (window > steps) throw new Error(`bench train: --window ${window} is longer than --steps ${steps}`);
  const native = values.native === 'both' ? [true, false] : values.native === 'on' ? [true] : values.native === 'off' ? [false] : undefined;
  if (!native) throw new Error(`bench train: --native must be on, off or both, got '${values.native}'`);
  return {
    native, batch, steps, window, workers, cpuBatch: int('cpu-batch', values['cpu-batch'], 0), profile: !values['no-profile'],
    data: values.data, baseline, rounds: int('rounds', values.rounds, 1),
  };
}

const fmt = (x: number): string => x.toFixed(1);

function phaseTable(labelled: [string, StepPhases][]): string {
  const rows: [keyof StepPhases, string][] = [
    ['fill', 'main: assemble the next batch (overlaps the workers)'],
    ['stepWait', 'main: wait for all gradients'],
    ['upload', '  worker: shared weights → wasm tensors'],
    ['compute', '  worker: forward + backward'],
    ['copyOut', '  worker: gradients → shared slot'],
    ['finish', '  worker: loss/accuracy, dispose'],
    ['updateWait', 'main: wait for the SGD update'],
    ['update', '  worker: SGD update of its slice'],
  ];
  return table(['ms per step (mean of timed steps; worker = slowest)', ...labelled.map(([l]) => l)], rows.map(([k, label]) => [label, ...labelled.map(([, p]) => fmt(p[k]))]));
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  const preset = getPreset('alexnet-small', { numClasses: 10, channels: 1, inputSize: 28 });
  const train = await loadFashionMnist('train', { dir: o.data, size: preset.resizeSize });
  console.log(`train bench: ${preset.name} (1×28×28, ${(parameterCount(preset) / 1e6).toFixed(1)}M parameters), Fashion-MNIST ${o.data === FIXTURE ? 'fixture' : o.data} (${train.n} images), ` +
    `${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)} at start (other jobs on this machine slow every figure)\n`);
  const baseline = o.baseline === undefined ? undefined : ((await import(pathToFileURL(join(o.baseline, 'training/index.ts')).href)) as TrainingModule);
  const runs: [string, TrainingModule][] = baseline ? [[`baseline ${o.baseline}`, baseline], ['this checkout', current]] : [['', current]];

  const rows: string[][] = [];
  const windowRows: string[][] = [];
  const phases: [string, StepPhases][] = [];
  let reference: number | undefined;
  for (const w of o.workers) {
    for (let round = 0; round < o.rounds; round++) {
      // A baseline (which may predate the native kernels) runs once per round, as it is.
      const plan = runs.flatMap(([name, mod]) => (mod === current ? o.native : [true]).map((native) => ({ name, mod, native })));
      for (const { name, mod, native } of plan) {
        const t = await measure(mod, config('wasm', w, o.batch), train, 1, o.steps, o.window, native);
        reference ??= t.imagesPerSecond;
        const kernels = mod === current ? (native ? ', native convs/products' : ', wasm kernels only') : '';
        const label = `wasm, ${w} worker${w > 1 ? 's' : ''}, batch ${o.batch}${name ? `, ${name}` : ''}${kernels}${o.rounds > 1 ? `, round ${round + 1}` : ''}`;
        rows.push([label, fmt(t.imagesPerSecond), fmt(t.imagesPerCpuSecond), t.secondsPerStep.toFixed(2), `${t.timedSteps} after 1 warm-up`, t.startSeconds.toFixed(1), `${(t.imagesPerSecond / reference).toFixed(2)}×`]);
        if (t.windows.length > 0) windowRows.push([label, ...t.windows.map((v, i) => `${fmt(v)} (${fmt(t.cpuWindows[i] ?? NaN)})`)]);
        if (t.phases) phases.push([`${w}w${name ? ` ${name === 'this checkout' ? 'this' : 'base'}` : ''}${native ? '' : ' wasm'}${o.rounds > 1 ? ` r${round + 1}` : ''}`, t.phases]);
        console.error(`  done wasm ${w} workers ${name}`);
      }
    }
  }
  if (o.cpuBatch > 0) {
    const t = await measure(current, config('cpu', 1, o.cpuBatch), train, 0, 1, 0, false);
    rows.push([`cpu (pure JS), 1 worker, batch ${o.cpuBatch}: EXTRAPOLATED from 1 step`, t.imagesPerSecond.toFixed(3), '', t.secondsPerStep.toFixed(1), '1, no warm-up', t.startSeconds.toFixed(1), reference ? `${(t.imagesPerSecond / reference).toFixed(4)}×` : '']);
    console.error('  done cpu');
  }
  for (const p of PYTORCH) rows.push([p.label, String(p.imagesPerSecond), '', '', '', '', reference ? `${(p.imagesPerSecond / reference).toFixed(2)}×` : '']);
  console.log(table(['configuration', 'images/s', 'images/CPU-s', 's/step', 'timed steps', 'start s', 'vs first row'], rows));
  if (windowRows.length > 0) {
    const n = Math.max(...windowRows.map((r) => r.length - 1));
    console.log(`\nimages/s per window of ${o.window} steps, and in parentheses images per CPU-second of the process (a decay over the run would show here;\n` +
      'one in wall time only is other load on the machine, one in CPU time too is ours)\n');
    console.log(table(['configuration', ...Array.from({ length: n }, (_, i) => `steps ${i * o.window + 1}–${(i + 1) * o.window}`)], windowRows));
  }
  if (phases.length > 0) console.log(`\n${phaseTable(phases)}`);

  if (o.profile) {
    const share = o.batch / (o.workers[0] ?? 1);
    const reps = 3;
    const native = o.native[0] ?? true;
    const { rows: kernels, wallMs, cpuMs } = await profileStep(preset, share, reps, native);
    const total = kernels.reduce((s, k) => s + k.cpuMs, 0);
    console.log(`\nkernels of one forward + backward pass of ${share} images (one worker's share, ${native ? 'native convolutions/products' : 'wasm kernels only'}), this thread, mean of ${reps}: ` +
      `${wallMs.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU, ${total.toFixed(0)} ms CPU in kernels\n`);
    const shown = kernels.filter((k) => k.cpuMs >= total * 0.005);
    const rest = kernels.slice(shown.length);
    const krows = shown.map((k) => [k.name, k.cpuMs.toFixed(1), String(k.calls), `${((k.cpuMs / total) * 100).toFixed(1)}%`]);
    if (rest.length > 0) krows.push([`${rest.length} other kernels`, rest.reduce((s, k) => s + k.cpuMs, 0).toFixed(1), String(rest.reduce((s, k) => s + k.calls, 0)), '']);
    console.log(table(['kernel', 'CPU ms', 'calls', 'share'], krows));
  }
}
