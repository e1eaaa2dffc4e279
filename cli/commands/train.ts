/**
 * `sightline train`: train an AlexNet preset with the paper's recipe on the wasm backend, with a
 * progress bar per epoch, a checkpoint each epoch and on Ctrl-C, exact resume, and a final
 * 1-crop / 10-crop evaluation of the exported ONNX.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { PRESET_NAMES } from '../../model/index.js';
import { trainModel, type TrainOptions, formatConfusion, readCheckpointJson, resumeArgs, resumeCommand, TRAIN_LAYERS, type RunArgs, type TrainLayers, type ValSpec, finetune } from '../../training/index.js';
import { modelArgPath } from './models.js';
import type { StepProgress } from '../../training/index.js';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { formatSeconds, makeBar } from '../progress.js';

interface TrainFlags {
  preset: string; dataset: string; data?: string; epochs: string; batch: string; lr: string; minLr: string;
  patience: string; lrDrops: string; warmup: string; init: string; seed: string; limit?: string; val: string;
  workers: string; backend: string; pcaStd: string; randomErasing: string; out?: string; checkpoint?: string; checkpointEvery: string; resume?: string;
  fp16: boolean; name?: string; modelVersion: string; resumeLr?: string; from?: string; trainLayers: string;
}

function numFlag(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) throw CliError.usage(`${flag} must be a number in [${min}, ${max}], got '${raw}'`);
  return v;
}

function valFlag(raw: string): ValSpec {
  if (raw === 'test') return 'test';
  if (raw.trim().endsWith('%')) {
    const pct = Number(raw.trim().slice(0, -1));
    if (!Number.isFinite(pct) || pct < 0 || pct >= 100 || raw.trim() === '%') throw CliError.usage(`--val must be a count, a percentage in [0, 100) such as 10%, or 'test'; got '${raw}'`);
    return { fraction: pct / 100 };
  }
  return intFlag('--val', raw, 0, 1e7);
}

const autoOr = (flag: string, raw: string, min: number, max: number): number | 'auto' => (raw === 'auto' ? 'auto' : intFlag(flag, raw, min, max));

export function parseTrainFlags(f: TrainFlags): TrainOptions {
  if (f.init !== 'paper' && f.init !== 'he') throw CliError.usage(`--init must be 'paper' or 'he', got '${f.init}'`);
  if (f.backend !== 'wasm' && f.backend !== 'cpu') throw CliError.usage(`--backend must be 'wasm' or 'cpu', got '${f.backend}'`);
  if (!(PRESET_NAMES as readonly string[]).includes(f.preset)) throw CliError.usage(`--preset must be one of ${PRESET_NAMES.map((n) => `'${n}'`).join(', ')}, got '${f.preset}'`);
  if (f.out === undefined) throw CliError.usage('--out <file.onnx> is required (unless --resume continues a run that recorded it)');
  if (!(TRAIN_LAYERS as readonly string[]).includes(f.trainLayers)) throw CliError.usage(`--train-layers must be one of ${TRAIN_LAYERS.join(', ')}, got '${f.trainLayers}'`);
  const drops = f.lrDrops.trim() === '' ? [] : f.lrDrops.split(',').map((d) => intFlag('--lr-drops', d, 2, 10_000));
  const out = resolve(f.out);
  return {
    preset: f.preset, dataset: f.dataset === 'fashion-mnist' ? f.dataset : resolve(f.dataset), dataDir: f.data === undefined ? undefined : resolve(f.data),
    epochs: intFlag('--epochs', f.epochs, 1, 10_000), batch: autoOr('--batch', f.batch, 2, 4096), lr: numFlag('--lr', f.lr, 1e-8, 10),
    minLr: numFlag('--min-lr', f.minLr, 0, 10), patience: intFlag('--patience', f.patience, 1, 1000), lrDrops: drops,
    warmupSteps: autoOr('--warmup', f.warmup, 0, 1e7), init: f.init, seed: intFlag('--seed', f.seed, 0, 2 ** 31 - 1),
    limit: f.limit === undefined ? undefined : intFlag('--limit', f.limit, 1, 1e8), val: valFlag(f.val), workers: intFlag('--workers', f.workers, 1, 64),
    backend: f.backend, pcaStd: numFlag('--pca-std', f.pcaStd, 0, 10),
    randomErasing: numFlag('--random-erasing', f.randomErasing, 0, 1), out, fp16: f.fp16,
    checkpoint: f.checkpoint ? resolve(f.checkpoint) : f.resume ? resolve(f.resume) : resolve('checkpoints', basename(out, '.onnx')),
    checkpointEvery: intFlag('--checkpoint-every', f.checkpointEvery, 0, 1e7),
    resume: f.resume ? resolve(f.resume) : undefined,
    resumeLr: f.resumeLr === undefined ? undefined : numFlag('--resume-lr', f.resumeLr, 1e-8, 10),
    name: f.name ?? basename(out, '.onnx'), modelVersion: f.modelVersion,
    ...(f.from === undefined ? {} : { from: f.from, trainLayers: f.trainLayers as TrainLayers }),
  };
}

/** Commander's attribute of each flag → the run argument it sets. */
const ATTR_OF: Partial<Record<keyof RunArgs, keyof TrainFlags>> = {
  preset: 'preset', dataset: 'dataset', dataDir: 'data', epochs: 'epochs', batch: 'batch', lr: 'lr', minLr: 'minLr', patience: 'patience',
  lrDrops: 'lrDrops', warmupSteps: 'warmup', init: 'init', seed: 'seed', limit: 'limit', val: 'val', workers: 'workers', backend: 'backend',
  pcaStd: 'pcaStd', randomErasing: 'randomErasing', out: 'out', fp16: 'fp16', name: 'name', modelVersion: 'modelVersion', trainLayers: 'trainLayers', checkpointEvery: 'checkpointEvery',
};

