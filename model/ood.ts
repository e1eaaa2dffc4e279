/**
 * "None of these": a score of how far an image is from what the model was trained on, and the
 * threshold above which a classification is flagged `unknown`. The statistic and threshold are fitted
 * on in-distribution images (training data, or a user's folder with --calibration) so that a chosen
 * share of them (97 % by default) stays known. Higher score = further from the training data.
 *
 *   msp          1 − the largest softmax probability (of the crop-mean logits)
 *   energy       −log Σ exp(logit) of the crop-mean logits (Liu et al. 2020)
 *   centroid     1 − the largest cosine similarity of the crop-mean fc7 to a class mean of
 *                L2-normalized fc7 (needs class means, so only fitted models have it)
 *   mahalanobis  smallest squared distance of fc7 to a class mean, each dimension divided by its
 *                pooled within-class variance
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const OOD_STATISTICS = ['msp', 'energy', 'centroid', 'mahalanobis'] as const;
export type OodStatistic = (typeof OOD_STATISTICS)[number];

export const oodSchema = z.object({
  statistic: z.enum(OOD_STATISTICS),
  /** Scores above this are `unknown`. */
  threshold: z.number(),
  /** Share of the fitting images kept known by the threshold. */
  keep: z.number().min(0).max(1),
  /** What the threshold was fitted on, for humans ('fashion-mnist train[0:3000]', 'default', a folder). */
  fittedOn: z.string(),
  images: z.number().int().min(0),
  /** Class means of fc7 (centroid: of L2-normalized fc7), one row per class in `classes`. */
  means: z.array(z.array(z.number())).optional(),
  classes: z.array(z.number().int()).optional(),
  /** mahalanobis: 1 / pooled within-class variance per fc7 dimension. */
  invVar: z.array(z.number()).optional(),
});
export type OodContract = z.infer<typeof oodSchema>;

export interface OodFeatures {
  /** Logits averaged over the crops. */
  meanLogits: ArrayLike<number>;
  /** fc7 averaged over the crops. */
  embedding: ArrayLike<number>;
}

/**
 * Imported models come without their training data: max-softmax with this threshold (an image
 * whose best class gets under 20 % is unknown) until `--calibration DIR` fits one on the user's images.
 */
export const DEFAULT_OOD: OodContract = Object.freeze({ statistic: 'msp', threshold: 0.8, keep: 0, fittedOn: 'default (not fitted)', images: 0 });

function logSumExp(v: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) max = Math.max(max, v[i] ?? -Infinity);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += Math.exp((v[i] ?? 0) - max);
  return max + Math.log(s);
}

function unit(v: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += (v[i] ?? 0) ** 2;
  const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
  return Float64Array.from({ length: v.length }, (_, i) => (v[i] ?? 0) * inv);
}

/** The score of one image; higher = further from the fitting data. */
export function oodScores(ood: OodContract, f: OodFeatures): number {
  switch (ood.statistic) {
    case 'msp': {
      let max = -Infinity;
      for (let i = 0; i < f.meanLogits.length; i++) max = Math.max(max, f.meanLogits[i] ?? -Infinity);
      return 1 - Math.exp(max - logSumExp(f.meanLogits));
    }
    case 'energy':
      return -logSumExp(f.meanLogits);
    case 'centroid': {
      const e = unit(f.embedding);
      let best = -Infinity;
      for (const m of ood.means ?? []) {
        let dot = 0;
        for (let j = 0; j < e.length; j++) dot += (e[j] ?? 0) * (m[j] ?? 0);
        best = Math.max(best, dot);
      }
      return 1 - best;
    }
    case 'mahalanobis': {
      const iv = ood.invVar ?? [];
      let best = Infinity;
      for (const m of ood.means ?? []) {
        let d = 0;
        for (let j = 0; j < m.length; j++) d += ((f.embedding[j] ?? 0) - (m[j] ?? 0)) ** 2 * (iv[j] ?? 1);
        best = Math.min(best, d);
      }
      return best;
    }
  }
}

