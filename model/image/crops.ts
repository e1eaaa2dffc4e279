/**
 * The paper's test-time augmentation: from the resizeSize² square, the four corner patches and
 * the center patch of inputSize², plus their horizontal reflections (Krizhevsky et al. 2012, §4.1).
 * Cut and normalized in one pass over the decoded uint8 square into an NCHW float32 batch.
 */
import type { PreprocessContract } from '../contract.js';
import { channelCount, ContractError } from '../contract.js';
import type { DecodedSquare } from './decode.js';

export type CropCount = 1 | 10;

export type CropName = 'center' | 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

export interface CropSpec {
  readonly name: CropName;
  /** Top-left corner of the patch inside the square. */
  readonly x: number;
  readonly y: number;
  readonly mirrored: boolean;
}

/**
 * Batch order of the 10 crops: center, top-left, top-right, bottom-left, bottom-right, then the
 * same five mirrored. The center comes first so that crops=1 is a prefix of crops=10.
 */
export function cropSpecs(resizeSize: number, inputSize: number, crops: CropCount): CropSpec[] {
  if (inputSize > resizeSize) {
    throw new ContractError(`preprocess.inputSize ${inputSize} is larger than preprocess.resizeSize ${resizeSize}`);
  }
  const far = resizeSize - inputSize;
  // Floor: with an odd margin the extra pixel stays on the right/bottom.
  const mid = Math.floor(far / 2);
  const five: Array<Omit<CropSpec, 'mirrored'>> = [
    { name: 'center', x: mid, y: mid },
    { name: 'top-left', x: 0, y: 0 },
    { name: 'top-right', x: far, y: 0 },
    { name: 'bottom-left', x: 0, y: far },
    { name: 'bottom-right', x: far, y: far },
  ];
  if (crops === 1) return [{ ...five[0]!, mirrored: false }];
  return [...five.map((c) => ({ ...c, mirrored: false })), ...five.map((c) => ({ ...c, mirrored: true }))];
}

const lutCache = new WeakMap<PreprocessContract, Float32Array>();

/** (v · scale − mean[c]) / std[c] for every uint8 v and channel c, so the hot loop is a table lookup. */
export function normalizationTable(pre: PreprocessContract): Float32Array {
  let lut = lutCache.get(pre);
  if (lut) return lut;
  const nch = channelCount(pre);
  lut = new Float32Array(nch * 256);
  for (let c = 0; c < nch; c++) {
    const mean = pre.mean[c] ?? 0;
    const std = pre.std[c] ?? 1;
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * pre.scale - mean) / std;
  }
  lutCache.set(pre, lut);
  return lut;
}

/** Floats in one batch of `crops` crops for this contract. */
export function batchLength(pre: PreprocessContract, crops: number): number {
  return crops * channelCount(pre) * pre.inputSize * pre.inputSize;
}

// Normalized planes of the square (plain and mirrored), reused across calls: makeCrops is
// synchronous, so one per thread is enough, and a fresh 1.5 MB pair per 256 px image would cost
// ~4 ms of first-touch page faults here.
let scratch = new Float32Array(0);

/**
 * The whole square normalized once, per channel a plain and a horizontally mirrored plane
 * (layout [channel][mirrored][y][x]), so that each crop row is a contiguous copy. Ten crops of 224
 * from 256 read each pixel ~7.7 times: one table lookup per pixel instead (full `alexnet`, dog.jpg:
 * ~7 → ~2 ms per image).
 */
function normalizedPlanes(src: Uint8Array, size: number, nch: number, lut: Float32Array): Float32Array {
  const plane = size * size;
  if (scratch.length < 2 * nch * plane) scratch = new Float32Array(2 * nch * plane);
  const p = scratch;
  for (let c = 0; c < nch; c++) {
    const lutBase = c * 256;
    for (let y = 0; y < size; y++) {
      const row = y * size * nch + c;
      const plain = (2 * c * size + y) * size;
      const mirror = ((2 * c + 1) * size + y) * size + size - 1;
      for (let x = 0; x < size; x++) {
        const v = lut[lutBase + (src[row + x * nch] ?? 0)] ?? 0;
        p[plain + x] = v;
        p[mirror - x] = v;
      }
    }
  }
  return p;
}

/**
 * NCHW float32 batch of 1 or 10 crops (order: see cropSpecs). `out` is reused when given; when it
 * is longer than needed the returned array is a view of its beginning.
 */
export function makeCrops(square: DecodedSquare, pre: PreprocessContract, crops: CropCount, out?: Float32Array): Float32Array {
  const nch = channelCount(pre);
  if (square.channels !== nch || square.size !== pre.resizeSize || square.data.length !== square.size * square.size * nch) {
    throw new ContractError(
      `decoded square is ${square.size}×${square.size}×${square.channels}, the contract expects ${pre.resizeSize}×${pre.resizeSize}×${nch}`,
    );
  }
  const specs = cropSpecs(pre.resizeSize, pre.inputSize, crops);
  const need = batchLength(pre, crops);
  if (out && out.length < need) throw new RangeError(`'out' holds ${out.length} floats, ${crops} crops need ${need}`);
  const dst = out ? (out.length === need ? out : out.subarray(0, need)) : new Float32Array(need);
  const lut = normalizationTable(pre);
  const size = pre.inputSize;
  const plane = size * size;
  if (crops === 1) {
    // One crop reads fewer pixels than the square has: look them up directly.
    cutCenter(square.data, square.size * nch, specs[0] ?? { x: 0, y: 0 }, size, nch, lut, dst);
    return dst;
  }
  const S = square.size;
  const planes = normalizedPlanes(square.data, S, nch, lut);
  specs.forEach((spec, n) => {
    for (let c = 0; c < nch; c++) {
      let o = (n * nch + c) * plane;
      // A mirrored crop at x is the plain crop at S − x − size of the mirrored plane.
      const base = spec.mirrored ? ((2 * c + 1) * S + spec.y) * S + (S - spec.x - size) : (2 * c * S + spec.y) * S + spec.x;
      for (let y = 0; y < size; y++, o += size) dst.set(planes.subarray(base + y * S, base + y * S + size), o);
    }
  });
  return dst;
}

function cutCenter(src: Uint8Array, rowStride: number, spec: { x: number; y: number }, size: number, nch: number, lut: Float32Array, dst: Float32Array): void {
  const plane = size * size;
  for (let c = 0; c < nch; c++) {
    const lutBase = c * 256;
    let o = c * plane;
    for (let y = 0; y < size; y++) {
      const row = (spec.y + y) * rowStride + spec.x * nch + c;
      for (let x = 0; x < size; x++) dst[o++] = lut[lutBase + (src[row + x * nch] ?? 0)] ?? 0;
    }
  }
}
