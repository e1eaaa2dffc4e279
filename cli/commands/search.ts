/** `sightline search IMG`: the most similar images of the local database, as a table or JSON. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { expandImageArgs } from '../paths.js';
import { pullIfAsked } from './models.js';
import { addRuntimeFlags, asCliError, configFromFlags, openRuntime, terminalLogger } from './serve.js';
import type { RuntimeFlags } from './serve.js';
import type { Runtime } from '../../server/index.js';

interface SearchFlags extends RuntimeFlags {
  k: string;
  json?: boolean;
  label?: string;
  rerank: boolean;
  maxDistance?: string;
  recursive?: boolean;
}

function fmt(d: number | null): string {
  return d === null ? '-' : d.toFixed(3);
}

export function register(program: Command): void {
  addRuntimeFlags(
    program
      .command('search')
      .description('find the indexed images most similar to IMG (Hamming candidates on binary codes, re-ranked by embedding distance)')
      .argument('<images...>', 'query image files, or folders of them (one search per image)')
      .option('--recursive', 'a folder stands for the images of its sub-folders too (default: its top level only)')
      .option('--k <n>', 'results', '10')
      .option('--json', 'one line per query: { "query": FILE, "results": [{ id, source, distance, hamming, labels, unknown, ood_score, near_duplicate }] }')
      .option('--label <label>', 'only images whose top label is this')
      .option('--no-rerank', 'order by Hamming distance only')
      .option('--max-distance <d>', 'only hits within this fc7 Euclidean distance (the `distance` column; bundled model: 1.82 best separated edited copies from other images, README Retrieval)'),
  ).action(async (args: string[], flags: SearchFlags) => {
    const k = intFlag('--k', flags.k, 1, 100);
    const maxDistance = flags.maxDistance === undefined ? undefined : Number(flags.maxDistance);
    if (maxDistance !== undefined && !(Number.isFinite(maxDistance) && maxDistance >= 0 && flags.maxDistance?.trim() !== '')) {
      throw CliError.usage(`--max-distance must be a finite number ≥ 0, got '${flags.maxDistance}'`);
    }
    if (maxDistance !== undefined && !flags.rerank) throw CliError.usage('--max-distance needs the re-rank (it bounds the embedding distance): drop --no-rerank');
    const files = expandImageArgs(args, { recursive: flags.recursive === true });
    await pullIfAsked(flags);
    const config = configFromFlags(flags, { demo: false });
    const rt = await openRuntime(config, terminalLogger(false), { readOnly: true });
    try {
      for (const file of files) {
        if (!flags.json && files.length > 1) process.stdout.write(`${file}\n`);
        await searchOne(rt, file, readFileSync(file), { k, json: flags.json === true, label: flags.label, rerank: flags.rerank, maxDistance });
      }
    } finally {
      await rt.close();
    }
  });
}

interface SearchOptions {
  k: number;
  json: boolean;
  label: string | undefined;
  rerank: boolean;
  maxDistance: number | undefined;
}

/** One query: the table, or one JSON line naming the query file. */
async function searchOne(rt: Runtime, query: string, bytes: Buffer, o: SearchOptions): Promise<void> {
  const { k, label, maxDistance } = o;
  const hits = await rt.gallery.search(bytes, { k, rerank: o.rerank, ...(label ? { label } : {}), ...(maxDistance === undefined ? {} : { maxDistance }) }).catch((err: unknown) => {
    throw asCliError(err);
  });
  const results = hits.map(({ id, source, distance, hamming, labels, unknown, ood_score, near_duplicate }) => ({ id, source, distance, hamming, labels, unknown, ood_score, near_duplicate }));
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ query, results })}\n`);
    return;
  }
  const rows = results.map((r, i) => `${String(i + 1).padStart(3)}  ${String(r.id).padStart(6)}  ${fmt(r.distance).padStart(8)}  ${String(r.hamming).padStart(7)}  ${(r.labels[0] ?? '').padEnd(12)}  ${r.source}`);
  process.stdout.write(`${['  #      id  distance  hamming  label         source', ...rows].join('\n')}\n`);
  if (results.length === 0) {
    process.stdout.write(maxDistance !== undefined ? `(nothing within distance ${maxDistance})\n` : '(the index is empty: add images with `sightline index DIR`)\n');
  }
}