function classMeans(feats: readonly OodFeatures[], labels: ArrayLike<number>, normalize: boolean): { classes: number[]; means: Float64Array[] } {
  const sums = new Map<number, { sum: Float64Array; n: number }>();
  feats.forEach((f, i) => {
    const c = labels[i] ?? 0;
    const e = normalize ? unit(f.embedding) : Float64Array.from(f.embedding);
    const s = sums.get(c) ?? { sum: new Float64Array(e.length), n: 0 };
    for (let j = 0; j < e.length; j++) s.sum[j] = (s.sum[j] ?? 0) + (e[j] ?? 0);
    s.n++;
    sums.set(c, s);
  });
  const classes = [...sums.keys()].sort((a, b) => a - b);
  const means = classes.map((c) => {
    const s = sums.get(c)!;
    const m = s.sum.map((x) => x / s.n);
    return normalize ? unit(m) : m;
  });
  return { classes, means };
}

const round = (x: number): number => Number(x.toPrecision(6));

/** Fits the statistic on in-distribution images (labels: their true or predicted classes) and the threshold keeping `keep` of them known. */
export function fitOod(feats: readonly OodFeatures[], labels: ArrayLike<number>, opts: { statistic: OodStatistic; keep?: number; fittedOn?: string }): OodContract {
  const keep = opts.keep ?? 0.97;
  if (feats.length === 0) throw new RangeError('fitOod needs at least one in-distribution image');
  let ood: OodContract = { statistic: opts.statistic, threshold: 0, keep, fittedOn: opts.fittedOn ?? 'unspecified', images: feats.length };
  if (opts.statistic === 'centroid' || opts.statistic === 'mahalanobis') {
    const { classes, means } = classMeans(feats, labels, opts.statistic === 'centroid');
    ood = { ...ood, classes, means: means.map((m) => Array.from(m, round)) };
    if (opts.statistic === 'mahalanobis') {
      const d = means[0]?.length ?? 0;
      const v = new Float64Array(d);
      feats.forEach((f, i) => {
        const m = means[classes.indexOf(labels[i] ?? 0)] ?? new Float64Array(d);
        for (let j = 0; j < d; j++) v[j] = (v[j] ?? 0) + ((f.embedding[j] ?? 0) - (m[j] ?? 0)) ** 2 / feats.length;
      });
      ood.invVar = Array.from(v, (x) => round(1 / Math.max(x, 1e-6)));
    }
  }
  const scores = feats.map((f) => oodScores(ood, f)).sort((a, b) => a - b);
  // Not rounded: a threshold rounded down would turn the last kept image unknown.
  const at = Math.min(scores.length - 1, Math.ceil(keep * scores.length - 1e-9) - 1);
  return { ...ood, threshold: scores[Math.max(0, at)] ?? 0 };
}

/** `unknown` and `ood_score` of one classification. */
export function oodVerdict(ood: OodContract, f: OodFeatures): { unknown: boolean; ood_score: number } {
  const score = oodScores(ood, f);
  return { unknown: !(score <= ood.threshold), ood_score: round(score) };
}

/**
 * What a stored score means: two scores with the same basis (and the same model) are comparable,
 * so a catalog can keep an image's score and judge it against whatever threshold is current.
 * msp and energy read the logits only, so re-fitting their threshold keeps the basis; centroid and
 * mahalanobis also read fitted class means, so a re-fit changes the score itself and the basis
 * carries a digest of what was fitted.
 */
export function oodBasis(ood: OodContract): string {
  if (ood.statistic === 'msp' || ood.statistic === 'energy') return ood.statistic;
  const digest = createHash('sha256').update(JSON.stringify([ood.classes ?? [], ood.means ?? [], ood.invVar ?? []])).digest('hex');
  return `${ood.statistic}:${digest.slice(0, 16)}`;
}

/** `unknown` for a stored score: null when it was not scored, or scored on another basis than `ood`'s. */
export function storedVerdict(ood: OodContract, score: number | null, basis: string | null): boolean | null {
  if (score === null || basis === null || basis !== oodBasis(ood)) return null;
  return !(score <= ood.threshold);
}