/**
 * `--resume DIR`: the checkpoint's recorded arguments, with the flags given on this command line
 * checked against them (training/options.ts). Older checkpoints without arguments need the flags.
 */
export async function resumeOptions(f: TrainFlags, givenOnCli: (attr: string) => boolean): Promise<TrainOptions> {
  const dir = resolve(f.resume ?? '');
  let saved: RunArgs | undefined;
  try {
    saved = (await readCheckpointJson(dir)).args;
  } catch (err) {
    throw CliError.failure(`--resume: ${(err as Error).message}`);
  }
  if (!saved) return parseTrainFlags(f);
  const parsed = parseTrainFlags({ ...f, out: f.out ?? saved.out });
  const given: Partial<RunArgs> = {};
  for (const [key, attr] of Object.entries(ATTR_OF) as [keyof RunArgs, keyof TrainFlags][]) {
    if (givenOnCli(attr)) (given as Record<string, unknown>)[key] = parsed[key];
  }
  // A new --out without --name names the model after the new file, as a fresh run would.
  if (given.out !== undefined && given.name === undefined && saved.name === basename(saved.out, '.onnx')) given.name = parsed.name;
  try {
    const args = resumeArgs(saved, given, dir);
    return { ...args, resume: dir, checkpoint: f.checkpoint ? resolve(f.checkpoint) : dir, resumeLr: parsed.resumeLr };
  } catch (err) {
    throw CliError.usage((err as Error).message);
  }
}

export const STEP_BAR = 'epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} acc {acc} | {ips} img/s | lr {lr} | ETA {eta_h}';

/** What the progress bar shows for a step (every field of its format, so no frame shows a placeholder). */
export function stepPayload(p: StepProgress): Record<string, string | number> {
  return { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4), acc: p.accuracy.toFixed(3), ips: p.imagesPerSecond.toFixed(1), lr: p.lr.toExponential(1), eta_h: formatSeconds(p.etaSeconds) };
}

