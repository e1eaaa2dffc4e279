/**
 * IEEE 754 binary32 → binary16 conversion with round-to-nearest-even (the rounding numpy, ONNX
 * Runtime and CUDA use), for storing weights at half size. Node 20 has no Float16Array.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Half-precision bits of the float32 whose bit pattern is `x`. */
function halfFromBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Keep NaN a (quiet) NaN even when its payload lives only in the dropped low bits.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    let h = sign | (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent (and 65520+ becomes infinity).
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
    return h;
  }
  // Subnormal half: value = m · 2^-24, so the 24-bit significand is shifted right by 14 − e.
  const shift = 14 - e;
  if (shift > 24) return sign;
  const full = mant | 0x800000;
  let h = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1) === 1)) h++;
  return sign | h;
}

export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return halfFromBits(scratchU32[0] ?? 0);
}

export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Converts a whole array; reads the float bits through a Uint32Array view (no per-element scratch). */
export function toFloat16Array(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length < src.length) throw new RangeError(`'out' holds ${out.length} halves, need ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfFromBits(bits[i] ?? 0);
  return out;
}

export function fromFloat16Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length < src.length) throw new RangeError(`'out' holds ${out.length} floats, need ${src.length}`);
  for (let i = 0; i < src.length; i++) out[i] = float16BitsToFloat32(src[i] ?? 0);
  return out;
}
