/**
 * `sightline train`: train an AlexNet preset with the paper's recipe on the wasm backend, with a
 * progress bar per epoch, a checkpoint each epoch and on Ctrl-C, exact resume, and a final
 * 1-crop / 10-crop evaluation of the exported ONNX.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { trainModel, type TrainOptions } from '../../training/run.js';
import { formatConfusion } from '../../training/evaluate.js';
import { CliError } from '../errors.js';
import { formatSeconds, makeBar } from '../progress.js';
import { intFlag } from './classify.js';

interface TrainFlags {
  preset: string; dataset: string; data?: string; epochs: string; batch: string; lr: string; minLr: string;
  patience: string; lrDrops: string; warmup: string; init: string; seed: string; limit?: string; val: string;
  workers: string; backend: string; pcaStd: string; out: string; checkpoint?: string; resume?: string;
  fp16: boolean; name?: string; modelVersion: string; resumeLr?: string;
}

function numFlag(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) throw new CliError(`${flag} must be a number in [${min}, ${max}], got '${raw}'`);
  return v;
}

export function parseTrainFlags(f: TrainFlags): TrainOptions {
  if (f.init !== 'paper' && f.init !== 'he') throw new CliError(`--init must be 'paper' or 'he', got '${f.init}'`);
  if (f.backend !== 'wasm' && f.backend !== 'cpu') throw new CliError(`--backend must be 'wasm' or 'cpu', got '${f.backend}'`);
  if (f.preset !== 'alexnet' && f.preset !== 'alexnet-small') throw new CliError(`--preset must be 'alexnet' or 'alexnet-small', got '${f.preset}'`);
  const drops = f.lrDrops.trim() === '' ? [] : f.lrDrops.split(',').map((d) => intFlag('--lr-drops', d, 2, 10_000));
  const out = resolve(f.out);
  return {
    preset: f.preset, dataset: f.dataset, dataDir: f.data, epochs: intFlag('--epochs', f.epochs, 1, 10_000),
    batch: intFlag('--batch', f.batch, 2, 4096), lr: numFlag('--lr', f.lr, 1e-8, 10), minLr: numFlag('--min-lr', f.minLr, 0, 10),
    patience: intFlag('--patience', f.patience, 1, 1000), lrDrops: drops, warmupSteps: intFlag('--warmup', f.warmup, 0, 1e7),
    init: f.init, seed: intFlag('--seed', f.seed, 0, 2 ** 31 - 1), limit: f.limit === undefined ? undefined : intFlag('--limit', f.limit, 1, 1e8),
    val: f.val === 'test' ? 'test' : intFlag('--val', f.val, 0, 1e7), workers: intFlag('--workers', f.workers, 1, 64),
    backend: f.backend, pcaStd: numFlag('--pca-std', f.pcaStd, 0, 10), out, fp16: f.fp16,
    checkpoint: f.checkpoint ? resolve(f.checkpoint) : f.resume ? resolve(f.resume) : resolve('checkpoints', basename(out, '.onnx')),
    resume: f.resume ? resolve(f.resume) : undefined,
    resumeLr: f.resumeLr === undefined ? undefined : numFlag('--resume-lr', f.resumeLr, 1e-8, 10),
    name: f.name ?? basename(out, '.onnx'), modelVersion: f.modelVersion,
  };
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train an AlexNet preset with TensorFlow.js (wasm backend, data-parallel workers) and export ONNX')
    .option('--preset <name>', "'alexnet-small' (28 px crops, Fashion-MNIST) or 'alexnet' (224 px)", 'alexnet-small')
    .option('--dataset <name|dir>', "'fashion-mnist' or an image folder ROOT/<class>/<image>", 'fashion-mnist')
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)')
    .option('--epochs <n>', 'epochs to train (total, also when resuming)', '30')
    .option('--batch <n>', 'images per SGD step, split across workers', '128')
    .option('--lr <x>', 'initial learning rate', '0.01')
    .option('--min-lr <x>', 'the learning rate is never divided below this', '0.00001')
    .option('--patience <n>', 'divide the learning rate by 10 after this many epochs without validation improvement', '3')
    .option('--lr-drops <list>', 'also divide the learning rate by 10 at these 1-based epochs, e.g. 16,24', '')
    .option('--warmup <steps>', 'linear learning-rate warm-up steps', '300')
    .option('--init <scheme>', "'paper' (N(0, 0.01), biases 1 in conv2/4/5 and fc6/7) or 'he'", 'paper')
    .option('--seed <n>', 'seed for init, data order, crops and dropout', '1')
    .option('--limit <n>', 'use only the first N training images (and N/4 test images)')
    .option('--val <n|test>', "held-out validation images for the schedule, or 'test' to monitor the test split (0 = none)", '5000')
    .option('--workers <n>', 'worker threads (one wasm backend each)', '2')
    .option('--backend <name>', "'wasm' or 'cpu' (pure JS, very slow)", 'wasm')
    .option('--pca-std <x>', 'σ of the PCA color augmentation (RGB data)', '0.1')
    .option('--checkpoint <dir>', 'checkpoint folder (default: the --resume folder, else checkpoints/<out name>)')
    .option('--resume <dir>', 'continue from a checkpoint exactly where it stopped')
    .option('--resume-lr <x>', 'with --resume: continue with this learning rate (a manual schedule step)')
    .option('--fp16', 'store weights as float16 in the ONNX file', false)
    .option('--name <name>', 'model name in the contract (default: the file name)')
    .option('--model-version <v>', 'model version in the contract', '1')
    .requiredOption('--out <file.onnx>', 'where to write the trained model')
    .action(async (flags: TrainFlags) => {
      const opts = parseTrainFlags(flags);
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
              bar = makeBar('epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} acc {acc} | {ips} img/s | lr {lr} | ETA {eta_h}');
              bar.start(p.steps, p.step - 1, { epoch: p.epoch, epochs: p.epochs });
            }
            bar.update(p.step, { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4), acc: p.accuracy.toFixed(3), ips: p.imagesPerSecond.toFixed(1), lr: p.lr.toExponential(1), eta_h: formatSeconds(p.etaSeconds) });
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
          process.stdout.write(`stopped at epoch ${res.trainer.state.epoch + 1}, step ${res.trainer.state.step}; resume with --resume ${opts.checkpoint}\n`);
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
