/**
 * When two images are near-duplicates: their fc7 embeddings are closer than a fraction of their mean
 * norm (or an absolute distance when asked). Shared by `duplicates` and the search's
 * `nearDuplicate` flag.
 */
import { IndexParamError } from './errors.js';
import { halfTable } from './float16.js';

/**
 * Pairs closer than this × their mean embedding norm are near-duplicates. Fitted (best F1,
 * `eval retrieval` near_dup.threshold_relative = 0.213) on 300 edited copies of 100 of 10,000
 * Fashion-MNIST training images with the bundled model: precision 0.58, recall 0.85 there (an
 * edited 28-px garment is often as close to another one as to its original). Photos separate better;
 * lower it (`duplicates --max-relative-distance`) for fewer, surer groups.
 */
export const DEFAULT_NEAR_DUP_RELATIVE = 0.21;

/** Whether a pair at `distance`, with embedding norms `na` and `nb`, is a near-duplicate. */
export type NearDuplicateTest = (distance: number, na: number, nb: number) => boolean;

export function nearDuplicateTest(opts: { maxDistance?: number | undefined; maxRelativeDistance?: number | undefined } = {}): NearDuplicateTest {
  if (opts.maxDistance !== undefined) {
    const t = opts.maxDistance;
    if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw new IndexParamError('maxDistance', t, 'a finite number ≥ 0');
    return (d) => d <= t;
  }
  const rel = opts.maxRelativeDistance ?? DEFAULT_NEAR_DUP_RELATIVE;
  if (typeof rel !== 'number' || !(rel > 0 && rel <= 2)) throw new IndexParamError('maxRelativeDistance', rel, 'a number in (0, 2]');
  return (d, na, nb) => d <= (rel * (na + nb)) / 2;
}

/** Euclidean norm of float16 halves. */
export function halfNorm(v: Uint16Array): number {
  const t = halfTable();
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (t[v[i] as number] as number) ** 2;
  return Math.sqrt(s);
}

