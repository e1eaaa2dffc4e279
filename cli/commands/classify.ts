/**
 * `sightline classify IMG...`: top-k labels per image with the paper's 10-crop averaging.
 * Also home of what `embed` shares with it: the model flags, session opening and image reading
 * (flag parsers and the default model path live in cli/flags.ts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createSession, DEVICES, ModelError, sessionPipeline } from '../../model/index.js';
import type { DeviceRequest, EncodedImage, ModelSession } from '../../model/index.js';
import { CliError } from '../errors.js';
import { cropsFlag, DEFAULT_MODEL, intFlag, packageRoot } from '../flags.js';
import { expandImageArgs } from '../paths.js';
import { modelArgPath } from './models.js';

const DEFAULT_MAX_PIXELS = 100_000_000;

function deviceFlag(raw: string): DeviceRequest {
  const d = DEVICES.find((x) => x === raw);
  if (!d) throw CliError.usage(`--device must be one of ${DEVICES.join(', ')}, got '${raw}'`);
  return d;
}

/** Reads every image up front (after expandImageArgs) so a typo fails before a model loads. */
export function readImages(files: readonly string[]): Buffer[] {
  return files.map((f) => {
    if (!existsSync(f)) throw CliError.failure(`image file '${f}' does not exist`);
    if (!statSync(f).isFile()) throw CliError.usage(`image path '${f}' is not a file`);
    return readFileSync(f);
  });
}

export interface ModelFlags {
  model?: string;
  pull?: boolean;
  device: string;
  threads: string;
}

export function addModelFlags(cmd: Command): Command {
  return cmd
    .option('--model <file|name>', `ONNX model with a Sightline contract, or a registry name (sightline models list) (default: ${DEFAULT_MODEL} in the package)`)
    .option('--pull', 'when --model names a registry model that is not pulled yet, pull it first')
    .option('--device <name>', `execution provider: ${DEVICES.join(', ')}`, 'auto')
    .option('--threads <n>', 'onnxruntime intra-op threads', '2')
    .option('--max-pixels <n>', 'refuse images with more pixels than this', String(DEFAULT_MAX_PIXELS));
}

export function maxPixelsFlag(raw: string): number {
  return intFlag('--max-pixels', raw, 1, 1_000_000_000);
}

export async function openModel(flags: ModelFlags): Promise<ModelSession> {
  const device = deviceFlag(flags.device);
  const threads = intFlag('--threads', flags.threads, 1, 256);
  const path = flags.model !== undefined ? await modelArgPath(flags.model, flags.pull === true) : join(packageRoot(), DEFAULT_MODEL);
  if (!existsSync(path)) {
    const hint = flags.model !== undefined ? '' : ' (the default model is produced by training; or pass --model FILE)';
    throw CliError.failure(`model file '${path}' does not exist${hint}`);
  }
  const logger = { info: () => undefined, warn: (_obj: object, msg: string) => void process.stderr.write(`sightline: ${msg}\n`) };
  try {
    return await createSession(path, { device, threads, logger });
  } catch (err) {
    // Contract, ONNX and load errors all mean "this file cannot be served": say so without a stack.
    throw CliError.failure(err instanceof Error ? err.message : String(err));
  }
}

/** Per-image failures (HEIC, corrupt bytes) are reported and the remaining images still run. */
export function reportImageError(file: string, err: unknown, json: boolean): void {
  if (!(err instanceof ModelError)) throw err;
  process.stderr.write(`sightline: ${file}: ${err.message}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ file, error: { code: err.kind, reason: err.code, message: err.message } })}\n`);
}

/** "T-shirt/top, Trouser, … (10 labels)": all labels when few, the first ones and the count when many. */
export function noneOf(labels: readonly string[]): string {
  return labels.length <= 12 ? labels.join(', ') : `${labels.slice(0, 8).join(', ')}, … (${labels.length} labels)`;
}

function printTable(file: string, r: EncodedImage, session: ModelSession): void {
  const { name, modelVersion } = session.contract;
  const lines = [
    `${file}  ${r.image.width}×${r.image.height} ${r.image.format}  ${r.crops} crop${r.crops === 1 ? '' : 's'}, agreement ${r.agreement ?? 0}/${r.crops}  (${name} v${modelVersion}, ${session.provider})`,
    '   #  probability  index  label',
    ...(r.labels ?? []).map((p, i) => `${String(i + 1).padStart(4)}  ${p.probability.toFixed(4).padStart(11)}  ${String(p.index).padStart(5)}  ${p.label}`),
    r.unknown ? `   unknown image: none of ${noneOf(session.contract.labels)} (ood score ${r.ood_score} > ${session.contract.ood?.threshold ?? '?'})` : `   known (ood score ${r.ood_score})`,
  ];
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

interface ClassifyFlags extends ModelFlags {
  recursive?: boolean;
  crops: string;
  topk: string;
  json?: boolean;
  maxPixels: string;
}

export function register(program: Command): void {
  addModelFlags(
    program
      .command('classify')
      .description('classify images (top-k labels, softmax averaged over the paper\'s 10 crops); --json prints one JSON object per line')
      .argument('<images...>', 'JPEG, PNG, WebP, GIF, TIFF or AVIF files, or folders of them')
      .option('--recursive', 'a folder stands for the images of its sub-folders too (default: its top level only)')
      .option('--crops <n>', '1 (center crop) or 10 (corners + center, and their mirrors)', '10')
      .option('--topk <n>', 'labels to print per image', '5')
      .option('--json', 'JSON lines: { file, predictions, unknown, ood_score, crops, agreement, model }'),
  ).action(async (args: string[], flags: ClassifyFlags) => {
    const crops = cropsFlag(flags.crops);
    const topk = intFlag('--topk', flags.topk, 1, 100);
    const maxPixels = maxPixelsFlag(flags.maxPixels);
    const files = expandImageArgs(args, { recursive: flags.recursive === true });
    const images = readImages(files);
    const session = await openModel(flags);
    const pipeline = sessionPipeline(session, { maxPixels });
    let failed = 0;
    try {
      for (const [i, bytes] of images.entries()) {
        const file = files[i] ?? '';
        try {
          const r = await pipeline.encode(bytes, { crops, labels: topk, ood: true, code: false });
          if (!flags.json) printTable(file, r, session);
          else {
            const model = { name: session.contract.name, version: session.contract.modelVersion };
            process.stdout.write(`${JSON.stringify({ file, predictions: r.labels, unknown: r.unknown, ood_score: r.ood_score, crops: r.crops, agreement: r.agreement, model })}\n`);
          }
        } catch (err) {
          reportImageError(file, err, flags.json === true);
          failed++;
        }
      }
    } finally {
      await session.close();
    }
    if (failed > 0) throw CliError.failure(`${failed} of ${images.length} image${images.length === 1 ? '' : 's'} could not be classified`);
  });
}
