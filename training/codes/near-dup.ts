/**
 * Instance retrieval for `eval retrieval`: does a lightly edited copy of a database image find that
 * very image? A seeded sample of database images gets three transformed copies each (the edits
 * users make: crop 1 px off every side and resize back, brightness ×1.25, JPEG re-encoding at
 * quality 40, all with sharp on the stored squares), and each copy is a query whose one relevant
 * answer is its original. recall@k = share of copies whose original is among the first k of:
 *   euclidean  exact fc7 Euclidean over the whole database (ties by database index)
 *   hamming    exact Hamming on the codes (ties by database index, the exact scan's order)
 *   served     the catalog's search (k = 10, the default oversample), as the server runs it
 *   served_id_ties  the same search with stage 1 cut at k × oversample in (Hamming, id) order,
 *              i.e. without the sketches: the served behaviour before them, kept as the baseline
 * The copies' distances to their originals and to the nearest other image also calibrate the
 * near-duplicate threshold (index/duplicates.ts): see `calibrateThreshold`.
 */
import sharp from 'sharp';
import type { SquareDataset } from '../data/dataset.js';
import { mulberry32 } from '../network.js';

export const TRANSFORMS = ['crop-resize', 'brightness', 'jpeg'] as const;
export type Transform = (typeof TRANSFORMS)[number];

export interface Recall {
  recall_at_1: number;
  recall_at_10: number;
}

export interface NearDupReport {
  euclidean: Recall;
  hamming: Recall;
  served: Recall;
  served_id_ties: Recall;
  /** Originals sampled; queries = 3 × this. */
  originals: number;
  queries: number;
  /** fc7 Euclidean threshold for "near-duplicate" fitted on these copies, with its precision and recall. */
  threshold: Threshold;
  /** The same for the distance relative to the pair's mean embedding norm (what index/duplicates.ts uses). */
  threshold_relative: Threshold;
}

export interface Threshold {
  distance: number;
  precision: number;
  recall: number;
}

/** One transformed square (same size and channels as the input). */
export async function transformSquare(pixels: Uint8Array, size: number, channels: 1 | 3, t: Transform): Promise<Uint8Array> {
  const raw = { raw: { width: size, height: size, channels } } as const;
  let img = sharp(pixels, raw);
  if (t === 'crop-resize') img = img.extract({ left: 1, top: 1, width: size - 2, height: size - 2 }).resize(size, size);
  else if (t === 'brightness') img = img.linear(1.25, 0);
  else img = sharp(await img.jpeg({ quality: 40 }).toBuffer());
  const out = await (channels === 1 ? img.toColourspace('b-w') : img.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
  if (out.data.length !== size * size * channels) throw new Error(`transform '${t}' gave ${out.data.length} bytes, expected ${size * size * channels}`);
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length);
}

/** A seeded sample of `count` distinct database indices (partial Fisher–Yates). */
export function sampleIndices(n: number, count: number, seed: number): Int32Array {
  const rand = mulberry32(seed);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const m = Math.min(count, n);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = all[i] as number;
    all[i] = all[j] as number;
    all[j] = t;
  }
  return all.slice(0, m);
}

/** Copies of the sampled images, every transform of one original in a row; `origin[q]` is the database index. */
export async function makeCopies(ds: SquareDataset, sample: Int32Array): Promise<{ copies: SquareDataset; origin: Int32Array }> {
  const per = ds.size * ds.size * ds.channels;
  const n = sample.length * TRANSFORMS.length;
  const pixels = new Uint8Array(n * per);
  const origin = new Int32Array(n);
  let q = 0;
  for (const i of sample) {
    const src = ds.pixels.subarray(i * per, (i + 1) * per);
    for (const t of TRANSFORMS) {
      pixels.set(await transformSquare(src, ds.size, ds.channels, t), q * per);
      origin[q++] = i;
    }
  }
  return { copies: { ...ds, n, pixels, labels: Int32Array.from(origin, (i) => ds.labels[i] as number) }, origin };
}

/** 0-based rank of `target` when `distance` (lower first) is ordered with ties by index. */
export function rankOf(distance: ArrayLike<number>, target: number): number {
  const d = distance[target] as number;
  let rank = 0;
  for (let i = 0; i < distance.length; i++) {
    const v = distance[i] as number;
    if (v < d || (v === d && i < target)) rank++;
  }
  return rank;
}

/** Running recall@1 / @10 from ranks (0-based; -1 = not returned). */
export class RecallTally {
  private at1 = 0;
  private at10 = 0;
  private n = 0;

  add(rank: number): void {
    this.n++;
    if (rank === 0) this.at1++;
    if (rank >= 0 && rank < 10) this.at10++;
  }

  result(): Recall {
    const n = Math.max(this.n, 1);
    return { recall_at_1: this.at1 / n, recall_at_10: this.at10 / n };
  }
}

/**
 * The Euclidean threshold that separates copies from other images: `positives` are each copy's
 * distance to its original, `negatives` each copy's distance to the nearest *other* database image.
 * A pair within the threshold is called a near-duplicate; the threshold maximizes F1 over the
 * candidate cut points (every observed distance), precision = true calls / all calls.
 */
export function calibrateThreshold(positives: readonly number[], negatives: readonly number[]): Threshold {
  const points = [...positives, ...negatives].sort((a, b) => a - b);
  const pos = [...positives].sort((a, b) => a - b);
  const neg = [...negatives].sort((a, b) => a - b);
  const countLe = (xs: number[], t: number): number => {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((xs[mid] as number) <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let best: Threshold & { f1: number } = { distance: 0, precision: 1, recall: 0, f1: 0 };
  for (const t of points) {
    const tp = countLe(pos, t);
    const fp = countLe(neg, t);
    const precision = tp + fp > 0 ? tp / (tp + fp) : 1;
    const recall = pos.length > 0 ? tp / pos.length : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    if (f1 > best.f1) best = { distance: t, precision, recall, f1 };
  }
  return { distance: best.distance, precision: best.precision, recall: best.recall };
}
