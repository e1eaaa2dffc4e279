/**
 * `sightline import SRC.onnx --preset torchvision|caffe --labels FILE --out DST.onnx`: wraps an
 * AlexNet exported by PyTorch/torchvision or the ONNX model zoo (Caffe) into a Sightline model.
 * Also home of the label-file reader and the atomic model writer that `export` shares.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ModelError, formatSummary, IMPORT_PRESETS, importOnnxDetailed, inspectOnnx } from '../../model/index.js';
import type { ImportPreset } from '../../model/index.js';
import { CliError } from '../errors.js';

/** One label per line (blank lines ignored), or a JSON array of strings. */
export function readLabelsFile(path: string): string[] {
  if (!existsSync(path)) throw CliError.failure(`--labels file '${path}' does not exist`);
  const text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  let labels: string[];
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw CliError.failure(`--labels file '${path}' looks like JSON but does not parse: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((l): l is string => typeof l === 'string')) {
      throw CliError.failure(`--labels file '${path}' must hold a JSON array of strings`);
    }
    labels = parsed;
  } else {
    labels = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
  }
  if (labels.length === 0) throw CliError.failure(`--labels file '${path}' holds no labels`);
  return labels;
}

/** Writes next to the target and renames, so a watcher never sees half a model. */
export function writeModelFile(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** Turns model-layer errors (wrong label count, unsupported graph, ...) into terminal errors. */
export function asCliError(err: unknown, context?: string): unknown {
  if (!(err instanceof ModelError)) return err;
  return CliError.failure(context ? `${context}: ${err.message}` : err.message);
}

interface ImportFlags {
  preset: ImportPreset;
  labels: string;
  out: string;
  name?: string;
  modelVersion?: string;
}

function runImport(src: string, flags: ImportFlags): void {
  if (!existsSync(src) || !statSync(src).isFile()) throw CliError.failure(`source model '${src}' does not exist or is not a file`);
  const labels = readLabelsFile(flags.labels);
  const bytes = readFileSync(src);
  let result;
  try {
    result = importOnnxDetailed(bytes, { preset: flags.preset, labels, name: flags.name, modelVersion: flags.modelVersion });
  } catch (err) {
    throw asCliError(err, `cannot import '${src}'`);
  }
  writeModelFile(flags.out, result.bytes);
  const c = result.contract;
  const lines = [
    `wrote ${flags.out} (${c.name} v${c.modelVersion}, ${c.labels.length} labels, preset ${flags.preset})`,
    ...result.changes.map((ch) => `  - ${ch}`),
    formatSummary(inspectOnnx(result.bytes)),
    `contract io: input '${c.io.input}', logits '${c.io.logits}', embedding '${c.io.embedding}' (${c.embeddingDim}-d)`,
    `preprocess: ${c.preprocess.channels} ×${c.preprocess.scale} − [${c.preprocess.mean.join(', ')}] ÷ [${c.preprocess.std.join(', ')}], resize ${c.preprocess.resizeSize} → crop ${c.preprocess.inputSize}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function register(program: Command): void {
  program
    .command('import')
    .description('wrap a torchvision or Caffe (ONNX model zoo) AlexNet ONNX into a Sightline model: embedding output, logits, preprocessing contract')
    .argument('<src>', 'source .onnx file')
    .addOption(new Option('--preset <preset>', 'preprocessing of the source framework').choices([...IMPORT_PRESETS]).makeOptionMandatory())
    .requiredOption('--labels <file>', 'class labels: one per line, or a JSON array')
    .requiredOption('--out <file>', 'destination .onnx file')
    .option('--name <name>', 'model name recorded in the contract')
    .option('--model-version <version>', 'model version recorded in the contract')
    .action((src: string, flags: ImportFlags) => runImport(src, flags));
}
