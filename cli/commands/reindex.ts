/**
 * `sightline reindex`: rebuild the HNSW graph from the codes stored in SQLite (with new M /
 * efConstruction if given). That needs only the database: codes and embeddings are stored per image.
 *
 * `--codes FILE` first recomputes every code with a new codes model (autoencoder) from the stored
 * fc7 embeddings: no image is read. The stored embeddings are float16, so a bit whose logit is
 * within ~1e-3 of 0 may come out differently than from the float32 embedding at indexing time.
 * The new model must belong to the stored image model and use the crop policy the embeddings were
 * made with (the index does not record the policy; the server embeds with the codes model's own).
 * `--codes random-projection` switches to the data-independent code (model/codes-fallback.ts), the
 * one the server uses for a model without a codes model; a catalog made with it switches to a
 * trained codes model (`train-codes --db`) the same way.
 *
 * `--model FILE` (a new image model) re-reads every image from its stored source and embeds it with
 * the new model and `--codes` (default: the bundled codes model, which only fits the bundled model).
 *
 * `--db postgres://…`: the same three, on the database (index/pg/reembed.ts): the new vectors are
 * staged while replicas keep serving and switched in one transaction, which also rebuilds the
 * pgvector index; an interrupted run leaves the old catalog serving and resumes when rerun.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { checkCodesFor, createCodesSession, fallbackCodes, fallbackCodesName, sha256File, registryCodesPath, sightlineHome } from '../../model/index.js';
import { Catalog, openBackend, PostgresBackend, reembedAt, storedMetaAt, type DbLocation } from '../../index/index.js';
import { DB_FLAG_HELP, dbLocation } from '../db.js';
import { CliError } from '../errors.js';
import { packageRoot } from '../flags.js';
import { reembedWithModel } from '../../server/index.js';
import { modelPath } from './train-codes.js';
import { asCliError } from './serve.js';

interface ReindexFlags {
  db?: string;
  m?: string;
  efConstruction?: string;
  model?: string;
  codes?: string;
  dropUnavailable?: boolean;
}

function intFlag(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw CliError.usage(`'${flag}' must be an integer in [${min}, ${max}], got '${v}'`);
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


/** `--codes random-projection`: the data-independent fallback code (model/codes-fallback.ts). */
export const FALLBACK_CODES_ARG = 'random-projection';

type HnswFlags = { M: number | undefined; efConstruction: number | undefined };

async function recode(location: DbLocation, codesPath: string, index: HnswFlags): Promise<void> {
  const stored = await storedMetaAt(location).catch((err: unknown) => {
    throw asCliError(err);
  });
  const fallback = codesPath === FALLBACK_CODES_ARG;
  const codes = fallback ? fallbackCodes(stored.modelHash, stored.embeddingDim) : await createCodesSession(resolve(codesPath));
  const bar = progressBar('recomputing codes', 'images');
  try {
    checkCodesFor(codes, stored.modelHash, stored.embeddingDim);
    const codesHash = fallback ? fallbackCodesName() : await sha256File(codesPath);
    const report = await reembedAt(location, {
      modelHash: stored.modelHash,
      codesHash,
      bits: codes.bits,
      compute: async (row) => ({ code: await codes.encode(row.embedding, 1) }),
      onProgress: bar.update,
      index,
    });
    bar.stop();
    process.stdout.write(`recomputed ${report.updated} codes (${codes.bits} bits) with '${codesPath}'\n`);
  } finally {
    bar.stop();
    await codes.close();
  }
}

/** A new image model: every source is read again and embedded (server/services/reembed.ts). */
async function reembedModel(location: DbLocation, flags: ReindexFlags, modelPath: string, index: HnswFlags): Promise<void> {
  const codesPath = resolve(flags.codes ?? (flags.model !== undefined ? registryCodesPath(flags.model, sightlineHome()) : undefined) ?? join(packageRoot(), 'model/default/codes-128.onnx'));
  const bar = progressBar('re-embedding', 'images');
  try {
    const r = await reembedWithModel(location, { modelPath, codesPath, dropUnavailable: flags.dropUnavailable === true, onProgress: bar.update, index });
    bar.stop();
    process.stdout.write(`re-embedded ${r.updated} images with '${modelPath}' and '${codesPath}' (${r.bits} bits)` + (r.removed ? `, removed ${r.removed} whose source is gone` : '') + '\n');
    if (!r.complete) {
      const kept =
        location.kind === 'postgres'
          ? 'nothing was switched: the catalog still serves the old model, and the images re-embedded so far are kept for the rerun.'
          : 'they keep the old vectors, so the index still belongs to the old model.';
      throw CliError.failure(
        `${r.unavailable.length} images could not be re-embedded (source gone or changed; first ids ${r.unavailable.slice(0, 5).join(', ')}); ${kept} ` +
          'Restore the files and rerun, or pass --drop-unavailable to delete them.',
      );
    }
  } catch (err) {
    throw err instanceof CliError ? err : asCliError(err);
  } finally {
    bar.stop();
  }
}

