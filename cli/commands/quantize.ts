/**
 * `sightline quantize MODEL --calibration fashion-mnist|DIR [--images N] [--method percentile|minmax]
 * --out MODEL-int8.onnx`: static int8 quantization in QDQ format (model/onnx/quantize.ts).
 * Activation ranges come from the paper's 10 crops of N real images run through the fp32 model;
 * with Fashion-MNIST the training split calibrates and the first --eval test images measure top-1
 * of both models, which the int8 model's contract records next to how it was made.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CalibrationBatch, CalibrationMethod, DecodedSquare, ModelContract, WeightBits } from '../../model/index.js';
import { batchLength, calibrate, CALIBRATION_METHODS, createSession, DEFAULT_WEIGHT_BITS, WEIGHT_BITS, decodeImage, makeCrops, PERCENTILE_TAIL, planQuantization, quantizeModel, rangesOf, readContractSync, replaceContract } from '../../model/index.js';
import { loadFashionMnist, evaluateClassifier } from '../../training/index.js';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { asCliError, writeModelFile } from './import.js';

interface QuantizeFlags {
  calibration: string;
  data?: string;
  images: string;
  method: string;
  weightBits: string;
  eval: string;
  threads: string;
  out: string;
}

const CROPS = 10;
const MAX_PIXELS = 100_000_000;

/** Image files under `dir` (recursively, sorted), up to `limit`. */
function imageFiles(dir: string, limit: number): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (out.length >= limit) return;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(jpe?g|png|webp|gif|tiff?|avif)$/i.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The calibration images as decoded squares of the model's resize size. */
async function calibrationSquares(f: QuantizeFlags, c: ModelContract, n: number): Promise<{ squares: DecodedSquare[]; set: string }> {
  const pre = c.preprocess;
  if (f.calibration === 'fashion-mnist') {
    const ds = await loadFashionMnist('train', { dir: f.data && resolve(f.data), size: pre.resizeSize, limit: n });
    const per = ds.size * ds.size * ds.channels;
    const squares = Array.from({ length: ds.n }, (_, i): DecodedSquare => ({
      data: ds.pixels.subarray(i * per, (i + 1) * per), size: ds.size, channels: ds.channels, order: pre.channels, width: ds.size, height: ds.size, format: 'png',
    }));
    return { squares, set: 'fashion-mnist train' };
  }
  const dir = resolve(f.calibration);
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) throw CliError.usage(`--calibration must be 'fashion-mnist' or a folder of images; '${f.calibration}' is neither`);
  const squares: DecodedSquare[] = [];
  for (const file of imageFiles(dir, n * 2)) {
    if (squares.length >= n) break;
    try {
      squares.push(await decodeImage(readFileSync(file), pre, { maxPixels: MAX_PIXELS }));
    } catch {
      // Unreadable files are skipped: the set is a sample, and the count printed says how many were used.
    }
  }
  if (squares.length === 0) throw CliError.failure(`--calibration folder '${dir}' holds no decodable images`);
  return { squares, set: dir };
}

function* batchesOf(squares: readonly DecodedSquare[], c: ModelContract): Generator<CalibrationBatch> {
  const pre = c.preprocess;
  // Two 224 px images (20 crops) per run keep the observed activations of the full AlexNet near 100 MB.
  const perRun = pre.inputSize >= 100 ? 2 : 8;
  const per = batchLength(pre, CROPS);
  const buf = new Float32Array(per * perRun);
  for (let i = 0; i < squares.length; i += perRun) {
    const count = Math.min(perRun, squares.length - i);
    for (let j = 0; j < count; j++) makeCrops(squares[i + j] as DecodedSquare, pre, CROPS, buf.subarray(j * per, (j + 1) * per));
    yield { data: buf, n: count * CROPS };
  }
}

async function top1(path: string, n: number, threads: number, data: string | undefined): Promise<number> {
  const session = await createSession(path, { device: 'cpu', threads });
  try {
    const ds = await loadFashionMnist('test', { dir: data && resolve(data), size: session.contract.preprocess.resizeSize, limit: n });
    return (await evaluateClassifier(session, ds, CROPS)).top1;
  } finally {
    await session.close();
  }
}

