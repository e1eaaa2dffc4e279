import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { PreprocessContract } from '../../model/contract.js';
import { decodeImage, isSrgbIdentityProfile, SRGB_IDENTITY_PROFILES } from '../../model/preprocess.js';

const LIMITS = { maxPixels: 40_000_000 };
const PHOTOS = ['dog.jpg', 'eagle.jpg', 'horses.jpg', 'person.jpg'];
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The bundled model's contract (32 px grey square) and the full model's (256 px RGB square). */
const GRAY: PreprocessContract = { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1 / 255, mean: [0.286], std: [0.353], background: [255, 255, 255] };
const RGB: PreprocessContract = { inputSize: 224, resizeSize: 256, channels: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], background: [255, 255, 255] };

/** The profile sharp/libvips attaches for `withIccProfile(name)`. */
async function builtinProfile(name: 'srgb' | 'p3'): Promise<Buffer> {
  const png = await sharp(Buffer.alloc(12), { raw: { width: 2, height: 2, channels: 3 } }).withIccProfile(name).png().toBuffer();
  const icc = (await sharp(png).metadata()).icc;
  assert.ok(icc, `sharp attached no '${name}' profile`);
  return icc;
}

/** `png` with an iCCP chunk carrying `icc` right after IHDR (where PNG requires it). */
function withIccChunk(png: Buffer, icc: Buffer): Buffer {
  const data = Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  const ihdrEnd = 8 + 12 + 13;
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}

/** A 4096×4096 PNG holding every 8-bit RGB colour once, tagged with `icc`. */
async function allColours(icc: Buffer): Promise<Buffer> {
  const px = Buffer.alloc(4096 * 4096 * 3);
  for (let i = 0; i < 4096 * 4096; i++) {
    px[3 * i] = i >> 16;
    px[3 * i + 1] = (i >> 8) & 255;
    px[3 * i + 2] = i & 255;
  }
  const png = await sharp(px, { raw: { width: 4096, height: 4096, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  return withIccChunk(png, icc);
}

/** Largest per-channel difference between converting with the embedded profile and ignoring it. */
async function conversionDelta(tagged: Buffer): Promise<{ max: number; changed: number }> {
  const converted = await sharp(tagged, { limitInputPixels: false }).raw().toBuffer();
  const ignored = await sharp(tagged, { limitInputPixels: false, ignoreIcc: true }).raw().toBuffer();
  let max = 0;
  let changed = 0;
  for (let i = 0; i < converted.length; i++) {
    const d = Math.abs((converted[i] ?? 0) - (ignored[i] ?? 0));
    if (d > 0) changed++;
    if (d > max) max = d;
  }
  return { max, changed };
}

/** decode.ts's pipeline with the profile always converted (what it did before icc.ts). */
async function convertedSquare(bytes: Buffer, pre: PreprocessContract): Promise<Buffer> {
  const s = pre.resizeSize;
  return sharp(bytes, { autoOrient: true })
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .resize(s, s, { fit: 'cover', position: 'centre' })
    .toColourspace(pre.channels === 'gray' ? 'b-w' : 'srgb')
    .raw()
    .toBuffer();
}

describe('sRGB profiles skipped at decode', () => {
  it('lists exactly the fixture photos’ Linotype sRGB profile and libvips’ own', async () => {
    const lino = (await sharp(fixture('dog.jpg')).metadata()).icc;
    assert.ok(lino);
    const known = [sha256(lino), sha256(await builtinProfile('srgb'))];
    assert.deepEqual([...SRGB_IDENTITY_PROFILES.keys()].sort(), known.sort());
    assert.ok(isSrgbIdentityProfile(lino));
    assert.equal(isSrgbIdentityProfile(await builtinProfile('p3')), false);
    assert.equal(isSrgbIdentityProfile(undefined), false);
  });

  it('each listed profile converts all 2^24 colours to themselves within 1 of 255; Display P3 does not', async () => {
    const lino = (await sharp(fixture('dog.jpg')).metadata()).icc;
    assert.ok(lino);
    for (const icc of [lino, await builtinProfile('srgb')]) {
      const { max, changed } = await conversionDelta(await allColours(icc));
      assert.ok(max <= 1, `profile ${sha256(icc).slice(0, 12)}: a colour moved by ${max}`);
      assert.ok(changed < 0.005 * 4096 * 4096 * 3, `profile ${sha256(icc).slice(0, 12)}: ${changed} values moved`);
    }
    // The check can fail: a wide-gamut profile moves colours a lot.
    assert.ok((await conversionDelta(await allColours(await builtinProfile('p3')))).max > 50);
  });

  it('decodes the fixture photos to the same squares as with the conversion', async () => {
    for (const name of PHOTOS) {
      const bytes = fixture(name);
      assert.ok(isSrgbIdentityProfile((await sharp(bytes).metadata()).icc), `${name} should carry the Linotype sRGB profile`);
      for (const pre of [GRAY, RGB]) {
        const sq = await decodeImage(bytes, pre, LIMITS);
        assert.ok(Buffer.from(sq.data).equals(await convertedSquare(bytes, pre)), `${name} ${pre.channels} ${pre.resizeSize}`);
      }
    }
  });

  it('still converts an image tagged with another profile', async () => {
    const red = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ff2010' } }).withIccProfile('p3').jpeg({ quality: 95 }).toBuffer();
    const sq = await decodeImage(red, RGB, LIMITS);
    assert.ok(Buffer.from(sq.data).equals(await convertedSquare(red, RGB)));
    const ignored = await sharp(red, { ignoreIcc: true }).resize(256, 256, { fit: 'cover' }).raw().toBuffer();
    assert.equal(Buffer.from(sq.data).equals(ignored), false, 'the P3 profile was ignored');
  });
});
