/**
 * Weight layout conversions from TensorFlow.js (the layout training produces, see model/weights.ts)
 * to what the ONNX operators expect, and back (reading a model to fine-tune it). Pure functions over flat Float32Arrays.
 */

/**
 * tfjs conv2d kernels are HWIO [kh, kw, in, out] because tfjs convolves NHWC activations; ONNX Conv
 * works on NCHW and wants OIHW [out, in, kh, kw]. Same numbers, transposed (0,1,2,3) → (3,2,0,1).
 */
export function hwioToOihw(w: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  if (w.length !== kh * kw * cin * cout) {
    throw new RangeError(`kernel has ${w.length} values, expected ${kh}×${kw}×${cin}×${cout}`);
  }
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = w[src + o] ?? 0;
      }
    }
  }
  return out;
}

/**
 * The first dense layer after the conv stack reads a flattened feature map. tfjs flattens NHWC, so
 * its input feature (h, w, c) sits at row (h·W + w)·C + c of the [in, out] kernel; ONNX Flatten of
 * NCHW yields (c, h, w) at c·H·W + h·W + w. Moving every row to its NCHW position makes Gemm compute
 * exactly what tfjs computes. Dense kernels stay [in, out], so Gemm uses transB = 0.
 */
export function nhwcRowsToNchw(w: Float32Array, c: number, h: number, wd: number, units: number): Float32Array {
  return moveFlattenRows(w, c, h, wd, units, true);
}

/** Inverse of nhwcRowsToNchw: the first dense kernel's rows from ONNX Flatten (c, h, w) order to tfjs (h, w, c). */
export function nchwRowsToNhwc(w: Float32Array, c: number, h: number, wd: number, units: number): Float32Array {
  return moveFlattenRows(w, c, h, wd, units, false);
}

/**
 * ONNX LRN divides alpha by the window: x / (bias + alpha/size · Σx²)^beta. tfjs and the paper use
 * x / (k + α · Σx²)^β with no division, so the ONNX attribute must be α · size to compute the same.
 */
export function onnxLrnAlpha(paperAlpha: number, size: number): number {
  return paperAlpha * size;
}

/** Inverse of hwioToOihw: an ONNX Conv kernel OIHW [out, in, kh, kw] in tfjs HWIO [kh, kw, in, out]. */
export function oihwToHwio(w: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  if (w.length !== kh * kw * cin * cout) {
    throw new RangeError(`kernel has ${w.length} values, expected ${cout}×${cin}×${kh}×${kw}`);
  }
  const out = new Float32Array(w.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) out[((y * kw + x) * cin + i) * cout + o] = w[((o * cin + i) * kh + y) * kw + x] ?? 0;
      }
    }
  }
  return out;
}

/** Moves each `units`-wide row between NHWC and NCHW flatten order (`toNchw` picks the direction). */
function moveFlattenRows(w: Float32Array, c: number, h: number, wd: number, units: number, toNchw: boolean): Float32Array {
  if (w.length !== c * h * wd * units) {
    throw new RangeError(`dense kernel has ${w.length} values, expected ${c}·${h}·${wd} rows × ${units}`);
  }
  const out = new Float32Array(w.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < wd; x++) {
      for (let ch = 0; ch < c; ch++) {
        const nhwc = ((y * wd + x) * c + ch) * units;
        const nchw = (ch * h * wd + y * wd + x) * units;
        const [from, to] = toNchw ? [nhwc, nchw] : [nchw, nhwc];
        out.set(w.subarray(from, from + units), to);
      }
    }
  }
  return out;
}
