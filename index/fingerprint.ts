/**
 * Order-independent digest of the live (id, code) set: the wrapping sum of one 32-bit row hash
 * and the XOR of another, plus the count. Adds and removes update it in O(B/32), and the value
 * computed from SQLite at open is compared with the one the sidecar saved: if the generation
 * matches but the rows do not (a rolled-back WAL after power loss, a database file swapped under
 * the index), the digests differ and the index is rebuilt.
 */

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rowHash(seed: number, id: number, words: Uint32Array, off: number, n: number): number {
  let h = mix(seed ^ Math.imul(id, 0x9e3779b1));
  for (let w = 0; w < n; w++) h = mix(h ^ (words[off + w] as number));
  return h;
}

export class Fingerprint {
  private sum = 0;
  private xor = 0;
  private count = 0;

  constructor(private readonly words: number) {}

  add(id: number, words: Uint32Array, off = 0): void {
    this.sum = (this.sum + rowHash(0x2545f491, id, words, off, this.words)) >>> 0;
    this.xor = (this.xor ^ rowHash(0x68e31da4, id, words, off, this.words)) >>> 0;
    this.count++;
  }

  remove(id: number, words: Uint32Array, off = 0): void {
    this.sum = (this.sum - rowHash(0x2545f491, id, words, off, this.words)) >>> 0;
    this.xor = (this.xor ^ rowHash(0x68e31da4, id, words, off, this.words)) >>> 0;
    this.count--;
  }

  toString(): string {
    return `${this.count}:${this.sum.toString(16).padStart(8, '0')}${this.xor.toString(16).padStart(8, '0')}`;
  }
}
