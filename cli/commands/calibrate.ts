/**
 * `sightline calibrate --model M (--dataset fashion-mnist | --dir DIR)`: fits when a classification
 * is `unknown` (model/ood.ts) on in-distribution images and writes it beside the model as
 * `<model>.ood.json`. Fashion-MNIST uses its true labels for the class means; a folder of a user's
 * own images uses the model's predicted classes. Also used by `models pull --calibration DIR`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import sharp from 'sharp';
import { classifyImage, createSession, fitOod, OOD_STATISTICS, writeOodSidecar } from '../../model/index.js';
import type { OodFeatures, OodStatistic } from '../../model/index.js';
import { loadFashionMnist } from '../../training/index.js';
import { CliError } from '../errors.js';
import { cropsFlag, intFlag, numFlag } from '../flags.js';
import { modelArgPath } from './models.js';

/** What `calibrate` uses unless told otherwise; chosen by `npm run bench -- ood` (README). */
export const DEFAULT_STATISTIC: OodStatistic = 'energy';

export interface CalibrateOptions {
  modelPath: string;
  /** 'fashion-mnist' (its training split) or a folder of images. */
  source: string;
  statistic: OodStatistic;
  keep: number;
  limit: number;
  crops: 1 | 10;
  dataDir?: string;
}

const IMAGE = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;

function imageFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((n) => IMAGE.test(n))
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile())
    .sort();
}

/** Fits and writes the sidecar; returns its path and the fitted threshold. */
export async function calibrate(o: CalibrateOptions): Promise<{ path: string; threshold: number; images: number }> {
  const session = await createSession(o.modelPath, { device: 'cpu', threads: 2 });
  try {
    const feats: OodFeatures[] = [];
    const labels: number[] = [];
    const add = async (bytes: Buffer, label?: number): Promise<void> => {
      const r = await classifyImage(session, bytes, { crops: o.crops, topk: 1, maxPixels: 100_000_000 });
      feats.push({ meanLogits: r.meanLogits, embedding: r.embedding });
      labels.push(label ?? r.predictions[0]?.index ?? 0);
    };
    let fittedOn: string;
    if (o.source === 'fashion-mnist') {
      const ds = await loadFashionMnist('train', { size: 28, limit: o.limit, dir: o.dataDir });
      for (let i = 0; i < ds.n; i++) {
        const raw = Buffer.from(ds.pixels.subarray(i * 784, (i + 1) * 784));
        await add(await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer(), ds.labels[i]);
      }
      fittedOn = `fashion-mnist train[0:${ds.n}], true labels, ${o.crops} crops`;
    } else {
      const files = imageFiles(o.source).slice(0, o.limit);
      if (files.length === 0) throw CliError.failure(`calibration folder '${o.source}' holds no images`);
      for (const f of files) await add(readFileSync(f));
      fittedOn = `${files.length} images of ${o.source}, predicted labels, ${o.crops} crops`;
    }
    const ood = fitOod(feats, labels, { statistic: o.statistic, keep: o.keep, fittedOn });
    return { path: await writeOodSidecar(o.modelPath, ood), threshold: ood.threshold, images: feats.length };
  } finally {
    await session.close();
  }
}

interface CalibrateFlags {
  model?: string;
  dataset?: string;
  dir?: string;
  data?: string;
  statistic: OodStatistic;
  keep: string;
  limit: string;
  crops: string;
}

export function register(program: Command): void {
  program
    .command('calibrate')
    .description("fit when a classification is 'unknown' (out of distribution) on in-distribution images; writes <model>.ood.json beside the model")
    .requiredOption('--model <file|name>', 'image model ONNX or pulled registry name')
    .option('--dataset <name>', "'fashion-mnist': its training split, with true labels")
    .option('--data <dir>', 'folder of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)')
    .option('--dir <folder>', "a folder of the user's own in-distribution images (recursive)")
    .addOption(new Option('--statistic <name>', 'score (see model/ood.ts)').choices([...OOD_STATISTICS]).default(DEFAULT_STATISTIC))
    .option('--keep <fraction>', 'share of the calibration images kept known', '0.97')
    .option('--limit <n>', 'at most this many images', '3000')
    .option('--crops <n>', '1 or 10 crops per image (as classify)', '10')
    .action(async (f: CalibrateFlags) => {
      if ((f.dataset === undefined) === (f.dir === undefined)) throw CliError.usage('give exactly one of --dataset fashion-mnist or --dir FOLDER');
      if (f.dataset !== undefined && f.dataset !== 'fashion-mnist') throw CliError.usage(`--dataset must be 'fashion-mnist', got '${f.dataset}'`);
      if (f.dir !== undefined && statSync(f.dir, { throwIfNoEntry: false })?.isDirectory() !== true) throw CliError.failure(`--dir folder '${f.dir}' does not exist`);
      const r = await calibrate({
        modelPath: await modelArgPath(f.model ?? '', false),
        source: f.dataset ?? resolve(f.dir ?? ''),
        dataDir: f.data && resolve(f.data),
        statistic: f.statistic,
        keep: numFlag('--keep', f.keep, 0.5, 1),
        limit: intFlag('--limit', f.limit, 1, 1e7),
        crops: cropsFlag(f.crops),
      });
      process.stdout.write(`wrote ${r.path}: ${f.statistic} threshold ${r.threshold} keeps ${f.keep} of ${r.images} images known\n`);
    });
}
