/**
 * Binary codes: B sign bits packed LSB-first (bit i lives in byte i >> 3 at position i & 7), so a
 * code is B/8 bytes on disk and B/32 little-endian 32-bit words in memory. Hamming distance is
 * XOR + popcount over those words.
 */
import { IndexParamError } from './errors.js';

/** A packed code (Uint8Array of B/8 bytes) or one value per bit whose sign gives the bit (±1, logits, tanh outputs). */
export type CodeInput = Uint8Array | Float32Array | Float64Array | Int8Array | readonly number[];

export const MIN_BITS = 32;
export const MAX_BITS = 4096;

/** Whole 32-bit words keep the scan loop free of tail handling; 64/128/256 are the sizes we use. */
export function validateBits(bits: unknown, param = 'bits'): number {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < MIN_BITS || bits > MAX_BITS || bits % 32 !== 0) {
    throw new IndexParamError(param, bits, `a multiple of 32 in [${MIN_BITS}, ${MAX_BITS}]`);
  }
  return bits;
}

/** Bit i is set when values[i] > 0; zero counts as negative so that ±0 and exact zeros agree. */
export function packSigns(values: ArrayLike<number>, out?: Uint8Array): Uint8Array {
  if (values.length % 8 !== 0) throw new IndexParamError('values', values, 'a multiple of 8 values');
  const bytes = out ?? new Uint8Array(values.length >>> 3);
  bytes.fill(0);
  for (let i = 0; i < values.length; i++) {
    if ((values[i] as number) > 0) bytes[i >>> 3] = (bytes[i >>> 3] as number) | (1 << (i & 7));
  }
  return bytes;
}

/** One 0/1 byte per bit. */
export function unpackBits(code: Uint8Array, bits = code.length * 8, out?: Uint8Array): Uint8Array {
  const res = out ?? new Uint8Array(bits);
  for (let i = 0; i < bits; i++) res[i] = ((code[i >>> 3] as number) >>> (i & 7)) & 1;
  return res;
}

/**
 * ±1 expansion (bit 1 → +1, bit 0 → −1), the form hnswlib indexes. Writes into `out` so callers
 * can reuse one number[] per query (hnswlib-node takes plain arrays only).
 */
export function toPlusMinusOne<T extends number[] | Float32Array>(code: Uint8Array, bits: number, out: T): T {
  for (let i = 0; i < bits; i++) out[i] = ((code[i >>> 3] as number) >>> (i & 7)) & 1 ? 1 : -1;
  return out;
}

/** SWAR popcount: four shifts and a multiply, no table lookups (no cache misses in the scan). */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Hamming distance of two packed codes of equal length, any byte alignment. */
export function hammingPacked(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new IndexParamError('b', b, `a code of ${a.length} bytes`);
  let d = 0;
  let i = 0;
  for (; i + 4 <= a.length; i += 4) {
    const wa = (a[i] as number) | ((a[i + 1] as number) << 8) | ((a[i + 2] as number) << 16) | ((a[i + 3] as number) << 24);
    const wb = (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
    d += popcount32(wa ^ wb);
  }
  for (; i < a.length; i++) d += popcount32(((a[i] as number) ^ (b[i] as number)) & 0xff);
  return d;
}

/** Hamming distance between word ranges of two code matrices (the scan's inner loop). */
export function hammingWords(a: Uint32Array, aOff: number, b: Uint32Array, bOff: number, words: number): number {
  let d = 0;
  for (let w = 0; w < words; w++) d += popcount32((a[aOff + w] as number) ^ (b[bOff + w] as number));
  return d;
}

/** Aligned little-endian words of a packed code (a copy, so any Buffer slice works). */
export function codeWords(code: Uint8Array, out?: Uint32Array): Uint32Array {
  const words = out ?? new Uint32Array(code.length >>> 2);
  new Uint8Array(words.buffer, words.byteOffset, code.length).set(code);
  return words;
}

export function codeToHex(code: Uint8Array): string {
  return Buffer.from(code.buffer, code.byteOffset, code.length).toString('hex');
}

export function hexToCode(hex: string, bits?: number): Uint8Array {
  const ok = /^(?:[0-9a-f]{2})+$/i.test(hex) && (bits === undefined || hex.length === bits / 4);
  if (!ok) throw new IndexParamError('hex', hex, bits === undefined ? 'an even-length hex string' : `${bits / 4} hex digits`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * Normalises what callers hand us into a fresh packed code: a Uint8Array must already be packed
 * (B/8 bytes); anything else is one value per bit whose sign is taken.
 */
export function toPackedCode(input: CodeInput, bits: number, param = 'code'): Uint8Array {
  if (input instanceof Uint8Array) {
    if (input.length !== bits / 8) throw new IndexParamError(param, input, `a packed code of ${bits / 8} bytes (${bits} bits)`);
    return new Uint8Array(input);
  }
  if (input.length !== bits) throw new IndexParamError(param, input, `${bits} sign values or a Uint8Array of ${bits / 8} bytes`);
  for (let i = 0; i < input.length; i++) {
    if (Number.isNaN(input[i] as number)) throw new IndexParamError(`${param}[${i}]`, input[i], 'a number, not NaN');
  }
  return packSigns(input);
}
