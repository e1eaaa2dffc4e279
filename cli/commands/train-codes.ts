/**
 * `sightline train-codes`: embed a dataset with the image model, train the autoencoder that maps
 * fc7 to B-bit codes (TensorFlow.js, wasm backend) and export its encoder as the codes model ONNX.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CROP_POLICIES, DEFAULT_CROP_POLICY, type CropPolicy, RegistryError, resolveModelArg, sightlineHome } from '../../model/index.js';
import { DEFAULT_AE, useBackend, trainCodes, trainCodesFromDb, type TrainCodesEvents, type TrainCodesOptions } from '../../training/index.js';
import { CliError } from '../errors.js';
import { DEFAULT_MODEL, intFlag, numFlag, packageRoot } from '../flags.js';
import { formatSeconds, makeBar } from '../progress.js';

interface TrainCodesFlags {
  model?: string; dataset: string; data?: string; bits: string; out: string; epochs: string; limit?: string; seed: string;
  cropPolicy: string; hidden: string; batch: string; lr: string; noise: string; classWeight: string; centerWeight: string; balanceWeight: string;
  threads: string; db?: string;
}

export const CODE_BITS = [64, 128, 256] as const;

export function policyFlag(raw: string): CropPolicy {
  const p = CROP_POLICIES.find((c) => c === raw);
  if (!p) throw CliError.usage(`--crop-policy must be one of ${CROP_POLICIES.join(', ')}, got '${raw}'`);
  return p;
}

/** --model of train-codes and eval: a file, or the name of a pulled registry model. */
export function modelPath(raw: string | undefined): string {
  let path: string;
  try {
    path = raw !== undefined ? resolveModelArg(raw, sightlineHome()) : resolve(packageRoot(), DEFAULT_MODEL);
  } catch (err) {
    throw err instanceof RegistryError ? (err.code === 'registry_unknown_model' ? CliError.usage(err.message) : CliError.failure(err.message)) : err;
  }
  if (!existsSync(path)) throw CliError.failure(`model file '${path}' does not exist${raw === undefined ? ' (the default model is produced by training; or pass --model FILE)' : ''}`);
  return path;
}

export function parseTrainCodesFlags(f: TrainCodesFlags, needModel = true): TrainCodesOptions {
  const bits = Number(f.bits);
  if (!CODE_BITS.some((b) => String(b) === f.bits.trim())) throw CliError.usage(`--bits must be one of ${CODE_BITS.join(', ')}, got '${f.bits}'`);
  const hidden = f.hidden.trim() === '' ? [] : f.hidden.split(',').map((h) => intFlag('--hidden', h.trim(), 8, 16384));
  return {
    model: needModel ? modelPath(f.model) : '', dataset: f.dataset === 'fashion-mnist' ? f.dataset : resolve(f.dataset), dataDir: f.data && resolve(f.data),
    bits, out: resolve(f.out), epochs: intFlag('--epochs', f.epochs, 1, 1000), limit: f.limit === undefined ? undefined : intFlag('--limit', f.limit, 2, 1e8),
    seed: intFlag('--seed', f.seed, 0, 2 ** 31 - 1), cropPolicy: policyFlag(f.cropPolicy), hidden, batch: intFlag('--batch', f.batch, 2, 8192),
    lr: numFlag('--lr', f.lr, 1e-7, 1), noiseStd: numFlag('--noise', f.noise, 0, 100), clsWeight: numFlag('--class-weight', f.classWeight, 0, 1000),
    centerWeight: numFlag('--center-weight', f.centerWeight, 0, 1000),
    balanceWeight: numFlag('--balance-weight', f.balanceWeight, 0, 1000), threads: intFlag('--threads', f.threads, 1, 256),
  };
}

