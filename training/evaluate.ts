/**
 * Classification accuracy of an exported model, measured the way it is served: through the
 * onnxruntime session, with the contract's crops (1 = center, 10 = corners + center + mirrors)
 * and the softmax averaged over crops.
 */
import { makeCrops, type CropCount, batchLength, averageSoftmax } from '../model/index.js';
import type { DecodedSquare, ModelSession } from '../model/index.js';
import type { SquareDataset } from './data/dataset.js';

export interface ClassifierMetrics {
  n: number;
  crops: CropCount;
  top1: number;
  top5: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Predicted class per image. */
  predictions: Int32Array;
}

function squareOf(ds: SquareDataset, i: number, order: DecodedSquare['order']): DecodedSquare {
  const per = ds.size * ds.size * ds.channels;
  return {
    data: ds.pixels.subarray(i * per, (i + 1) * per), size: ds.size, channels: ds.channels,
    order, width: ds.size, height: ds.size, format: 'png',
  };
}

export async function evaluateClassifier(
  session: ModelSession,
  ds: SquareDataset,
  crops: CropCount,
  onProgress?: (done: number, total: number) => void,
): Promise<ClassifierMetrics> {
  const pre = session.contract.preprocess;
  const k = session.contract.labels.length;
  const imagesPerRun = Math.max(1, Math.floor(64 / crops));
  const per = batchLength(pre, crops);
  const batch = new Float32Array(per * imagesPerRun);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const predictions = new Int32Array(ds.n);
  let top1 = 0;
  let top5 = 0;
  for (let start = 0; start < ds.n; start += imagesPerRun) {
    const count = Math.min(imagesPerRun, ds.n - start);
    for (let j = 0; j < count; j++) makeCrops(squareOf(ds, start + j, pre.channels), pre, crops, batch.subarray(j * per, (j + 1) * per));
    const { logits } = await session.run(batch, count * crops);
    for (let j = 0; j < count; j++) {
      const probs = averageSoftmax(logits.subarray(j * crops * k, (j + 1) * crops * k), crops, k);
      const ranked = Array.from(probs.keys()).sort((a, b) => (probs[b] as number) - (probs[a] as number));
      const truth = ds.labels[start + j] as number;
      const best = ranked[0] as number;
      predictions[start + j] = best;
      if (best === truth) top1++;
      if (ranked.slice(0, 5).includes(truth)) top5++;
      const row = confusion[truth];
      if (row) row[best] = (row[best] ?? 0) + 1;
    }
    onProgress?.(start + count, ds.n);
  }
  return { n: ds.n, crops, top1: top1 / ds.n, top5: top5 / ds.n, confusion, predictions };
}

export class LabelMismatchError extends Error {
  override readonly name = 'LabelMismatchError';
}

/**
 * The dataset with its labels renumbered to the model's, matched by name (a label's '/' may be
 * written '_' or '-' in a folder name). A class the model does
 * not know is an error (naming them); model labels without images are returned as `missing`.
 */
export function matchLabels(ds: SquareDataset, modelLabels: readonly string[]): { dataset: SquareDataset; missing: string[] } {
  const index = new Map(modelLabels.map((l, i) => [l, i]));
  // A folder name cannot hold '/': 'T-shirt/top' may be spelled 'T-shirt_top' or 'T-shirt-top'.
  modelLabels.forEach((l, i) => {
    for (const alias of [l.replaceAll('/', '_'), l.replaceAll('/', '-')]) if (!index.has(alias)) index.set(alias, i);
  });
  const unknown = ds.classNames.filter((c) => !index.has(c));
  if (unknown.length > 0) {
    throw new LabelMismatchError(
      `the model has no label for the dataset's class${unknown.length === 1 ? '' : 'es'} ${unknown.map((c) => `'${c}'`).join(', ')}; its labels are ${modelLabels.map((l) => `'${l}'`).join(', ')}`,
    );
  }
  const map = ds.classNames.map((c) => index.get(c) as number);
  const present = new Set<number>();
  const labels = ds.labels.map((l) => {
    const m = map[l] as number;
    present.add(m);
    return m;
  });
  return { dataset: { ...ds, labels, classNames: [...modelLabels] }, missing: modelLabels.filter((_l, i) => !present.has(i)) };
}

export function formatConfusion(m: ClassifierMetrics, labels: readonly string[]): string {
  const short = labels.map((l) => l.slice(0, 9));
  const w = Math.max(6, ...m.confusion.flat().map((v) => String(v).length + 1));
  const head = `${'true \\ pred'.padEnd(12)}${short.map((s) => s.padStart(Math.max(w, s.length + 1))).join('')}`;
  const rows = m.confusion.map((row, i) => `${(short[i] ?? String(i)).padEnd(12)}${row.map((v, j) => String(v).padStart(Math.max(w, (short[j] ?? '').length + 1))).join('')}`);
  return [head, ...rows].join('\n');
}
