/**
 * `sightline eval classify` (top-1/top-5 and the confusion matrix of a model on Fashion-MNIST's
 * test split or an image folder, through the served onnxruntime session) and `sightline eval retrieval` (mAP, mAP@1000
 * and P@10 of five rankings, HNSW recall, index bytes per image, queries/s; see training/codes/retrieval.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createSession, readContractSync, replaceContract } from '../../model/index.js';
import { loadFashionMnist, evaluateClassifier, formatConfusion, matchLabels, loadImageFolder, evaluateRetrieval, METHODS, type RetrievalReport } from '../../training/index.js';
import type { SquareDataset, NearDupReport } from '../../training/index.js';
import type { ModelSession } from '../../model/index.js';
import { CliError } from '../errors.js';
import { cropsFlag, intFlag, packageRoot } from '../flags.js';
import { formatSeconds, makeBar } from '../progress.js';
import { writeModelFile } from './import.js';
import { modelPath } from './train-codes.js';

interface ClassifyFlags {
  model?: string; dataset: string; data?: string; crops: string; limit?: string; threads: string; json?: boolean; record?: boolean;
}

/** `--record`: the whole Fashion-MNIST test split's result goes into the model's contract under the keys training writes. */
function recordAccuracy(path: string, m: { n: number; crops: number; top1: number; top5: number }): void {
  const bytes = readFileSync(path);
  const c = readContractSync(path);
  const metrics = { ...c.metrics, [`test_top1_${m.crops}crop`]: m.top1, [`test_top5_${m.crops}crop`]: m.top5, test_images: m.n };
  writeModelFile(path, replaceContract(bytes, { ...c, metrics }));
}

interface RetrievalFlags {
  model?: string; codes?: string; dataset: string; data?: string; dbSize?: string; queries?: string; crops?: string;
  threads: string; lshSeed: string; nearDup: string; nearDupSeed: string; json?: boolean;
}

/** The classify test set: Fashion-MNIST's test split or an ImageFolder, decoded per the model's contract. */
async function classifySet(f: ClassifyFlags, session: ModelSession, limit: number | undefined): Promise<{ ds: SquareDataset; what: string }> {
  const pre = session.contract.preprocess;
  if (f.dataset === 'fashion-mnist') {
    const ds = await loadFashionMnist('test', { dir: f.data && resolve(f.data), size: pre.resizeSize, limit });
    return { ds, what: 'Fashion-MNIST test images' };
  }
  const root = resolve(f.dataset);
  if (!existsSync(root)) throw CliError.failure(`--dataset must be 'fashion-mnist' or an image folder ROOT/<class>/<image>; '${root}' does not exist`);
  const { dataset, skipped } = await loadImageFolder(root, pre, { limit });
  if (skipped.length > 0) process.stderr.write(`skipped ${skipped.length} file(s) that are not decodable images, e.g. ${skipped[0]}\n`);
  if (dataset.n === 0) throw CliError.failure(`--dataset '${root}' holds no decodable images`);
  return { ds: dataset, what: `images of ${root}` };
}

function checkDataset(raw: string): 'fashion-mnist' {
  if (raw !== 'fashion-mnist') throw CliError.usage(`--dataset must be 'fashion-mnist', got '${raw}'`);
  return raw;
}

/** One bar, restarted per phase; phases print a line of their own. */
function progress(): { phase(p: string): void; tick(done: number, total: number): void; stop(): void } {
  let bar: ReturnType<typeof makeBar> | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  return {
    phase(p) {
      stop();
      process.stderr.write(`${p}...\n`);
    },
    tick(done, total) {
      if (!bar) (bar = makeBar('[{bar}] {value}/{total} | ETA {eta_formatted}')).start(total, 0);
      bar.update(done);
      if (done >= total) stop();
    },
    stop,
  };
}

const pct = (x: number): string => x.toFixed(4);

