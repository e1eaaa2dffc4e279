import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codeToHex, hammingPacked, hexToCode, IndexParamError, packSigns, popcount32, toPackedCode, toPlusMinusOne, unpackBits, validateBits } from '../../index/index.js';
import { hammingWords, codeWords } from '../../index/codes.js';
import { decodeHalf, encodeHalf, roundToHalf, toHalfBits } from '../../index/float16.js';
import { gaussian, naiveHamming, randomCode, rng } from './fixtures/synthetic.js';

function naivePopcount(x: number): number {
  let c = 0;
  for (let i = 0; i < 32; i++) c += (x >>> i) & 1;
  return c;
}

describe('codes: packing', () => {
  it('packSigns sets bit i iff value i > 0, LSB first, and unpackBits inverts it', () => {
    const rand = rng(7);
    for (const bits of [64, 128, 256]) {
      const values = Array.from({ length: bits }, () => gaussian(rand));
      const packed = packSigns(values);
      assert.equal(packed.length, bits / 8);
      const unpacked = unpackBits(packed, bits);
      for (let i = 0; i < bits; i++) {
        assert.equal(unpacked[i], (values[i] as number) > 0 ? 1 : 0, `bit ${i}`);
        assert.equal(((packed[i >> 3] as number) >> (i & 7)) & 1, unpacked[i]);
      }
    }
    assert.deepEqual([...packSigns([1, 0, -0, -1, 2, 0.5, -3, 1e-30])], [0b10110001]);
  });

  it('toPackedCode accepts packed bytes or sign vectors and rejects wrong lengths by name', () => {
    const rand = rng(3);
    const signs = Float32Array.from({ length: 128 }, () => (rand() < 0.5 ? -1 : 1));
    const packed = packSigns(signs);
    assert.deepEqual(toPackedCode(signs, 128), packed);
    assert.deepEqual(toPackedCode(Int8Array.from(signs), 128), packed);
    assert.deepEqual(toPackedCode([...signs], 128), packed);
    const copy = toPackedCode(packed, 128);
    assert.deepEqual(copy, packed);
    assert.notEqual(copy, packed, 'a copy, not the caller buffer');
    assert.throws(() => toPackedCode(new Uint8Array(15), 128), (e: unknown) => e instanceof IndexParamError && e.kind === 'invalid_argument' && /'code' must be a packed code of 16 bytes/.test(e.message));
    assert.throws(() => toPackedCode(new Float32Array(64), 128), /'code' must be 128 sign values/);
    assert.throws(() => toPackedCode([...new Array<number>(127).fill(1), Number.NaN], 128), /'code\[127\]' must be a number, not NaN, got NaN/);
  });

  it('validateBits takes multiples of 32 only', () => {
    for (const b of [32, 64, 128, 256, 4096]) assert.equal(validateBits(b), b);
    for (const b of [0, 16, 100, 8192, 1.5, '128']) assert.throws(() => validateBits(b), IndexParamError);
    assert.throws(() => validateBits(100), { message: "'bits' must be a multiple of 32 in [32, 4096], got 100" });
  });

  it('hex round trips and rejects malformed input', () => {
    const code = randomCode(rng(5), 128);
    const hex = codeToHex(code);
    assert.match(hex, /^[0-9a-f]{32}$/);
    assert.deepEqual(hexToCode(hex, 128), code);
    assert.deepEqual(hexToCode(hex.toUpperCase()), code);
    assert.throws(() => hexToCode('abc'), IndexParamError);
    assert.throws(() => hexToCode(hex, 64), /'hex' must be 16 hex digits/);
  });
});

describe('codes: popcount and Hamming', () => {
  it('popcount32 equals a bit loop', () => {
    const rand = rng(11);
    const values = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0x55555555, 0xaaaaaaaa, ...Array.from({ length: 5000 }, () => Math.floor(rand() * 2 ** 32))];
    for (const v of values) assert.equal(popcount32(v), naivePopcount(v), `popcount(${v.toString(16)})`);
    assert.equal(popcount32(-1), 32, 'negative int32 views of the same bits');
  });

  it('hammingPacked and hammingWords equal a bit loop for 64, 128 and 256 bits, any alignment', () => {
    const rand = rng(13);
    for (const bits of [64, 128, 256]) {
      for (let t = 0; t < 300; t++) {
        const a = randomCode(rand, bits);
        const b = randomCode(rand, bits);
        const want = naiveHamming(a, b);
        assert.equal(hammingPacked(a, b), want);
        const shifted = new Uint8Array(bits / 8 + 3);
        shifted.set(a, 3);
        assert.equal(hammingPacked(shifted.subarray(3), b), want, 'odd byteOffset');
        assert.equal(hammingWords(codeWords(a), 0, codeWords(b), 0, bits / 32), want);
      }
      const a = randomCode(rand, bits);
      assert.equal(hammingPacked(a, a), 0);
      assert.equal(hammingPacked(a, a.map((x) => x ^ 0xff)), bits);
    }
    assert.throws(() => hammingPacked(new Uint8Array(8), new Uint8Array(16)), IndexParamError);
  });

  it('±1 expansion: squared L2 distance is exactly 4 × Hamming', () => {
    const rand = rng(17);
    for (const bits of [64, 128, 256]) {
      const va = new Array<number>(bits);
      const vb = new Float32Array(bits);
      for (let t = 0; t < 200; t++) {
        const a = randomCode(rand, bits);
        const b = randomCode(rand, bits);
        toPlusMinusOne(a, bits, va);
        toPlusMinusOne(b, bits, vb);
        assert.ok(va.every((v) => v === 1 || v === -1));
        let l2 = 0;
        for (let i = 0; i < bits; i++) l2 += ((va[i] as number) - (vb[i] as number)) ** 2;
        assert.equal(l2, 4 * hammingPacked(a, b));
        assert.deepEqual(packSigns(va), a, 'signs of the expansion give the code back');
      }
    }
  });
});

describe('float16 storage', () => {
  it('encodes exactly representable values exactly and rounds to nearest even', () => {
    const exact = [0, 1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 1 + 2 ** -10];
    assert.deepEqual([...decodeHalf(encodeHalf(exact))], exact);
    assert.equal(toHalfBits(1), 0x3c00);
    assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00, 'halfway rounds to even (down)');
    assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, 'halfway rounds to even (up)');
    assert.equal(toHalfBits(70000), 0x7c00, 'overflow → +Inf');
    assert.equal(toHalfBits(-70000), 0xfc00);
    assert.equal(toHalfBits(2 ** -26), 0, 'underflow → 0');
    assert.ok(Number.isNaN(decodeHalf(encodeHalf([Number.NaN]))[0]));
  });

  it('keeps relative error ≤ 2^-11 on fc7-like values', () => {
    const rand = rng(19);
    const values = Float32Array.from({ length: 20000 }, () => Math.abs(gaussian(rand)) * 10 + 1e-3);
    const back = roundToHalf(values);
    for (let i = 0; i < values.length; i++) {
      const rel = Math.abs((back[i] as number) - (values[i] as number)) / (values[i] as number);
      assert.ok(rel <= 2 ** -11 + 1e-12, `value ${values[i]} → ${back[i]} (rel ${rel})`);
    }
  });
});
