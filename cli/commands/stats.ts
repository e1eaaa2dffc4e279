/** `sightline stats`: what the index holds, read-only (safe beside a running server). */
import type { Command } from 'commander';
import { inspectIndex, openBackend, type DbLocation } from '../../index/index.js';
import { DB_FLAG_HELP, dbLocation } from '../db.js';
import { asCliError } from './serve.js';

interface StatsFlags {
  db?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('stats')
    .description('number of images, HNSW index size, model hash and code length of an index directory')
    .option('--db <dir|url>', DB_FLAG_HELP)
    .option('--json', 'one JSON object: { images, index_size, model, bits }')
    .action(async (flags: StatsFlags) => {
      const location = dbLocation(flags.db);
      if (location.kind === 'postgres') return postgresStats(location, flags.json === true);
      const s = inspectIndex(location.dir);
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

/** The database is the index: there is no graph file to be behind it. */
async function postgresStats(location: DbLocation, json: boolean): Promise<void> {
  const cat = await openBackend(location, { readOnly: true, create: false }).catch((err: unknown) => {
    throw asCliError(err);
  });
  try {
    const s = await cat.stats();
    if (json) {
      process.stdout.write(`${JSON.stringify({ images: s.images, index_size: s.indexSize, model: s.model, bits: s.bits })}\n`);
      return;
    }
    const lines = [`index      ${cat.location}`, `images     ${s.images}`, `index size ${s.indexSize} (in the database)`, `model      ${s.model}`, `code model ${s.codeModel}`, `bits       ${s.bits}`];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cat.close();
  }
}