export function formatRetrieval(r: RetrievalReport): string {
  const head = `${'method'.padEnd(12)}${'mAP'.padStart(9)}${'mAP@1000'.padStart(10)}${'P@10'.padStart(9)}`;
  const rows = METHODS.map((m) => `${m.padEnd(12)}${pct(r.map[m]).padStart(9)}${pct(r.map_at_1000[m]).padStart(10)}${pct(r.p_at_10[m]).padStart(9)}`);
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(3) : '—');
  return [
    `database ${r.info.db} training images, ${r.info.queries} test queries, ${r.info.bits}-bit codes, ${r.info.crops === 1 ? 'center crop' : 'mean of 10 crops'}, served engine: ${r.info.engine}`,
    head,
    ...rows,
    `served / euclidean mAP ${ratio(r.map.served, r.map.euclidean)}, served / classifier mAP ${ratio(r.map.served, r.map.classifier)}, hamming / euclidean mAP ${ratio(r.map.hamming, r.map.euclidean)}`,
    `HNSW recall@10 vs exact Hamming (ties count): ${pct(r.recall_at_10)}`,
    `index size: ${Math.round(r.bytes_per_image)} bytes per image; served search: ${r.qps.toFixed(1)} queries/s (k=10)`,
    ...(r.near_dup ? formatNearDup(r.near_dup) : []),
    `time: ${Object.entries(r.info.seconds).map(([k, v]) => `${k} ${formatSeconds(v)}`).join(', ')}`,
  ].join('\n');
}

function formatNearDup(n: NearDupReport): string[] {
  const row = (m: 'euclidean' | 'hamming' | 'served' | 'served_id_ties'): string => `${m.padEnd(16)}${pct(n[m].recall_at_1).padStart(9)}${pct(n[m].recall_at_10).padStart(10)}`;
  return [
    `instance retrieval: ${n.queries} transformed copies (crop-resize, brightness, JPEG q40) of ${n.originals} database images find their original`,
    `${'method'.padEnd(16)}${'R@1'.padStart(9)}${'R@10'.padStart(10)}`,
    row('euclidean'), row('hamming'), row('served'), row('served_id_ties'),
    `served / euclidean R@1 ${n.euclidean.recall_at_1 > 0 ? (n.served.recall_at_1 / n.euclidean.recall_at_1).toFixed(3) : '—'}`,
    `near-duplicate threshold (fc7 Euclidean, best F1 on these copies): ${n.threshold.distance.toFixed(4)}, precision ${pct(n.threshold.precision)}, recall ${pct(n.threshold.recall)}`,
    `  relative to the mean embedding norm: ${n.threshold_relative.distance.toFixed(4)}, precision ${pct(n.threshold_relative.precision)}, recall ${pct(n.threshold_relative.recall)}`,
  ];
}

