/** `sightline stats`: what the index holds, read-only (safe beside a running server). */
import type { Command } from 'commander';
import { inspectIndex } from '../../index/index.js';

interface StatsFlags {
  db: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('stats')
    .description('number of images, HNSW index size, model hash and code length of an index directory')
    .option('--db <dir>', 'index directory', './data')
    .option('--json', 'one JSON object: { images, index_size, model, bits }')
    .action((flags: StatsFlags) => {
      const s = inspectIndex(flags.db);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ images: s.images, index_size: s.indexSize, model: s.model, bits: s.bits })}\n`);
        return;
      }
      const state = s.indexCurrent
        ? 'current'
        : `behind the database (graph generation ${s.indexGeneration ?? 'none'}, database ${s.generation}): unsaved writes of a running server, or it will be rebuilt at next open`;
      const lines = [
        `index      ${s.dir}`,
        `images     ${s.images}`,
        `index size ${s.indexSize} (${state})`,
        `model      ${s.model}`,
        `code model ${s.codeModel}`,
        `bits       ${s.bits}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