async function runQuantize(modelArg: string, f: QuantizeFlags): Promise<void> {
  const images = intFlag('--images', f.images, 1, 1_000_000);
  const evalN = intFlag('--eval', f.eval, 0, 10_000);
  const threads = intFlag('--threads', f.threads, 1, 256);
  if (!(CALIBRATION_METHODS as readonly string[]).includes(f.method)) throw CliError.usage(`--method must be one of ${CALIBRATION_METHODS.join(', ')}, got '${f.method}'`);
  const method = f.method as CalibrationMethod;
  const weightBits = Number(f.weightBits);
  if (!(WEIGHT_BITS as readonly number[]).includes(weightBits)) throw CliError.usage(`--weight-bits must be one of ${WEIGHT_BITS.join(', ')}, got '${f.weightBits}'`);
  const path = resolve(modelArg);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw CliError.failure(`MODEL '${modelArg}' cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const started = performance.now();
  try {
    const contract = readContractSync(bytes);
    const plan = planQuantization(bytes, `model '${modelArg}'`);
    const { squares, set } = await calibrationSquares(f, contract, images);
    const p = contract.preprocess;
    const stats = await calibrate(bytes, plan, { input: contract.io.input, shape: [p.channels === 'gray' ? 1 : 3, p.inputSize, p.inputSize], batches: () => batchesOf(squares, contract), threads });
    const methodText = method === 'percentile' ? `percentile (${PERCENTILE_TAIL * 100}% clipped at each end)` : 'minmax';
    let q = quantizeModel(bytes, plan, { ranges: rangesOf(stats, method), calibration: { set, images: squares.length, crops: CROPS, method: methodText }, weightBits: weightBits as WeightBits });
    writeModelFile(f.out, q.bytes);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`wrote ${f.out}: ${plan.targets.length} Conv/Gemm nodes int8 (QDQ, ${weightBits}-bit weights), ${(q.bytes.length / 1e6).toFixed(1)} MB (fp32 ${(bytes.length / 1e6).toFixed(1)} MB); calibrated on ${squares.length} images × ${CROPS} crops of ${set}, ${methodText}, ${secs} s\n`);
    for (const s of plan.skipped) process.stdout.write(`left in float: ${s}\n`);
    if (evalN > 0 && f.calibration === 'fashion-mnist') {
      const fp32 = await top1(path, evalN, threads, f.data);
      const int8 = await top1(f.out, evalN, threads, f.data);
      const metrics = { ...q.contract.metrics, quantEvalImages: evalN, quantEvalCrops: CROPS, fp32Top1: fp32, int8Top1: int8 };
      q = { bytes: replaceContract(q.bytes, { ...q.contract, metrics }), contract: { ...q.contract, metrics } };
      writeModelFile(f.out, q.bytes);
      process.stdout.write(`top-1 on the first ${evalN} Fashion-MNIST test images, ${CROPS} crops: fp32 ${(fp32 * 100).toFixed(2)}%, int8 ${(int8 * 100).toFixed(2)}% (recorded in the contract)\n`);
    }
  } catch (err) {
    throw asCliError(err, `quantize '${modelArg}'`);
  }
}

export function register(program: Command): void {
  program
    .command('quantize')
    .argument('<model>', 'fp32 Sightline model (.onnx) to quantize')
    .description('static int8 quantization (QDQ: per-channel int8 weights, calibrated uint8 activations) that onnxruntime runs with int8 kernels')
    .requiredOption('--calibration <set>', "'fashion-mnist' (its training split) or a folder of images (searched recursively)")
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files')
    .option('--images <n>', 'calibration images (each run as 10 crops)', '500')
    .option('--method <name>', `activation ranges: ${CALIBRATION_METHODS.join(' or ')}`, 'percentile')
    .option('--weight-bits <n>', `range of the int8 weights: 7 (±63) runs exactly on every x86 CPU; 8 (±127) only on CPUs with VNNI (AVX-512 VNNI, AVX-VNNI): elsewhere onnxruntime's int8 products saturate`, String(DEFAULT_WEIGHT_BITS))
    .option('--eval <n>', 'with fashion-mnist: measure fp32 and int8 top-1 (10 crops) on the first N test images, 0 to skip', '1000')
    .option('--threads <n>', 'onnxruntime threads', '2')
    .requiredOption('--out <file>', 'destination .onnx file')
    .action((model: string, f: QuantizeFlags) => runQuantize(model, f));
}
