/**
 * `sightline reindex`: rebuild the HNSW graph from the codes stored in SQLite (with new M /
 * efConstruction if given). Needs only the database: codes and embeddings are stored per image.
 *
 * Re-embedding after a model change is the other half and is NOT wired yet: it needs the new
 * ONNX model (model/session.ts, model/classify.ts) AND the autoencoder that turns fc7 embeddings
 * into codes (training/, not exported yet), plus the images themselves (the index keeps `source`
 * and sha256, not the bytes). The library part is done and tested (index/reembed.ts); the hook
 * below is where it plugs in.
 */
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { Catalog, type ReembedRow } from '../../index/index.js';
import { CliError } from '../errors.js';

interface ReindexFlags {
  db: string;
  m?: string;
  efConstruction?: string;
  model?: string;
  codeModel?: string;
}

function intFlag(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`'${flag}' must be an integer in [${min}, ${max}], got '${v}'`);
  return n;
}

/** A progress bar on stderr (nothing when stderr is not a terminal). */
export function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const bar = new SingleBar({ format: `${label} |{bar}| {value}/{total} codes | {percentage}% | eta {eta}s`, hideCursor: true, clearOnComplete: false });
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

/**
 * TODO(model, autoencoder): re-embedding hook. Once the autoencoder can be loaded, implement as:
 *   const session = await createSession(flags.model); const encoder = await loadCodeModel(flags.codeModel);
 *   await reembed(dir, { modelHash: <model file hash>, codesHash: <encoder hash>, bits: encoder.bits,
 *     dropUnavailable: <a flag>, onProgress: bar.update,
 *     compute: async (row) => { read row.source (null if gone or its sha256 differs);
 *       classifyImage/embedImage → { embedding, labels, code: encoder.encode(embedding) } } });
 * With only a new code model, `compute` can use row.embedding (stored) and skip the images.
 * The hashes must be the ones the server passes to Catalog.open (modelHash / codesHash).
 */
async function reembedHook(flags: ReindexFlags): Promise<(row: ReembedRow) => Promise<never>> {
  throw new CliError(
    `re-embedding with --model '${flags.model ?? ''}'${flags.codeModel ? ` / --code-model '${flags.codeModel}'` : ''} is not available yet: ` +
      'it needs the autoencoder export from training/ (index/reembed.ts is ready for it). Rebuild the graph without --model meanwhile.',
  );
}

export function register(program: Command): void {
  program
    .command('reindex')
    .description('rebuild the HNSW graph from the codes stored in SQLite (the database is the source of truth)')
    .option('--db <dir>', 'index directory', './data')
    .option('--m <n>', 'HNSW graph degree M for the rebuilt graph', '16')
    .option('--ef-construction <n>', 'HNSW efConstruction for the rebuilt graph', '100')
    .option('--model <file>', 're-embed every image with this ONNX model first (not available yet)')
    .option('--code-model <file>', 'recompute codes with this autoencoder first (not available yet)')
    .action(async (flags: ReindexFlags) => {
      if (flags.model !== undefined || flags.codeModel !== undefined) await reembedHook(flags);
      const bar = progressBar('rebuilding HNSW');
      const started = Date.now();
      const cat = await Catalog.open(flags.db, {
        create: false,
        forceRebuild: true,
        saveDelayMs: null,
        M: intFlag('--m', flags.m, 2, 100),
        efConstruction: intFlag('--ef-construction', flags.efConstruction, 4, 4096),
        onProgress: bar.update,
      });
      bar.stop();
      try {
        const s = cat.stats();
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(`rebuilt ${s.indexSize} codes (${s.bits} bits) in ${secs} s → ${cat.hnswPath}\n`);
        process.stdout.write(`model ${s.model}, code model ${s.codeModel}: if the model changed, the stored vectors need re-embedding (--model).\n`);
      } finally {
        cat.close();
      }
    });
}