async function runFinetune(opts: TrainOptions): Promise<void> {
  let bar: ReturnType<typeof makeBar> | undefined;
  const stopBar = (): void => {
    bar?.stop();
    bar = undefined;
  };
  try {
    const res = await finetune(opts, {
      onPhase: (p) => {
        stopBar();
        process.stderr.write(`${p}...\n`);
      },
      onProgress: (done, total) => {
        if (!bar) (bar = makeBar('[{bar}] {value}/{total} images | ETA {eta_formatted}')).start(total, 0);
        bar.update(done);
        if (done >= total) stopBar();
      },
      onStep: (p) => {
        if (!bar) (bar = makeBar(STEP_BAR)).start(p.steps, p.step, stepPayload(p));
        else bar.update(p.step, stepPayload(p));
      },
      onEpoch: (r) => {
        stopBar();
        const val = r.valAccuracy === undefined ? '' : ` | val loss ${r.valLoss?.toFixed(4)} acc ${r.valAccuracy.toFixed(4)}`;
        process.stderr.write(`epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)} acc ${r.trainAccuracy.toFixed(4)}${val} | ${formatSeconds(r.seconds)}\n`);
      },
    });
    stopBar();
    process.stdout.write(`\nwrote ${res.out} (weights of epoch ${res.bestEpoch}; ${formatSeconds(res.seconds.total)} in all, features ${formatSeconds(res.seconds.features)}, training ${formatSeconds(res.seconds.train)})\n`);
    if (res.val1 && res.val10) {
      process.stdout.write(`validation top-1: 1 crop ${(res.val1.top1 * 100).toFixed(2)}%, 10 crops ${(res.val10.top1 * 100).toFixed(2)}% on ${res.val10.n} images\n`);
      process.stdout.write(`${formatConfusion(res.val10, res.contract.labels)}\n`);
    }
  } finally {
    stopBar();
  }
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train an AlexNet preset with TensorFlow.js (wasm backend, data-parallel workers) and export ONNX')
    .option('--preset <name>', "'alexnet-small' (28 px crops, Fashion-MNIST), 'alexnet' (224 px, two towers) or 'alexnet-dense' (224 px, one tower)", 'alexnet-small')
    .option('--dataset <name|dir>', "'fashion-mnist' or an image folder ROOT/<class>/<image>", 'fashion-mnist')
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)')
    .option('--epochs <n>', 'epochs to train (total, also when resuming)', '30')
    .option('--batch <n|auto>', 'images per SGD step, split across workers; auto: 128, or less so that a small training set gets about 8 steps per epoch', 'auto')
    .option('--lr <x>', 'initial learning rate', '0.01')
    .option('--min-lr <x>', 'the learning rate is never divided below this', '0.00001')
    .option('--patience <n>', 'divide the learning rate by 10 after this many epochs without validation improvement', '3')
    .option('--lr-drops <list>', 'also divide the learning rate by 10 at these 1-based epochs, e.g. 16,24', '')
    .option('--warmup <steps|auto>', 'linear learning-rate warm-up steps; auto: 5 % of all steps, at most 300', 'auto')
    .option('--init <scheme>', "'paper' (N(0, 0.01), biases 1 in conv2/4/5 and fc6/7) or 'he'", 'paper')
    .option('--seed <n>', 'seed for init, data order, crops and dropout', '1')
    .option('--limit <n>', 'use only the first N training images (and N/4 test images)')
    .option('--val <n|pct|test>', "held-out validation images for the schedule: a count or a percentage (never the last batch), or 'test' to monitor the test split (0 = none)", '10%')
    .option('--workers <n>', 'worker threads (one wasm backend each)', '2')
    .option('--backend <name>', "'wasm' or 'cpu' (pure JS, very slow)", 'wasm')
    .option('--pca-std <x>', 'σ of the PCA color augmentation (RGB data)', '0.1')
    .option('--random-erasing <p>', 'random erasing (Zhong et al.): with probability p, overwrite a random rectangle (2–40 % of the crop, aspect 0.3–3.3) of each training crop with random values; 0 = off', '0')
    .option('--checkpoint <dir>', 'checkpoint folder (default: the --resume folder, else checkpoints/<out name>)')
    .option('--checkpoint-every <steps>', 'also write the checkpoint every this many steps within an epoch (0: at epoch ends and on Ctrl-C only)', '0')
    .option('--resume <dir>', 'continue the checkpoint\'s run exactly where it stopped (its recorded arguments; only --epochs, --lr-drops, --resume-lr, --checkpoint-every and the output flags may change)')
    .option('--resume-lr <x>', 'with --resume: continue with this learning rate (a manual schedule step)')
    .option('--fp16', 'store weights as float16 in the ONNX file', false)
    .option('--name <name>', 'model name in the contract (default: the file name)')
    .option('--model-version <v>', 'model version in the contract', '1')
    .option('--from <model|name>', 'fine-tune: start from this ONNX model (a file or a pulled model name) on the --dataset folder\'s classes')
    .option('--train-layers <which>', "with --from: 'fc8' (a new last layer), 'fc' (fc6–fc8) or 'all'", 'fc8')
    .option('--out <file.onnx>', 'where to write the trained model (required unless resuming)')
    .action(async (flags: TrainFlags, cmd: Command) => {
      const opts = flags.resume !== undefined ? await resumeOptions(flags, (a) => cmd.getOptionValueSource(a) === 'cli') : parseTrainFlags(flags);
      // A resumed run's --from is the source file it recorded.
      if (flags.from !== undefined && flags.resume === undefined) opts.from = await modelArgPath(flags.from, false);
      if (opts.from !== undefined && opts.trainLayers !== 'all') {
        await runFinetune(opts);
        return;
      }
      // --from with --train-layers all trains the whole network from the source's weights.
      let bar: ReturnType<typeof makeBar> | undefined;
      let stopping = false;
      let trainerRef: { requestStop(): void } | undefined;
      const onSigint = () => {
        if (stopping) process.exit(130);
        stopping = true;
        process.stderr.write('\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)\n');
        trainerRef?.requestStop();
      };
      process.on('SIGINT', onSigint);
      process.on('SIGTERM', onSigint);
      try {
        const res = await trainModel(opts, {
          onPhase: (p) => process.stderr.write(`${p}...\n`),
          onStep: (p) => {
            if (!bar) {
              bar = makeBar(STEP_BAR);
              // The bar draws its first frame in start(): give it the values, not the placeholders.
              bar.start(p.steps, p.step, stepPayload(p));
            } else bar.update(p.step, stepPayload(p));
          },
          onEpoch: (r) => {
            bar?.stop();
            bar = undefined;
            const val = r.valAccuracy === undefined ? '' : ` | val loss ${r.valLoss?.toFixed(4)} acc ${r.valAccuracy.toFixed(4)}`;
            process.stderr.write(`epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)} acc ${r.trainAccuracy.toFixed(4)}${val} | ${r.imagesPerSecond.toFixed(1)} img/s, ${formatSeconds(r.seconds)}\n`);
          },
          onCheckpoint: (dir) => process.stderr.write(`checkpoint written to ${dir}\n`),
          onEvalProgress: (crops, done, total) => {
            if (done === total || done % 2000 < 64) process.stderr.write(`  eval ${crops}-crop ${done}/${total}\r`);
          },
        }, (t) => {
          trainerRef = t;
          if (stopping) t.requestStop();
        });
        bar?.stop();
        if (res.stopped) {
          process.stdout.write(`stopped at epoch ${res.trainer.state.epoch + 1}, step ${res.trainer.state.step}; resume with:\n  ${resumeCommand(opts.checkpoint ?? '')}\n`);
          return;
        }
        process.stdout.write(`\nwrote ${res.out}\n`);
        if (res.test1 && res.test10) {
          process.stdout.write(`top-1 accuracy: 1 crop ${(res.test1.top1 * 100).toFixed(2)}%, 10 crops ${(res.test10.top1 * 100).toFixed(2)}% (top-5 ${(res.test10.top5 * 100).toFixed(2)}%) on ${res.test10.n} images\n`);
          process.stdout.write(`${formatConfusion(res.test10, res.trainer.train.classNames)}\n`);
        }
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
      }
    });
}
