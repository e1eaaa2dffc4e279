/**
 * The arithmetic of static int8 quantization (pure functions, no graph):
 * - weights: per-channel symmetric int8 with `bits` of range (WEIGHT_BITS), scale_c = max|w_c| / qmax,
 *   q = round(w / scale_c) in [−qmax, qmax], zero point 0, where qmax = 63 for 7 bits (the default) and
 *   127 for 8. Why 7: on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) onnxruntime's u8×s8
 *   kernels add pairs of products in 16 bits with saturation (VPMADDUBSW): 2 × 255 × 127 overflows
 *   int16, 2 × 255 × 63 does not. Measured on an AVX2-only EPYC, the tiny AlexNet's int8 logits were
 *   0.31 off fp32 (relative) with 8-bit weights and within 0.08 with 7; VNNI (32-bit sums) clips neither;
 * - activations: per-tensor asymmetric uint8 over a calibrated range [lo, hi] widened to hold 0
 *   (so zero padding and ReLU's zeros are exact), scale = (hi − lo) / 255, zero point = round(−lo / scale);
 * - biases: int32 with scale = activation scale × weight scale_c, zero point 0 (what QLinearConv
 *   and QGemm add to their int32 accumulators).
 * Rounding is half away from zero for weights and biases, as onnxruntime's own quantizer does.
 */

/** Weight ranges `sightline quantize --weight-bits` offers: 7 runs exactly on every x86 CPU, 8 only with VNNI. */
export const WEIGHT_BITS = [7, 8] as const;
export type WeightBits = (typeof WEIGHT_BITS)[number];
export const DEFAULT_WEIGHT_BITS: WeightBits = 7;

/** The largest |q| of `bits`-bit symmetric weights: 63 for 7, 127 for 8. */
export const weightQmax = (bits: WeightBits): number => 2 ** (bits - 1) - 1;

export interface ChannelQuant {
  /** One scale per output channel. */
  scales: Float32Array;
  q: Int8Array;
}

export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
}

const roundHalfAway = (x: number): number => Math.sign(x) * Math.round(Math.abs(x));

/**
 * Per-channel symmetric int8 weights with `bits` of range. `dims` is the tensor's shape and `axis`
 * the channel axis (0 for Conv OIHW and for Gemm with transB = 1, 1 for Gemm [in, out] with
 * transB = 0). An all-zero channel gets scale 1 (scales must be positive) and quantizes to zeros.
 */
export function quantizePerChannel(w: Float32Array, dims: readonly number[], axis: number, bits: WeightBits = DEFAULT_WEIGHT_BITS): ChannelQuant {
  const channels = dims[axis] ?? 0;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = dims.reduce((a, b) => a * b, 1);
  if (w.length !== size || channels < 1) throw new RangeError(`weights have ${w.length} values, shape [${dims.join(', ')}] axis ${axis} needs ${size}`);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < size; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(w[i] ?? 0);
    if (a > (maxAbs[c] ?? 0)) maxAbs[c] = a;
  }
  const qmax = weightQmax(bits);
  const scales = maxAbs.map((m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(size);
  for (let i = 0; i < size; i++) {
    const s = scales[Math.floor(i / inner) % channels] ?? 1;
    q[i] = Math.max(-qmax, Math.min(qmax, roundHalfAway((w[i] ?? 0) / s)));
  }
  return { scales, q };
}

/** uint8 parameters for values in [lo, hi]; the range always includes 0. */
export function activationParams(lo: number, hi: number): ActivationQuant {
  const a = Math.min(lo, 0);
  const b = Math.max(hi, 0);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new RangeError(`activation range [${lo}, ${hi}] is not finite`);
  if (b - a <= 0) return { scale: 1, zeroPoint: 0 };
  const scale = (b - a) / 255;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-a / scale))) };
}

/** int32 bias for an input scale and per-channel weight scales (one bias per output channel). */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { scales: Float32Array; q: Int32Array } {
  if (b.length !== weightScales.length) throw new RangeError(`bias has ${b.length} values for ${weightScales.length} weight channels`);
  const scales = weightScales.map((s) => s * inputScale);
  const q = new Int32Array(b.length);
  const lim = 2 ** 31 - 1;
  for (let i = 0; i < b.length; i++) q[i] = Math.max(-lim, Math.min(lim, roundHalfAway((b[i] ?? 0) / (scales[i] ?? 1))));
  return { scales, q };
}

export const CALIBRATION_METHODS = ['minmax', 'percentile'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** Fraction of values that the percentile method lets clip at each end of a tensor's range. */
export const PERCENTILE_TAIL = 1e-4;

const BINS = 4096;

/**
 * Range statistics of one activation tensor over the calibration set. Pass 1 (`observeRange`) finds
 * min and max; pass 2 (`observeHistogram`) counts values in BINS equal bins over that range, from
 * which `range('percentile')` cuts PERCENTILE_TAIL of the values at each end.
 */
export class TensorRange {
  min = Infinity;
  max = -Infinity;
  private hist: Float64Array | undefined;
  private total = 0;

  observeRange(x: ArrayLike<number>): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < x.length; i++) {
      const v = x[i] ?? 0;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
  }

  observeHistogram(x: ArrayLike<number>): void {
    if (!(this.max > this.min)) return;
    const h = (this.hist ??= new Float64Array(BINS));
    const k = BINS / (this.max - this.min);
    for (let i = 0; i < x.length; i++) {
      const bin = Math.min(BINS - 1, Math.max(0, Math.floor(((x[i] ?? 0) - this.min) * k)));
      h[bin] = (h[bin] ?? 0) + 1;
    }
    this.total += x.length;
  }

  /** [lo, hi] of the method; `percentile` needs pass 2 (else it falls back to min-max). */
  range(method: CalibrationMethod): [number, number] {
    if (method === 'minmax' || !this.hist || this.total === 0) return [this.min, this.max];
    const h = this.hist;
    const width = (this.max - this.min) / BINS;
    const cut = this.total * PERCENTILE_TAIL;
    let lo = 0;
    for (let acc = 0; lo < BINS - 1 && acc + (h[lo] ?? 0) <= cut; lo++) acc += h[lo] ?? 0;
    let hi = BINS - 1;
    for (let acc = 0; hi > lo && acc + (h[hi] ?? 0) <= cut; hi--) acc += h[hi] ?? 0;
    // Bin edges: the low end keeps its bin's lower edge, the high end its bin's upper edge.
    return [this.min + lo * width, this.min + (hi + 1) * width];
  }
}
