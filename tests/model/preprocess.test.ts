import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { PreprocessContract } from '../../model/contract.js';
import { ImageTooLargeError, UndecodableImageError, UnsupportedMediaError } from '../../model/errors.js';
import { cropSpecs, decodeImage, makeCrops, sniffFormat } from '../../model/preprocess.js';
import type { DecodedSquare } from '../../model/preprocess.js';

const LIMITS = { maxPixels: 40_000_000 };
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url));

/** Identity normalization so crop values are the raw 0–255 pixels. */
const RAW: PreprocessContract = { inputSize: 32, resizeSize: 36, channels: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], background: [255, 255, 255] };

/** 36×36 PNG whose pixel (x, y) is (7x, 7y, 100): exact at resizeSize, so positions are recoverable. */
async function gradientPng(): Promise<Buffer> {
  const raw = Buffer.alloc(36 * 36 * 3);
  for (let y = 0; y < 36; y++) {
    for (let x = 0; x < 36; x++) raw.set([x * 7, y * 7, 100], (y * 36 + x) * 3);
  }
  return sharp(raw, { raw: { width: 36, height: 36, channels: 3 } }).png().toBuffer();
}

/** Value of crop n, channel c, row y, column x in an NCHW batch of size×size crops. */
function at(batch: Float32Array, n: number, c: number, y: number, x: number, channels = 3, size = 32): number {
  return batch[((n * channels + c) * size + y) * size + x] ?? NaN;
}

function heicBytes(brand: string, compat: string[]): Buffer {
  const box = Buffer.alloc(16 + 4 * compat.length);
  box.writeUInt32BE(box.length, 0);
  box.write('ftyp', 4, 'latin1');
  box.write(brand, 8, 'latin1');
  compat.forEach((b, i) => box.write(b, 16 + 4 * i, 'latin1'));
  return Buffer.concat([box, Buffer.alloc(64)]);
}