export function register(program: Command): void {
  program
    .command('reindex')
    .description('rebuild the HNSW graph (SQLite) or the pgvector index (PostgreSQL) from the stored codes; --codes / --model recompute them first')
    .option('--db <dir|url>', DB_FLAG_HELP)
    .option('--m <n>', 'HNSW graph degree M for the rebuilt graph', '16')
    .option('--ef-construction <n>', 'HNSW efConstruction for the rebuilt graph', '100')
    .option('--codes <file>', "first recompute every code from the stored embeddings with this codes model (ONNX), or 'random-projection' for the data-independent code")
    .option('--model <file|name>', "first re-embed every image (read again from its source) with this image model (a file or a pulled registry name) and --codes (default: a registry model's own codes model); with the serving model, re-encodes only images not yet scored as unknown or known")
    .option('--drop-unavailable', 'with --model: delete images whose source file is gone or changed')
    .action(async (flags: ReindexFlags) => {
      const M = intFlag('--m', flags.m, 2, 100);
      const efConstruction = intFlag('--ef-construction', flags.efConstruction, 4, 4096);
      if (flags.dropUnavailable === true && flags.model === undefined) throw CliError.usage("'--drop-unavailable' applies to --model only (a new codes model reads no image)");
      const location = dbLocation(flags.db);
      if (flags.model !== undefined) await reembedModel(location, flags, modelPath(flags.model), { M, efConstruction });
      else if (flags.codes !== undefined) await recode(location, flags.codes, { M, efConstruction });
      if (location.kind === 'postgres') return reindexPostgres(location, flags, { M, efConstruction });
      const db = location.dir;
      const bar = progressBar('rebuilding HNSW', 'codes');
      const started = Date.now();
      const cat = await Catalog.open(db, { create: false, forceRebuild: true, saveDelayMs: null, M, efConstruction, onProgress: bar.update });
      bar.stop();
      for (const w of cat.openReport.warnings) process.stderr.write(`sightline: warning: ${w}\n`);
      try {
        const s = cat.stats();
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(`rebuilt the graph of ${s.indexSize} images (${s.distinctCodes} distinct ${s.bits}-bit codes) in ${secs} s → ${cat.hnswPath}\n`);
        process.stdout.write(`model ${s.model}\ncode model ${s.codeModel}\n`);
      } finally {
        cat.close();
      }
    });
}

/**
 * PostgreSQL keeps its index inside the database: rebuilt here, or already by the switch of
 * --codes / --model (pg/reembed.ts), which then only reports the result.
 */
async function reindexPostgres(location: Extract<DbLocation, { kind: 'postgres' }>, flags: ReindexFlags, params: HnswFlags): Promise<void> {
  const cat = await openBackend(location, { create: false }).catch((err: unknown) => {
    throw asCliError(err);
  });
  try {
    if (!(cat instanceof PostgresBackend)) throw new Error('a postgres:// location opened another backend');
    if (flags.model !== undefined || flags.codes !== undefined) {
      const s = await cat.stats();
      process.stdout.write(`${cat.location}: ${s.images} images, ${s.bits}-bit codes, ${cat.engine === 'hnsw' ? 'pgvector HNSW index rebuilt' : 'exact scan (no pgvector)'}\nmodel ${s.model}\ncode model ${s.codeModel}\n`);
      return;
    }
    const started = Date.now();
    const done = await cat.rebuildIndex(params).catch((err: unknown) => {
      throw asCliError(err);
    });
    const s = await cat.stats();
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      done === 'rebuilt'
        ? `rebuilt the pgvector HNSW index of ${s.images} images (${s.bits}-bit codes) in ${secs} s → ${cat.location}\n`
        : `nothing to rebuild: ${cat.location} has no pgvector, every search is an exact scan of its ${s.images} images\n`,
    );
  } finally {
    await cat.close();
  }
}
