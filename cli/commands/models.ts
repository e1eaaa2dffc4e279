/**
 * `sightline models list [--json] | pull NAME [--from FILE] | path NAME | rm NAME`: pretrained
 * models by name, downloaded once into SIGHTLINE_HOME (default ~/.cache/sightline), verified and
 * imported. Also home of `pullIfAsked`, which the commands taking `--model NAME --pull` share.
 */
import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readContract, ModelError, codesPathFor, entryModelPath, isPulled, pullModel, REGISTRY, removeModel, requireEntry, resolveModelArg, sightlineHome, sha256File } from '../../model/index.js';
import type { Progress, RegistryEntry } from '../../model/index.js';
import { CliError } from '../errors.js';
import { formatSeconds, makeBar } from '../progress.js';

const MB = 1024 * 1024;

function mirrorOf(flag: string | undefined): string | undefined {
  return flag ?? (process.env['SIGHTLINE_MODEL_MIRROR'] || undefined);
}

/** An unknown registry name is a wrong argument (exit 2); a failed download or file is a failure (exit 1). */
function asCli(err: unknown): unknown {
  if (!(err instanceof ModelError)) return err;
  return err.code === 'registry_unknown_model' ? CliError.usage(err.message) : CliError.failure(err.message);
}

/** A bar with bytes, rate and time left; the rate counts only this run's bytes, not resumed ones. */
function downloadBar(): { onProgress: (p: Progress) => void; stop: () => void } {
  const bar = makeBar('{bar} {percentage}% | {got}/{size} MB | {rate} MB/s | ETA {left}');
  const start = Date.now();
  let started = false;
  return {
    onProgress: (p) => {
      const secs = Math.max((Date.now() - start) / 1000, 1e-3);
      const rate = (p.received - p.resumedFrom) / secs;
      const payload = { got: (p.received / MB).toFixed(1), size: (p.total / MB).toFixed(1), rate: (rate / MB).toFixed(1), left: rate > 0 ? formatSeconds((p.total - p.received) / rate) : '?' };
      if (!started) {
        started = true;
        if (p.resumedFrom > 0) process.stderr.write(`resuming at ${(p.resumedFrom / MB).toFixed(1)} MB\n`);
        bar.start(p.total, p.received, payload);
      } else bar.update(p.received, payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

const LSH_BITS = 128;
const LSH_SEED = 20121203;

/**
 * Search needs a codes model that belongs to the image model. A downloaded model has no training
 * data here, so its pull writes a random-projection (SimHash) encoder of the L2-normalized fc7:
 * no training, seeded, 128 bits. `sightline train-codes --model NAME` replaces it with a trained one.
 */
export async function writeLshCodes(modelPath: string, codesPath: string): Promise<void> {
  // training/ loads TensorFlow.js: only a pull that writes codes pays for it, not every command that
  // resolves a model name (serve, classify, index, search...).
  const { exportCodesOnnx, gaussianFill, mulberry32, normalizationDescription } = await import('../../training/index.js');
  const contract = await readContract(modelPath);
  const dim = contract.embeddingDim;
  const w = gaussianFill(new Float32Array(dim * LSH_BITS), 1, mulberry32(LSH_SEED));
  const bytes = exportCodesOnnx(
    { norm: { mean: new Float32Array(dim), scale: 1 }, layers: [{ w, wShape: [dim, LSH_BITS], b: new Float32Array(LSH_BITS) }] },
    {
      version: 1, bits: LSH_BITS, embeddingDim: dim, modelHash: await sha256File(modelPath), model: { name: contract.name, version: contract.modelVersion },
      cropPolicy: 'center', normalization: normalizationDescription(), hidden: [], classes: [], metrics: {}, training: { method: 'random projection (SimHash), untrained', seed: LSH_SEED },
    },
  );
  const tmp = `${codesPath}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, codesPath);
}

export async function pullWithProgress(name: string, opts: { from?: string; force?: boolean; mirror?: string }): Promise<string> {
  const bar = downloadBar();
  try {
    const res = await pullModel(name, {
      home: sightlineHome(),
      mirror: mirrorOf(opts.mirror),
      from: opts.from,
      force: opts.force,
      onProgress: bar.onProgress,
      log: (line) => {
        bar.stop();
        process.stderr.write(`${line}\n`);
      },
    });
    const codes = codesPathFor(sightlineHome(), name);
    if (!res.entry.bundledPath && (res.fetched || !existsSync(codes))) await writeLshCodes(res.path, codes);
    return res.path;
  } catch (err) {
    throw asCli(err);
  } finally {
    bar.stop();
  }
}

/** `--model VALUE` for the commands that open a model: a registry name (pulled first with --pull) or a file. */
export async function modelArgPath(value: string, pull: boolean): Promise<string> {
  try {
    if (pull && REGISTRY.some((e) => e.name === value)) return await pullWithProgress(value, {});
    return resolveModelArg(value, sightlineHome());
  } catch (err) {
    throw asCli(err);
  }
}

/** `--pull` on serve, index and search: pull the --model (or SIGHTLINE_MODEL) name before the config resolves it. */
export async function pullIfAsked(flags: { model?: string; pull?: boolean }): Promise<void> {
  const value = flags.model ?? process.env['SIGHTLINE_MODEL'];
  if (flags.pull && value !== undefined && REGISTRY.some((e) => e.name === value)) await pullWithProgress(value, {});
}

async function listEntry(e: RegistryEntry, home: string): Promise<Record<string, unknown>> {
  const path = entryModelPath(e, home);
  const pulled = isPulled(e, home);
  // The bundled file's hash and size are read from it, so the listing never goes stale after retraining.
  const bundled = e.bundledPath && pulled ? { sha256: await sha256File(path), size: statSync(path).size } : {};
  return { ...e, ...bundled, pulled, path: pulled ? path : null };
}

async function runList(json: boolean): Promise<void> {
  const home = sightlineHome();
  const rows = await Promise.all(REGISTRY.map((e) => listEntry(e, home)));
  if (json) {
    process.stdout.write(`${JSON.stringify({ home, models: rows }, null, 2)}\n`);
    return;
  }
  const lines = REGISTRY.map((e, i) => {
    const size = e.size > 0 ? `${(e.size / MB).toFixed(1)} MB` : 'bundled';
    const acc = `top-1 ${(e.accuracy.top1 * 100).toFixed(2)} %${e.accuracy.top5 ? ` / top-5 ${(e.accuracy.top5 * 100).toFixed(2)} %` : ''}`;
    const state = rows[i]?.['pulled'] ? 'pulled' : 'not pulled';
    return `${e.name.padEnd(24)} ${state.padEnd(11)} ${size.padEnd(9)} ${e.license.padEnd(13)} ${acc}\n    ${e.description}`;
  });
  process.stdout.write(`${lines.join('\n')}\ncache: ${home}\n`);
}

function runPath(name: string): void {
  const entry = requireEntry(name);
  const path = entryModelPath(entry, sightlineHome());
  if (!existsSync(path)) throw CliError.failure(`model '${name}' is not pulled yet: run 'sightline models pull ${name}'`);
  process.stdout.write(`${path}\n`);
}

export function register(program: Command): void {
  const models = program.command('models').description('pretrained models by name: list, pull (download, verify, import), path, rm');
  models
    .command('list')
    .description('every registry entry: name, state, size, licence, published accuracy')
    .option('--json', 'all fields of every entry (sha256, url, preset, labels, ...) as JSON')
    .action((f: { json?: boolean }) => runList(f.json === true));
  models
    .command('pull')
    .description('download into SIGHTLINE_HOME (resumable, SHA-256 checked; mirror: SIGHTLINE_MODEL_MIRROR), then import once')
    .argument('<name>', 'registry name (see models list)')
    .option('--from <file>', 'register a copy fetched elsewhere instead of downloading (checked the same way)')
    .option('--mirror <url-or-dir>', 'base URL or folder holding the files under their own names (env SIGHTLINE_MODEL_MIRROR)')
    .option('--force', 'import again even if an imported model is cached')
    .option('--calibration <dir>', "fit when a classification is 'unknown' on your own in-distribution images (default: max-softmax under 20 %)")
    .action(async (name: string, f: { from?: string; mirror?: string; force?: boolean; calibration?: string }) => {
      const path = await pullWithProgress(name, f);
      if (f.calibration !== undefined) {
        const { calibrate, DEFAULT_STATISTIC } = await import('./calibrate.js');
        const r = await calibrate({ modelPath: path, source: resolve(f.calibration), statistic: DEFAULT_STATISTIC, keep: 0.97, limit: 3000, crops: 10 });
        process.stderr.write(`wrote ${r.path}: ${DEFAULT_STATISTIC} threshold ${r.threshold} keeps 97 % of ${r.images} images known\n`);
      }
      process.stdout.write(`${path}\n`);
    });
  models
    .command('path')
    .description("print the imported model's file (for --model or SIGHTLINE_MODEL)")
    .argument('<name>', 'registry name')
    .action((name: string) => {
      try {
        runPath(name);
      } catch (err) {
        throw asCli(err);
      }
    });
  models
    .command('rm')
    .description('delete a pulled model (download and import) from the cache')
    .argument('<name>', 'registry name')
    .action((name: string) => {
      try {
        const removed = removeModel(name, sightlineHome());
        process.stdout.write(removed ? `removed ${name}\n` : `${name} was not pulled\n`);
      } catch (err) {
        throw asCli(err);
      }
    });
}
