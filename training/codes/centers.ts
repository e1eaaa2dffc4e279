/**
 * Hash centers (Yuan et al. 2020, "Central Similarity Quantization"): one target code per class,
 * far apart in Hamming space, that the codes of that class are pulled to bit by bit. A softmax head
 * on the code layer can separate 10 classes with a handful of bits and leave the rest to the
 * reconstruction, so Hamming distance barely sees the classes; a center makes every bit carry
 * the class, which is what ranking by Hamming distance needs to beat ranking by the softmax.
 *
 * Rows of a Sylvester Hadamard matrix are pairwise at distance exactly B/2; row 0 (all ones) is
 * skipped. Without enough rows (B not a power of two, or more classes than B − 1), centers are
 * seeded random balanced bits, whose pairwise distance is ≈ B/2 as well.
 */
import { mulberry32 } from '../network.js';

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Entry (i, j) of the Sylvester Hadamard matrix of order 2^k: (−1)^popcount(i & j). */
function hadamardBit(i: number, j: number): number {
  let x = i & j;
  let parity = 0;
  while (x) {
    parity ^= 1;
    x &= x - 1;
  }
  return parity === 0 ? 1 : 0;
}

/** [classes, bits] 0/1 targets, row-major. */
export function hashCenters(classes: number, bits: number, seed: number): Float32Array {
  const out = new Float32Array(classes * bits);
  if (isPowerOfTwo(bits) && classes <= bits - 1) {
    for (let c = 0; c < classes; c++) for (let j = 0; j < bits; j++) out[c * bits + j] = hadamardBit(c + 1, j);
    return out;
  }
  const rand = mulberry32(seed ^ 0x2545f491);
  for (let c = 0; c < classes; c++) {
    // Exactly half the bits set, in a seeded random order.
    const order = Array.from({ length: bits }, (_, j) => j);
    for (let j = bits - 1; j > 0; j--) {
      const r = Math.floor(rand() * (j + 1));
      [order[j], order[r]] = [order[r] as number, order[j] as number];
    }
    for (let j = 0; j < bits / 2; j++) out[c * bits + (order[j] as number)] = 1;
  }
  return out;
}