describe('decodeImage', () => {
  it('decodes a real JPEG to the resizeSize square and reports the original size', async () => {
    const sq = await decodeImage(fixture('dog.jpg'), RAW, LIMITS);
    assert.equal(sq.format, 'jpeg');
    assert.deepEqual([sq.width, sq.height, sq.size, sq.channels], [768, 576, 36, 3]);
    assert.equal(sq.data.length, 36 * 36 * 3);
  });

  it('keeps pixels exact when no resampling is needed', async () => {
    const sq = await decodeImage(await gradientPng(), RAW, LIMITS);
    assert.deepEqual([...sq.data.subarray((5 * 36 + 9) * 3, (5 * 36 + 9) * 3 + 3)], [63, 35, 100]);
  });

  it('applies EXIF orientation before cropping', async () => {
    // Stored 60×40: left half red, right half blue; orientation 6 displays it rotated 90° clockwise,
    // so the displayed image is 40×60 with red on top.
    const jpg = await sharp({ create: { width: 60, height: 40, channels: 3, background: '#ff0000' } })
      .composite([{ input: { create: { width: 30, height: 40, channels: 3, background: '#0000ff' } }, left: 30, top: 0 }])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const sq = await decodeImage(jpg, RAW, LIMITS);
    assert.deepEqual([sq.width, sq.height], [40, 60]);
    const px = (x: number, y: number): number[] => [...sq.data.subarray((y * 36 + x) * 3, (y * 36 + x) * 3 + 3)];
    const [r1 = 0, , b1 = 0] = px(18, 2);
    const [r2 = 0, , b2 = 0] = px(18, 33);
    assert.ok(r1 > 200 && b1 < 60, `top should be red, got ${px(18, 2).join(',')}`);
    assert.ok(b2 > 200 && r2 < 60, `bottom should be blue, got ${px(18, 33).join(',')}`);
  });

  it('flattens transparency onto the contract background', async () => {
    const png = await sharp({ create: { width: 36, height: 36, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const sq = await decodeImage(png, { ...RAW, background: [10, 20, 30] }, LIMITS);
    for (let i = 0; i < sq.data.length; i += 3) assert.deepEqual([sq.data[i], sq.data[i + 1], sq.data[i + 2]], [10, 20, 30]);
  });

  it('converts to one luminance channel for gray contracts', async () => {
    const raw = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128]);
    const gray: PreprocessContract = { ...RAW, channels: 'gray', mean: [0], std: [1], inputSize: 1, resizeSize: 1 };
    const one = async (i: number): Promise<number> => {
      const px = await sharp(raw.subarray(i * 3, i * 3 + 3), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer();
      const sq = await decodeImage(px, gray, LIMITS);
      assert.equal(sq.channels, 1);
      assert.equal(sq.data.length, 1);
      return sq.data[0] ?? NaN;
    };
    const [red, green, blue, mid] = [await one(0), await one(1), await one(2), await one(3)];
    assert.equal(mid, 128, 'a neutral gray keeps its value');
    assert.ok(green > red && red > blue, `luminance order green > red > blue, got ${green}, ${red}, ${blue}`);
  });

  it('swaps red and blue for bgr contracts', async () => {
    const png = await gradientPng();
    const rgb = await decodeImage(png, RAW, LIMITS);
    const bgr = await decodeImage(png, { ...RAW, channels: 'bgr' }, LIMITS);
    for (let i = 0; i < rgb.data.length; i += 3) {
      assert.deepEqual([bgr.data[i], bgr.data[i + 1], bgr.data[i + 2]], [rgb.data[i + 2], rgb.data[i + 1], rgb.data[i]]);
    }
  });

  it('decodes AVIF, which the prebuilt sharp supports', async () => {
    const avif = await sharp(fixture('eagle.jpg')).resize(80).avif().toBuffer();
    const sq = await decodeImage(avif, RAW, LIMITS);
    assert.equal(sq.format, 'avif');
    assert.equal(sq.width, 80);
  });

  it('refuses images over the pixel limit with a 413 naming both counts', async () => {
    const png = await sharp({ create: { width: 100, height: 80, channels: 3, background: '#888' } }).png().toBuffer();
    await assert.rejects(decodeImage(png, RAW, { maxPixels: 5000 }), (err: unknown) => {
      assert.ok(err instanceof ImageTooLargeError);
      assert.equal(err.kind, 'too_large');
      assert.equal(err.code, 'image_too_large');
      assert.match(err.message, /100×80 = 8000 pixels/);
      assert.match(err.message, /limit of 5000/);
      return true;
    });
  });

  it('reports undecodable bytes with a 400 naming the detected type', async () => {
    await assert.rejects(decodeImage(Buffer.from('definitely not an image'), RAW, LIMITS), (err: unknown) => {
      assert.ok(err instanceof UndecodableImageError);
      assert.equal(err.kind, 'invalid_argument');
      assert.equal(err.code, 'undecodable_image');
      assert.match(err.message, /unrecognised/);
      return true;
    });
    await assert.rejects(decodeImage(fixture('dog.jpg').subarray(0, 300), RAW, LIMITS), (err: unknown) => {
      assert.ok(err instanceof UndecodableImageError);
      assert.match(err.message, /JPEG/);
      return true;
    });
    await assert.rejects(decodeImage(Buffer.alloc(0), RAW, LIMITS), UndecodableImageError);
  });

  it('gives the same reason for the same damaged bytes under concurrent decodes (libvips shares one error buffer)', async () => {
    const truncated = fixture('dog.jpg').subarray(0, Math.floor(fixture('dog.jpg').length * 0.8));
    const results = await Promise.allSettled(Array.from({ length: 24 }, () => decodeImage(truncated, RAW, LIMITS)));
    const messages = new Set(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'decoded')));
    assert.deepEqual([...messages], [`could not decode the JPEG image: the file is truncated (its data ends after ${truncated.length} bytes, before the end of the image)`]);
    // Complete framing but garbage entropy data: corrupt, not truncated, and still one message.
    const dog = Buffer.from(fixture('dog.jpg'));
    dog.fill(0xff, 2000, dog.length - 2);
    const corrupt = await Promise.allSettled(Array.from({ length: 8 }, () => decodeImage(dog, RAW, LIMITS)));
    const corruptMessages = new Set(corrupt.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'decoded')));
    assert.equal(corruptMessages.size, 1, [...corruptMessages].join(' | '));
    assert.match([...corruptMessages][0] ?? '', /JPEG image: the (image header|compressed pixel data) is corrupt$/);
  });

  it('refuses SVG with a 415 whatever comes before the root element (BOM, XML prolog, comments, DOCTYPE)', () => {
    const variants = [
      '<svg xmlns="http://www.w3.org/2000/svg"/>',
      '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
      '\ufeff<?xml version="1.0"?><!-- drawn by hand --><svg>',
      '<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [ <!ENTITY a "b"> ]>\n<?xml-stylesheet href="s.css"?>\n<svg/>',
    ];
    for (const v of variants) assert.deepEqual(sniffFormat(Buffer.from(v)), { kind: 'unsupported', label: 'SVG', reason: 'vector images are not rasterised by the server; convert to JPEG or PNG' }, v);
    assert.equal(sniffFormat(Buffer.from('<?xml version="1.0"?><html/>')).kind, 'unknown');
    // Hundreds of comments then junk: a backtracking regex never returned on this.
    assert.equal(sniffFormat(Buffer.from('<?xml?>' + '<!-- -->'.repeat(500) + 'x')).kind, 'unknown');
  });

  it('refuses HEIC with a 415 that says why and what to do', async () => {
    await assert.rejects(decodeImage(heicBytes('heic', ['mif1', 'heic']), RAW, LIMITS), (err: unknown) => {
      assert.ok(err instanceof UnsupportedMediaError);
      assert.equal(err.kind, 'unsupported');
      assert.equal(err.code, 'unsupported_media_type');
      assert.match(err.message, /^HEIC images are not supported: .*cannot decode HEIC.*convert to JPEG or PNG/);
      return true;
    });
    await assert.rejects(decodeImage(Buffer.from('%PDF-1.7\n...'), RAW, LIMITS), /PDF images are not supported/);
  });
});