export function register(program: Command): void {
  const evalCmd = program.command('eval').description('measure a model: classification accuracy or retrieval quality');
  evalCmd
    .command('classify')
    .description('top-1/top-5 accuracy and the confusion matrix on the Fashion-MNIST test split or an image folder whose class names are model labels')
    .option('--model <file>', 'image model ONNX (default: the packaged model)')
    .option('--dataset <name|dir>', "'fashion-mnist' or an image folder ROOT/<class>/<image> (classes matched to the model's labels by name)", 'fashion-mnist')
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files')
    .option('--crops <n>', '1 (center) or 10 (the paper\'s 10 crops, softmax averaged)', '10')
    .option('--limit <n>', 'only the first N test images')
    .option('--threads <n>', 'onnxruntime threads', '2')
    .option('--json', 'one JSON object { n, crops, top1, top5, confusion, missing }')
    .option('--record', "write top-1/top-5 into the model's contract (test_top1_<crops>crop, test_top5_<crops>crop, test_images); whole Fashion-MNIST test split only")
    .action(async (f: ClassifyFlags) => {
      const crops = cropsFlag(f.crops);
      const limit = f.limit === undefined ? undefined : intFlag('--limit', f.limit, 1, 1e8);
      if (f.record && (f.dataset !== 'fashion-mnist' || limit !== undefined)) {
        throw CliError.usage(`--record takes the whole Fashion-MNIST test split: drop ${limit !== undefined ? `--limit ${limit}` : `--dataset '${f.dataset}'`}`);
      }
      const threads = intFlag('--threads', f.threads, 1, 256);
      const session = await createSession(modelPath(f.model), { device: 'cpu', threads });
      const ui = progress();
      try {
        const { ds: raw, what } = await classifySet(f, session, limit);
        let matched: ReturnType<typeof matchLabels>;
        try {
          matched = matchLabels(raw, session.contract.labels);
        } catch (err) {
          throw CliError.failure(`model '${session.modelPath}': ${(err as Error).message}`);
        }
        const { dataset: ds, missing } = matched;
        if (missing.length > 0 && !f.json) process.stderr.write(`no images for the model's label(s) ${missing.map((l) => `'${l}'`).join(', ')}\n`);
        const m = await evaluateClassifier(session, ds, crops, (d, t) => ui.tick(d, t));
        ui.stop();
        if (f.record) {
          recordAccuracy(session.modelPath, m);
          process.stderr.write(`recorded top-1 ${(m.top1 * 100).toFixed(2)}% and top-5 ${(m.top5 * 100).toFixed(2)}% on ${m.n} images in the contract of '${session.modelPath}'\n`);
        }
        if (f.json) {
          process.stdout.write(`${JSON.stringify({ n: m.n, crops: m.crops, top1: m.top1, top5: m.top5, confusion: m.confusion, missing })}\n`);
          return;
        }
        process.stdout.write(`${m.n} ${what}, ${crops} crop${crops === 1 ? '' : 's'}: top-1 ${(m.top1 * 100).toFixed(2)}%, top-5 ${(m.top5 * 100).toFixed(2)}%\n`);
        process.stdout.write(`${formatConfusion(m, session.contract.labels)}\n`);
      } finally {
        ui.stop();
        await session.close();
      }
    });
  evalCmd
    .command('retrieval')
    .description('mAP, mAP@1000 and P@10 (database = training images, queries = test images, relevant = same class)')
    .option('--model <file>', 'image model ONNX (default: the packaged model)')
    .option('--codes <file>', 'codes model ONNX made by train-codes for this image model (default: model/default/codes-128.onnx in the package)')
    .option('--dataset <name>', "'fashion-mnist'", 'fashion-mnist')
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files')
    .option('--db-size <n>', 'database images (first N of the training split; default all)')
    .option('--queries <n>', 'query images (first N of the test split; default all)')
    .option('--crops <n>', "1 or 10: override the codes model's crop policy for the embeddings")
    .option('--threads <n>', 'onnxruntime threads', '2')
    .option('--lsh-seed <n>', 'seed of the LSH projections', '1')
    .option('--near-dup <n>', 'database images whose 3 transformed copies measure instance retrieval (0 = skip)', '100')
    .option('--near-dup-seed <n>', 'seed of that sample', '1')
    .option('--json', 'print { map, map_at_1000, p_at_10, recall_at_10, bytes_per_image, qps, near_dup }')
    .action(async (f: RetrievalFlags) => {
      const ui = progress();
      try {
        const r = await evaluateRetrieval(
          {
            model: modelPath(f.model), codes: f.codes !== undefined ? resolve(f.codes) : resolve(packageRoot(), 'model/default/codes-128.onnx'), dataset: checkDataset(f.dataset), dataDir: f.data && resolve(f.data),
            dbSize: f.dbSize === undefined ? undefined : intFlag('--db-size', f.dbSize, 1, 2 ** 21),
            queries: f.queries === undefined ? undefined : intFlag('--queries', f.queries, 1, 1e7),
            crops: f.crops === undefined ? undefined : cropsFlag(f.crops),
            threads: intFlag('--threads', f.threads, 1, 256), lshSeed: intFlag('--lsh-seed', f.lshSeed, 0, 2 ** 31 - 1),
            nearDup: intFlag('--near-dup', f.nearDup, 0, 100_000), nearDupSeed: intFlag('--near-dup-seed', f.nearDupSeed, 0, 2 ** 31 - 1),
          },
          { onPhase: (p) => ui.phase(p), onProgress: (d, t) => ui.tick(d, t) },
        );
        ui.stop();
        if (f.json) {
          const { map, map_at_1000, p_at_10, recall_at_10, bytes_per_image, qps, near_dup } = r;
          process.stdout.write(`${JSON.stringify({ map, map_at_1000, p_at_10, recall_at_10, bytes_per_image, qps, near_dup })}\n`);
        } else process.stdout.write(`${formatRetrieval(r)}\n`);
      } finally {
        ui.stop();
      }
    });
}
