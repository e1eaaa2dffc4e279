/**
 * `npm run bench -- ood [--model FILE] [--fit N] [--test N] [--crops 1|10] [--statistic S] [--shipped] DIR...`: how well
 * candidate "unknown image" statistics separate Fashion-MNIST test images (in distribution) from
 * the photos in DIR... (out of distribution). Class means and thresholds are fitted on the first
 * --fit training images; every image goes through the served pipeline (PNG bytes → decode → crops).
 * Prints AUROC and, at the threshold that keeps 97 % of the fitting images known, the share of
 * test images and photos called unknown. --shipped scores with the model's own (sidecar) threshold.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { classifyImage, fitOod, OOD_STATISTICS, oodScores, createSession } from '../model/index.js';
import type { OodFeatures, OodStatistic, ModelSession } from '../model/index.js';
import { loadFashionMnist } from '../training/index.js';

function flag(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? (args.splice(i, 2)[1] ?? def) : def;
}

async function features(session: ModelSession, bytes: Buffer, crops: 1 | 10): Promise<OodFeatures> {
  const r = await classifyImage(session, bytes, { crops, topk: 1, maxPixels: 1e9 });
  return { meanLogits: r.meanLogits, embedding: r.embedding };
}

async function fmnist(session: ModelSession, split: 'train' | 'test', n: number, crops: 1 | 10): Promise<{ f: OodFeatures[]; labels: Int32Array }> {
  const ds = await loadFashionMnist(split, { size: 28, limit: n });
  const f: OodFeatures[] = [];
  for (let i = 0; i < ds.n; i++) {
    const png = await sharp(Buffer.from(ds.pixels.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    f.push(await features(session, png, crops));
  }
  return { f, labels: ds.labels };
}

function photos(dirs: string[]): string[] {
  return dirs.filter((d) => !d.startsWith('--')).flatMap((d) => readdirSync(d).filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).map((n) => join(d, n)));
}

/** Probability that a random out-of-distribution score exceeds a random in-distribution one (ties count half). */
export function auroc(inScores: number[], outScores: number[]): number {
  let wins = 0;
  for (const o of outScores) for (const s of inScores) wins += o > s ? 1 : o === s ? 0.5 : 0;
  return wins / (inScores.length * outScores.length);
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;

export async function run(argv: string[]): Promise<void> {
  const args = [...argv];
  const model = resolve(flag(args, '--model', 'model/default/sightline-fmnist.onnx'));
  const fitN = Number(flag(args, '--fit', '3000'));
  const testN = Number(flag(args, '--test', '10000'));
  const crops = flag(args, '--crops', '10') === '1' ? 1 : 10;
  const only = flag(args, '--statistic', '');
  const session = await createSession(model, { device: 'cpu', threads: 2 });
  try {
    const t0 = performance.now();
    const fit = await fmnist(session, 'train', fitN, crops);
    const test = await fmnist(session, 'test', testN, crops);
    const files = photos(args);
    const out: OodFeatures[] = [];
    for (const f of files) out.push(await features(session, readFileSync(f), crops));
    const secs = ((performance.now() - t0) / 1000).toFixed(0);
    process.stdout.write(`model ${model}, ${crops} crops; fit on ${fit.f.length} train images, test ${test.f.length}, ${out.length} photos (${secs} s)\n\n`);
    process.stdout.write('| statistic | AUROC | threshold | fit images unknown | test images unknown | photos unknown |\n|---|---|---|---|---|---|\n');
    const shipped = args.includes('--shipped') ? session.contract.ood : undefined;
    if (shipped) process.stdout.write(`--shipped: the model's own threshold (${shipped.fittedOn}), not refitted\n`);
    for (const statistic of shipped ? [shipped.statistic] : OOD_STATISTICS.filter((s) => only === '' || s === only)) {
      const ood = shipped ?? fitOod(fit.f, fit.labels, { statistic, keep: 0.97 });
      const score = (f: OodFeatures): number => oodScores(ood, f);
      const sIn = test.f.map(score);
      const sOut = out.map(score);
      const rate = (s: number[]): number => s.filter((x) => x > ood.threshold).length / Math.max(1, s.length);
      const row = [statistic, auroc(sIn, sOut).toFixed(4), ood.threshold.toPrecision(4), pct(rate(fit.f.map(score))), pct(rate(sIn)), pct(rate(sOut))];
      process.stdout.write(`| ${row.join(' | ')} |\n`);
      if (args.includes('--verbose') || statistic === ('energy' satisfies OodStatistic)) {
        files.forEach((f, i) => process.stdout.write(`    ${(sOut[i] ?? 0) > ood.threshold ? 'unknown' : 'KNOWN  '} ${(sOut[i] ?? 0).toPrecision(4)} ${f}\n`));
      }
    }
  } finally {
    await session.close();
  }
}
