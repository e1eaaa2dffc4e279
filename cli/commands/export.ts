/**
 * `sightline export --preset alexnet --init random --seed 1 --out FILE.onnx [--fp16]`: writes an
 * AlexNet with freshly initialized weights, contract included — for serving/benchmark plumbing
 * before a trained model exists, and as a check that the exporter handles the full-size network.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { getPreset, parameterCount, PRESET_NAMES, exportOnnx, formatSummary, inspectOnnx } from '../../model/index.js';
import type { Preset, PresetName, PreprocessContract } from '../../model/index.js';
import { initWeights } from '../../training/index.js';
import type { InitScheme } from '../../training/index.js';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { asCliError, readLabelsFile, writeModelFile } from './import.js';

const INITS = ['random', 'paper', 'he'] as const;
type InitFlag = (typeof INITS)[number];

interface ExportFlags {
  preset: PresetName;
  init: InitFlag;
  seed: string;
  out: string;
  fp16?: boolean;
  classes?: string;
  labels?: string;
  name?: string;
}

/** `random` is the paper's init: N(0, 0.01) weights, biases 1 in conv2/4/5 and fc6/7. */
function scheme(init: InitFlag): InitScheme {
  return init === 'he' ? 'he' : 'paper';
}

/**
 * An untrained model has no training statistics; use ImageNet's for RGB and a neutral [-1, 1]
 * mapping for grayscale, so the contract is valid and the tensors have sane magnitudes.
 */
function defaultPreprocess(p: Preset): PreprocessContract {
  const gray = p.channels === 1;
  return {
    inputSize: p.inputSize,
    resizeSize: p.resizeSize,
    channels: gray ? 'gray' : 'rgb',
    scale: 1 / 255,
    mean: gray ? [0.5] : [0.485, 0.456, 0.406],
    std: gray ? [0.5] : [0.229, 0.224, 0.225],
    background: [255, 255, 255],
  };
}

function resolveLabels(flags: ExportFlags): string[] {
  const fromFile = flags.labels === undefined ? undefined : readLabelsFile(flags.labels);
  const classes = flags.classes === undefined ? undefined : intFlag('--classes', flags.classes, 2, 100_000);
  if (fromFile && classes !== undefined && fromFile.length !== classes) {
    throw CliError.usage(`--classes is ${classes} but --labels file '${flags.labels}' holds ${fromFile.length} labels`);
  }
  if (fromFile) return fromFile;
  const n = classes ?? (flags.preset === 'alexnet-small' ? 10 : 1000);
  return Array.from({ length: n }, (_, i) => `class_${i}`);
}

function runExport(flags: ExportFlags): void {
  const seed = intFlag('--seed', flags.seed, 0, 2 ** 32 - 1);
  const labels = resolveLabels(flags);
  const preset = getPreset(flags.preset, { numClasses: labels.length });
  const started = performance.now();
  let bytes: Uint8Array;
  try {
    const weights = initWeights(preset, scheme(flags.init), seed);
    bytes = exportOnnx(
      preset,
      weights,
      {
        name: flags.name ?? `${preset.name}-${flags.init}-${seed}`,
        modelVersion: '1',
        labels,
        preprocess: defaultPreprocess(preset),
        source: 'random-init',
        metrics: {},
      },
      { fp16: flags.fp16 === true },
    );
  } catch (err) {
    throw asCliError(err);
  }
  writeModelFile(flags.out, bytes);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `wrote ${flags.out}: ${preset.name}, ${parameterCount(preset).toLocaleString('en-US')} parameters, init ${flags.init} (seed ${seed}), ${flags.fp16 ? 'fp16' : 'fp32'} weights, ${secs} s\n${formatSummary(inspectOnnx(bytes))}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('export')
    .description('write an AlexNet with freshly initialized weights as ONNX, with its model contract')
    .addOption(new Option('--preset <preset>', 'architecture').choices([...PRESET_NAMES]).default('alexnet'))
    .addOption(new Option('--init <scheme>', "weights: random (= paper, N(0, 0.01)), paper, or he").choices([...INITS]).default('random'))
    .option('--seed <n>', 'PRNG seed for the weights', '1')
    .requiredOption('--out <file>', 'destination .onnx file')
    .option('--fp16', 'store weights as float16 (half the file; Cast nodes restore float32)')
    .option('--classes <n>', 'number of classes (default: 1000 for alexnet and alexnet-dense, 10 for alexnet-small)')
    .option('--labels <file>', 'class labels: one per line, or a JSON array')
    .option('--name <name>', 'model name recorded in the contract')
    .action((flags: ExportFlags) => runExport(flags));
}
