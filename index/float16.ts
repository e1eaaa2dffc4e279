/**
 * IEEE 754 half precision for stored fc7 embeddings. Node 20 has no Float16Array, so we convert by
 * bit manipulation (encode) and a 65,536-entry table (decode, 256 KiB, built once on first use).
 *
 * Why float16: 4096-d embeddings take 8 KiB per image instead of 16 KiB (60k images: 491 MB vs
 * 983 MB), and fc7 activations (ReLU outputs, O(1)–O(10)) keep a relative error ≤ 2^-11 ≈ 4.9e-4,
 * far below the gaps between neighbours that the re-rank separates. Stored blobs are little-endian;
 * we view them with Uint16Array, which assumes a little-endian host (checked below).
 */
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('index/float16: stored embeddings are little-endian; big-endian hosts are not supported');

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even conversion of one float to half bits; overflow → ±Inf, NaN stays NaN. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: shift the implicit-1 mantissa right, rounding to nearest even.
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

let table: Float32Array | undefined;

/** Half bits → float, via the lazily built table. */
export function halfTable(): Float32Array {
  if (table) return table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  table = t;
  return t;
}

export function encodeHalf(values: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const res = out ?? new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) res[i] = toHalfBits(values[i] as number);
  return res;
}

export function decodeHalf(halves: Uint16Array, out?: Float32Array): Float32Array {
  const t = halfTable();
  const res = out ?? new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) res[i] = t[halves[i] as number] as number;
  return res;
}

/** The value a float becomes after a float16 round trip (queries get it too, so self-distance is 0). */
export function roundToHalf(values: ArrayLike<number>, out?: Float32Array): Float32Array {
  const t = halfTable();
  const res = out ?? new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) res[i] = t[toHalfBits(values[i] as number)] as number;
  return res;
}

/** A Uint16Array over a blob's bytes; copies only when SQLite handed us an odd byte offset. */
export function halfView(blob: Uint8Array): Uint16Array {
  if (blob.byteOffset % 2 === 0) return new Uint16Array(blob.buffer, blob.byteOffset, blob.length >>> 1);
  return new Uint16Array(new Uint8Array(blob).buffer);
}

/** Squared Euclidean distance between a float query and a stored half-precision vector. */
export function squaredDistanceHalf(query: Float32Array, halves: Uint16Array): number {
  const t = halfTable();
  let s = 0;
  for (let i = 0; i < query.length; i++) {
    const d = (query[i] as number) - (t[halves[i] as number] as number);
    s += d * d;
  }
  return s;
}

/**
 * Euclidean distance between a float query and stored halves, and the halves' norm, in one pass
 * (the re-rank needs both; two passes read each 8 KiB vector twice).
 */
export function distanceAndNorm(query: Float32Array, halves: Uint16Array): { distance: number; norm: number } {
  const t = halfTable();
  let s = 0;
  let nn = 0;
  for (let i = 0; i < query.length; i++) {
    const v = t[halves[i] as number] as number;
    const d = (query[i] as number) - v;
    s += d * d;
    nn += v * v;
  }
  return { distance: Math.sqrt(s), norm: Math.sqrt(nn) };
}
