/**
 * `sightline reindex`: rebuild the HNSW graph from the codes stored in SQLite (with new M /
 * efConstruction if given). That needs only the database: codes and embeddings are stored per image.
 *
 * `--codes FILE` first recomputes every code with a new codes model (autoencoder) from the stored
 * fc7 embeddings: no image is read. The stored embeddings are float16, so a bit whose logit is
 * within ~1e-3 of 0 may come out differently than from the float32 embedding at indexing time.
 * The new model must belong to the stored image model and use the crop policy the embeddings were
 * made with (the index does not record the policy; the server embeds with the codes model's own).
 *
 * `--model FILE` (a new image model) is NOT wired yet: see reembedHook below.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { checkCodesFor, createCodesSession } from '../../model/codes.js';
import { Catalog, inspectIndex, reembed } from '../../index/index.js';
import { CliError } from '../errors.js';

interface ReindexFlags {
  db: string;
  m?: string;
  efConstruction?: string;
  model?: string;
  codes?: string;
}

function intFlag(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`'${flag}' must be an integer in [${min}, ${max}], got '${v}'`);
  return n;
}

/** A progress bar on stderr (nothing when stderr is not a terminal). */
function progressBar(label: string, unit: string): { update: (done: number, total: number) => void; stop: () => void } {
  const bar = new SingleBar({ format: `${label} |{bar}| {value}/{total} ${unit} | {percentage}% | eta {eta}s`, hideCursor: true });
  let started = false;
  return {
    update(done, total) {
      if (!started) bar.start(total, done);
      else bar.update(done);
      started = true;
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** SHA-256 of a file, the hash the server records for models (server/services/runtime.ts). */
async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function recode(db: string, codesPath: string): Promise<void> {
  const stored = inspectIndex(db);
  const codes = await createCodesSession(codesPath);
  const bar = progressBar('recomputing codes', 'images');
  try {
    checkCodesFor(codes, stored.model, stored.embeddingDim);
    const codesHash = await fileSha256(codesPath);
    const report = await reembed(db, {
      modelHash: stored.model,
      codesHash,
      bits: codes.bits,
      compute: async (row) => ({ code: await codes.encode(row.embedding, 1) }),
      onProgress: bar.update,
    });
    bar.stop();
    process.stdout.write(`recomputed ${report.updated} codes (${codes.bits} bits) with '${codesPath}'\n`);
  } finally {
    bar.stop();
    await codes.close();
  }
}

/**
 * TODO(server, model): re-embedding with a new image model. It needs the images: the index keeps
 * `source` (a path; uploads live under DATA/uploads) and the sha256, not the bytes. Wire it with
 * the server's own pipeline so stored vectors match what it would compute at upload:
 *   await reembed(db, { modelHash: sha256(model file), codesHash: sha256(codes file), bits: codes.bits,
 *     dropUnavailable: <flag>, onProgress: bar.update,
 *     compute: async (row) => { bytes = read row.source (return null if gone or sha256 differs);
 *       e = await inference.embedImage(bytes, { crops: inference.embedCrops });   // server/services/inference.ts
 *       return { embedding: e.embedding, code: await inference.codes.encode(e.embedding),
 *                labels: topLabels(e.probabilities, inference.info.labels, 5) }; } });
 * The new codes model must be trained for the new image model (checkCodesFor).
 */
function reembedHook(flags: ReindexFlags): never {
  throw new CliError(
    `re-embedding with a new image model (--model '${flags.model ?? ''}') is not available yet: it needs the server's ` +
      'inference pipeline and the images (see cli/commands/reindex.ts). --codes (a new codes model, same image model) works.',
  );
}

export function register(program: Command): void {
  program
    .command('reindex')
    .description('rebuild the HNSW graph from the codes stored in SQLite (the database is the source of truth)')
    .option('--db <dir>', 'index directory', './data')
    .option('--m <n>', 'HNSW graph degree M for the rebuilt graph', '16')
    .option('--ef-construction <n>', 'HNSW efConstruction for the rebuilt graph', '100')
    .option('--codes <file>', 'first recompute every code from the stored embeddings with this codes model (ONNX)')
    .option('--model <file>', 'first re-embed every image with this image model (not available yet)')
    .action(async (flags: ReindexFlags) => {
      const M = intFlag('--m', flags.m, 2, 100);
      const efConstruction = intFlag('--ef-construction', flags.efConstruction, 4, 4096);
      if (flags.model !== undefined) reembedHook(flags);
      if (flags.codes !== undefined) await recode(flags.db, flags.codes);
      const bar = progressBar('rebuilding HNSW', 'codes');
      const started = Date.now();
      const cat = await Catalog.open(flags.db, { create: false, forceRebuild: true, saveDelayMs: null, M, efConstruction, onProgress: bar.update });
      bar.stop();
      try {
        const s = cat.stats();
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(`rebuilt ${s.indexSize} codes (${s.bits} bits) in ${secs} s → ${cat.hnswPath}\n`);
        process.stdout.write(`model ${s.model}\ncode model ${s.codeModel}\n`);
      } finally {
        cat.close();
      }
    });
}
