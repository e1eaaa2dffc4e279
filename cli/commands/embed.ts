/** `sightline embed IMG`: the fc7 embedding (mean over the crops used) and its L2 norm. */
import type { Command } from 'commander';
import { l2Norm, sessionPipeline } from '../../model/index.js';
import { CliError } from '../errors.js';
import { cropsFlag } from '../flags.js';
import { expandImageArgs } from '../paths.js';
import { addModelFlags, maxPixelsFlag, openModel, readImages, reportImageError } from './classify.js';
import type { ModelFlags } from './classify.js';

interface EmbedFlags extends ModelFlags {
  crops: string;
  json?: boolean;
  recursive?: boolean;
  maxPixels: string;
}

const PER_LINE = 8;

/** Values rounded to float32's ~7 significant digits; more would only print noise. */
function formatValues(v: Float32Array): string {
  const lines: string[] = [];
  for (let i = 0; i < v.length; i += PER_LINE) {
    lines.push(Array.from(v.subarray(i, i + PER_LINE), (x) => x.toPrecision(7).padStart(14)).join(' '));
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  addModelFlags(
    program
      .command('embed')
      .description('print the fc7 embedding of each image (averaged over the crops) and its L2 norm; --json prints one JSON object per line')
      .argument('<images...>', 'JPEG, PNG, WebP, GIF, TIFF or AVIF files, or folders of them')
      .option('--recursive', 'a folder stands for the images of its sub-folders too (default: its top level only)')
      .option('--crops <n>', '1 (center crop) or 10 (corners + center, and their mirrors)', '10')
      .option('--json', 'one JSON object: { file, dim, norm, crops, model, embedding }'),
  ).action(async (args: string[], flags: EmbedFlags) => {
    const crops = cropsFlag(flags.crops);
    const maxPixels = maxPixelsFlag(flags.maxPixels);
    const files = expandImageArgs(args, { recursive: flags.recursive === true });
    const images = readImages(files);
    const session = await openModel(flags);
    let failed = 0;
    try {
      const pipeline = sessionPipeline(session, { maxPixels });
      for (const [i, bytes] of images.entries()) {
        const file = files[i] ?? '';
        try {
          const e = await pipeline.encode(bytes, { crops, code: false });
          const norm = l2Norm(e.embedding);
          const model = { name: session.contract.name, version: session.contract.modelVersion };
          if (flags.json) {
            const doc = { file, dim: e.embedding.length, norm, crops: e.crops, model, embedding: Array.from(e.embedding) };
            process.stdout.write(`${JSON.stringify(doc)}\n`);
          } else {
            process.stdout.write(`${file}: ${e.embedding.length}-d fc7 embedding, L2 norm ${norm.toFixed(6)}, mean of ${e.crops} crop${e.crops === 1 ? '' : 's'} (${model.name} v${model.version})\n`);
            process.stdout.write(`${formatValues(e.embedding)}\n`);
          }
        } catch (err) {
          reportImageError(file, err, flags.json === true);
          failed++;
        }
      }
    } finally {
      await session.close();
    }
    if (failed > 0) throw CliError.failure(failed === 1 && files.length === 1 ? `'${files[0] ?? ''}' could not be embedded` : `${failed} of ${files.length} images could not be embedded`);
  });
}
