/**
 * The calibration run of `sightline quantize`: the fp32 model, with every tensor of the plan added
 * as an output, runs over the calibration batches twice in onnxruntime: pass 1 finds each tensor's
 * min and max, pass 2 fills a histogram over that range (for the percentile method).
 */
import * as ort from 'onnxruntime-node';
import { expandLrn } from './lrn.js';
import type { QuantPlan } from './quantize.js';
import { calibrationModel } from './quantize.js';
import type { CalibrationMethod } from './quantize-math.js';
import { TensorRange } from './quantize-math.js';

export interface CalibrationBatch {
  data: Float32Array;
  /** Crops in this batch. */
  n: number;
}

export interface CalibrationInput {
  /** Graph input name and one crop's [C, H, W]. */
  input: string;
  shape: readonly [number, number, number];
  /** Yields the calibration batches; called once per pass. */
  batches: () => AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>;
  threads?: number;
  onProgress?: (pass: 1 | 2, crops: number) => void;
}

/** Ranges of every tensor in plan.observe, as [lo, hi] per method. */
export async function calibrate(bytes: Uint8Array, plan: QuantPlan, cal: CalibrationInput): Promise<Map<string, TensorRange>> {
  // LRN expanded as the serving session does (lrn.ts): same values, a faster calibration run.
  const model = calibrationModel(bytes, plan);
  const session = await ort.InferenceSession.create(expandLrn(model)?.bytes ?? model, { intraOpNumThreads: cal.threads ?? 2, interOpNumThreads: 1, logSeverityLevel: 3 });
  const stats = new Map(plan.observe.map((t) => [t, new TensorRange()]));
  try {
    for (const pass of [1, 2] as const) {
      let crops = 0;
      for await (const b of cal.batches()) {
        const out = await session.run({ [cal.input]: new ort.Tensor('float32', b.data.subarray(0, b.n * cal.shape.reduce((x, y) => x * y, 1)), [b.n, ...cal.shape]) }, plan.observe);
        for (const [name, s] of stats) {
          const t = out[name];
          if (!t) throw new Error(`calibration run returned no '${name}'`);
          const data = t.data as Float32Array;
          if (pass === 1) s.observeRange(data);
          else s.observeHistogram(data);
        }
        crops += b.n;
        cal.onProgress?.(pass, crops);
      }
      if (crops === 0) throw new Error('the calibration set yielded no images');
    }
  } finally {
    await session.release();
  }
  return stats;
}

export function rangesOf(stats: ReadonlyMap<string, TensorRange>, method: CalibrationMethod): Map<string, readonly [number, number]> {
  return new Map([...stats].map(([k, s]) => [k, s.range(method)]));
}