export function register(program: Command): void {
  program
    .command('train-codes')
    .description('train the autoencoder that turns fc7 embeddings into binary codes and export its encoder as ONNX')
    .option('--model <file>', `image model ONNX (default: ${DEFAULT_MODEL} in the package)`)
    .option('--dataset <name|dir>', "'fashion-mnist' (training split), an image folder ROOT/<class>/<image>, or a flat folder of images (unlabelled)", 'fashion-mnist')
    .option('--db <dir>', 'learn from the embeddings stored in this catalog instead (unsupervised; no image is read, --model and --dataset are not used)')
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)')
    .option('--bits <n>', `code length: ${CODE_BITS.join(', ')}`, '128')
    .requiredOption('--out <file.onnx>', 'where to write the codes model')
    .option('--epochs <n>', 'autoencoder epochs', String(DEFAULT_AE.epochs))
    .option('--limit <n>', 'use only the first N images')
    .option('--seed <n>', 'seed for init, order and code noise', String(DEFAULT_AE.seed))
    .option('--crop-policy <p>', `embedding per image: ${CROP_POLICIES.join(' (center crop) or ')} (mean of the 10 crops)`, DEFAULT_CROP_POLICY)
    .option('--hidden <list>', 'hidden layer widths of the encoder, comma-separated (empty: linear)', DEFAULT_AE.hidden.join(','))
    .option('--batch <n>', 'embeddings per Adam step', String(DEFAULT_AE.batch))
    .option('--lr <x>', 'Adam learning rate', String(DEFAULT_AE.lr))
    .option('--noise <σ>', 'σ of the Gaussian noise on the code logits while training (pushes codes to binary)', String(DEFAULT_AE.noiseStd))
    .option('--class-weight <w>', 'weight of the classification loss on the code layer (0 = unsupervised)', String(DEFAULT_AE.clsWeight))
    .option('--center-weight <w>', 'weight of the hash-center loss: each class\'s codes pulled to one code per class (0 = off)', String(DEFAULT_AE.centerWeight))
    .option('--balance-weight <w>', 'weight of the bit-balance term', String(DEFAULT_AE.balanceWeight))
    .option('--threads <n>', 'onnxruntime threads for the embedding pass', '2')
    .action(async (flags: TrainCodesFlags) => {
      if (flags.db !== undefined && flags.model !== undefined) throw CliError.usage('--db trains on the catalog\'s own embeddings, which belong to its model: drop --model');
      const opts = parseTrainCodesFlags(flags, flags.db === undefined);
      await useBackend('wasm');
      let bar: ReturnType<typeof makeBar> | undefined;
      const stop = (): void => {
        bar?.stop();
        bar = undefined;
      };
      try {
        const events: TrainCodesEvents = {
          onPhase: (p) => {
            stop();
            process.stderr.write(`${p}...\n`);
          },
          onEmbed: (done, total) => {
            if (!bar) (bar = makeBar('embedding [{bar}] {value}/{total} images | ETA {eta_formatted}')).start(total, 0);
            bar.update(done);
          },
          onStep: (p) => {
            const payload = { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4), rec: p.rec.toFixed(4), cls: p.cls.toFixed(4) };
            if (!bar) (bar = makeBar('epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} (rec {rec}, class {cls}) | ETA {eta_formatted}')).start(p.steps, 0, payload);
            bar.update(p.step, payload);
            if (p.step === p.steps) stop();
          },
        };
        const res = flags.db !== undefined ? await trainCodesFromDb({ ...opts, db: resolve(flags.db) }, events) : await trainCodes(opts, events);
        stop();
        const m = res.meta.metrics;
        const lines = [
          `wrote ${res.out}: ${res.meta.bits}-bit codes for ${res.meta.model.name} v${res.meta.model.version} (sha256 ${res.meta.modelHash.slice(0, 12)}…), crop policy ${res.meta.cropPolicy}`,
          ...res.trained.history.map((h) => `epoch ${h.epoch}: loss ${h.loss.toFixed(4)} rec ${h.rec.toFixed(4)}${res.meta.classes.length > 0 ? ` class ${h.cls.toFixed(4)} acc ${h.accuracy.toFixed(4)}` : ''} (${formatSeconds(h.seconds)})`),
          `codes: bit imbalance ${(m['bit_imbalance'] ?? 0).toFixed(4)}, unsure logits ${((m['unsure_fraction'] ?? 0) * 100).toFixed(2)}%, dead bits ${m['dead_bits'] ?? 0}`,
          `time: load ${formatSeconds(res.seconds.load)}, embed ${res.images} images ${formatSeconds(res.seconds.embed)}, train ${formatSeconds(res.seconds.train)}, total ${formatSeconds(res.seconds.total)}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        stop();
      }
    });
}