describe('sniffFormat', () => {
  it('tells AVIF from HEIC inside the same HEIF container', () => {
    assert.deepEqual(sniffFormat(heicBytes('mif1', ['mif1', 'avif'])), { kind: 'supported', format: 'avif', label: 'AVIF' });
    assert.equal(sniffFormat(heicBytes('mif1', ['mif1', 'heic'])).label, 'HEIC');
    assert.equal(sniffFormat(heicBytes('mif1', ['mif1'])).label, 'HEIF');
    assert.equal(sniffFormat(heicBytes('isom', ['mp41'])).kind, 'unsupported');
  });
});

describe('makeCrops', () => {
  const square = async (): Promise<DecodedSquare> => decodeImage(await gradientPng(), RAW, LIMITS);

  it('places the center and the four corners (order: center, tl, tr, bl, br)', async () => {
    const batch = makeCrops(await square(), RAW, 10);
    assert.equal(batch.length, 10 * 3 * 32 * 32);
    const origins = [[2, 2], [0, 0], [4, 0], [0, 4], [4, 4]];
    origins.forEach(([ox = 0, oy = 0], n) => {
      for (const [x, y] of [[0, 0], [31, 0], [0, 31], [17, 9]] as const) {
        assert.equal(at(batch, n, 0, y, x), (ox + x) * 7, `crop ${n} R at (${x}, ${y})`);
        assert.equal(at(batch, n, 1, y, x), (oy + y) * 7, `crop ${n} G at (${x}, ${y})`);
        assert.equal(at(batch, n, 2, y, x), 100);
      }
    });
  });

  it('makes crops 5–9 the horizontal mirrors of crops 0–4', async () => {
    const batch = makeCrops(await square(), RAW, 10);
    for (let n = 0; n < 5; n++) {
      for (let c = 0; c < 3; c++) {
        for (const [x, y] of [[0, 0], [3, 30], [31, 12]] as const) assert.equal(at(batch, n + 5, c, y, x), at(batch, n, c, y, 31 - x));
      }
    }
  });

  it('makes crops=1 the center crop, equal to the first of the ten', async () => {
    const sq = await square();
    const one = makeCrops(sq, RAW, 1);
    assert.deepEqual(one, makeCrops(sq, RAW, 10).subarray(0, one.length));
    assert.deepEqual(cropSpecs(36, 32, 1), [{ name: 'center', x: 2, y: 2, mirrored: false }]);
  });

  it('normalizes (v · scale − mean[c]) / std[c] per channel', async () => {
    const pre: PreprocessContract = { ...RAW, scale: 1 / 255, mean: [0.5, 0.25, 0.1], std: [0.5, 0.25, 2] };
    const batch = makeCrops(await square(), pre, 1);
    const v = (x: number): number => Math.fround(x);
    assert.equal(at(batch, 0, 0, 3, 5), v((7 * 7 / 255 - 0.5) / 0.5));
    assert.equal(at(batch, 0, 1, 3, 5), v((5 * 7 / 255 - 0.25) / 0.25));
    assert.equal(at(batch, 0, 2, 3, 5), v((100 / 255 - 0.1) / 2));
  });

  it('reuses the caller buffer, as a view when it is longer', async () => {
    const sq = await square();
    const exact = new Float32Array(10 * 3 * 32 * 32);
    assert.equal(makeCrops(sq, RAW, 10, exact), exact);
    const big = new Float32Array(exact.length + 100);
    const view = makeCrops(sq, RAW, 1, big);
    assert.equal(view.buffer, big.buffer);
    assert.equal(view.length, 3 * 32 * 32);
    assert.throws(() => makeCrops(sq, RAW, 10, new Float32Array(10)), /'out' holds 10 floats/);
  });

  it('matches a direct per-pixel cut on a random square with an odd margin, grey and RGB', () => {
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    for (const channels of ['gray', 'rgb'] as const) {
      const nch = channels === 'gray' ? 1 : 3;
      const pre: PreprocessContract = { inputSize: 33, resizeSize: 40, channels, scale: 1 / 255, mean: [0.1, 0.2, 0.3].slice(0, nch), std: [0.5, 0.25, 2].slice(0, nch), background: [255, 255, 255] };
      const data = Uint8Array.from({ length: 40 * 40 * nch }, rand);
      const sq: DecodedSquare = { data, size: 40, channels: nch, order: channels, width: 40, height: 40, format: 'png' };
      const batch = makeCrops(sq, pre, 10);
      cropSpecs(40, 33, 10).forEach((spec, n) => {
        for (let c = 0; c < nch; c++) {
          for (let y = 0; y < 33; y++) {
            for (let x = 0; x < 33; x++) {
              const sx = spec.x + (spec.mirrored ? 32 - x : x);
              const v = data[((spec.y + y) * 40 + sx) * nch + c] ?? NaN;
              const want = Math.fround((v / 255 - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1));
              if (at(batch, n, c, y, x, nch, 33) !== want) assert.fail(`crop ${n} channel ${c} at (${x}, ${y}): ${at(batch, n, c, y, x, nch, 33)} vs ${want}`);
            }
          }
        }
      });
    }
  });

  it('refuses a square that does not fit the contract', async () => {
    const sq = await square();
    assert.throws(() => makeCrops(sq, { ...RAW, resizeSize: 40 }, 1), /decoded square is 36×36×3, the contract expects 40×40×3/);
  });
});
