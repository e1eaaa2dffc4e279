import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { PreprocessContract } from '../../model/contract.js';
import { ImageTooLargeError } from '../../model/errors.js';
import { decodeImage, isSrgbIdentityProfile, readJpegHeader } from '../../model/preprocess.js';

const LIMITS = { maxPixels: 40_000_000 };
const PHOTOS = ['dog.jpg', 'eagle.jpg', 'horses.jpg', 'person.jpg'];
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url));
const RGB: PreprocessContract = { inputSize: 32, resizeSize: 36, channels: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], background: [0, 0, 0] };
const GRAY: PreprocessContract = { ...RGB, channels: 'gray', mean: [0], std: [1], inputSize: 28, resizeSize: 32 };

/** What sharp makes of the original file with its own header pass (the path every non-JPEG takes). */
async function sharpSquare(bytes: Buffer, pre: PreprocessContract): Promise<Buffer> {
  const meta = await sharp(bytes).metadata();
  const ignoreIcc = isSrgbIdentityProfile(meta.icc);
  const p = sharp(bytes, { autoOrient: true, ignoreIcc }).flatten({ background: { r: 0, g: 0, b: 0 } }).resize(pre.resizeSize, pre.resizeSize, { fit: 'cover', position: 'centre' });
  return (pre.channels === 'gray' ? p.toColourspace('b-w') : p.toColourspace('srgb')).raw({ depth: 'uchar' }).toBuffer();
}

/** 60×40, four coloured quadrants and a gradient: every orientation gives a different square. */
async function asymmetricJpeg(orientation: number): Promise<Buffer> {
  const raw = Buffer.alloc(60 * 40 * 3);
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 60; x++) raw.set([x < 30 ? 250 : 20, y < 20 ? 240 : 30, (x * 4 + y * 2) % 256], (y * 60 + x) * 3);
  }
  return sharp(raw, { raw: { width: 60, height: 40, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer();
}

/** Markers of a JPEG up to the first scan, as [marker, start, end). */
function segments(b: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let at = 2; b[at + 1] !== 0xda; ) {
    const end = at + 2 + b.readUInt16BE(at + 2);
    out.push([b[at + 1] ?? 0, at, end]);
    at = end;
  }
  return out;
}

function app(marker: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(0xff00 | marker, 0);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

/** A little-endian ("II") EXIF block whose IFD0 holds a make tag and the orientation. */
function littleEndianExif(orientation: number): Buffer {
  const t = Buffer.alloc(8 + 2 + 2 * 12 + 4 + 8);
  t.write('II', 0, 'latin1');
  t.writeUInt16LE(42, 2);
  t.writeUInt32LE(8, 4);
  t.writeUInt16LE(2, 8);
  t.writeUInt16LE(0x010f, 10); // Make, ASCII, 6 bytes at offset 38
  t.writeUInt16LE(2, 12);
  t.writeUInt32LE(6, 14);
  t.writeUInt32LE(38, 18);
  t.writeUInt16LE(0x0112, 22);
  t.writeUInt16LE(3, 24);
  t.writeUInt32LE(1, 26);
  t.writeUInt16LE(orientation, 30);
  t.write('Canon\0', 38, 'latin1');
  return app(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), t]));
}

/** `b` with its EXIF block replaced by `segs` (inserted where the EXIF block was, or after SOI). */
function withSegments(b: Buffer, segs: Buffer[]): Buffer {
  const exif = segments(b).find(([m, s]) => m === 0xe1 && b.subarray(s + 4, s + 10).toString('latin1') === 'Exif\0\0');
  const [from, to] = exif ? [exif[1], exif[2]] : [2, 2];
  return Buffer.concat([b.subarray(0, from), ...segs, b.subarray(to)]);
}

describe('JPEG header read in JS', () => {
  it('reads the fixture photos as sharp does and decodes them to the same squares', async () => {
    for (const name of PHOTOS) {
      const bytes = fixture(name);
      const h = readJpegHeader(bytes);
      assert.ok(h, `${name}: header not read`);
      const meta = await sharp(bytes).metadata();
      assert.deepEqual([h.width, h.height, h.orientation], [meta.width, meta.height, meta.orientation ?? 1], name);
      assert.deepEqual(h.icc, meta.icc, `${name}: ICC profile`);
      const exifLength = segments(bytes).find(([m, s]) => m === 0xe1 && bytes.subarray(s + 4, s + 10).toString('latin1') === 'Exif\0\0');
      assert.ok(exifLength, `${name} has an EXIF block`);
      assert.equal(h.lean.length, bytes.length - (exifLength[2] - exifLength[1]), `${name}: only the EXIF block is dropped`);
      for (const pre of [RGB, GRAY]) {
        const sq = await decodeImage(bytes, pre, LIMITS);
        assert.deepEqual([sq.width, sq.height], [meta.width, meta.height]);
        assert.ok(Buffer.from(sq.data).equals(await sharpSquare(bytes, pre)), `${name} ${pre.channels}: square differs from sharp's own header pass`);
      }
    }
  });

  it('keeps every EXIF orientation: the same square and displayed size as sharp auto-orienting', async () => {
    for (let o = 1; o <= 8; o++) {
      const bytes = await asymmetricJpeg(o);
      const h = readJpegHeader(bytes);
      assert.equal(h?.orientation, o);
      const sq = await decodeImage(bytes, RGB, LIMITS);
      assert.deepEqual([sq.width, sq.height], o >= 5 ? [40, 60] : [60, 40], `orientation ${o}`);
      assert.ok(Buffer.from(sq.data).equals(await sharpSquare(bytes, RGB)), `orientation ${o}: square differs from sharp's`);
    }
    // The squares of the eight orientations are all different, so the comparison above can fail.
    const squares = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(async (o) => Buffer.from((await decodeImage(await asymmetricJpeg(o), RGB, LIMITS)).data).toString('hex')));
    assert.equal(new Set(squares).size, 8);
  });

  it('reads a little-endian EXIF block', async () => {
    const base = await asymmetricJpeg(1);
    const bytes = withSegments(base, [littleEndianExif(6)]);
    assert.equal(readJpegHeader(bytes)?.orientation, 6);
    assert.equal((await sharp(bytes).metadata()).orientation, 6, 'sharp reads the hand-made block the same way');
    assert.ok(Buffer.from((await decodeImage(bytes, RGB, LIMITS)).data).equals(await sharpSquare(bytes, RGB)));
  });

  it('joins an ICC profile split over APP2 chunks in sequence order', async () => {
    const dog = fixture('dog.jpg');
    const profile = (await sharp(dog).metadata()).icc;
    assert.ok(profile);
    const chunk = (seq: number, part: Buffer): Buffer => app(0xe2, Buffer.concat([Buffer.from('ICC_PROFILE\0', 'latin1'), Buffer.from([seq, 2]), part]));
    const cut = 1000;
    const [iccStart, iccEnd] = (segments(dog).find(([m]) => m === 0xe2) ?? [0, 0, 0]).slice(1);
    const split = Buffer.concat([dog.subarray(0, iccStart), chunk(2, profile.subarray(cut)), chunk(1, profile.subarray(0, cut)), dog.subarray(iccEnd)]);
    assert.deepEqual(readJpegHeader(split)?.icc, profile);
    assert.deepEqual((await sharp(split).metadata()).icc, profile, 'libvips joins the chunks the same way');
    const missing = Buffer.concat([dog.subarray(0, iccStart), chunk(2, profile.subarray(cut)), dog.subarray(iccEnd)]);
    assert.equal(readJpegHeader(missing), undefined, 'a profile with a chunk missing is left to sharp');
  });

  it('leaves to sharp what it is not sure of, and those files still decode', async () => {
    const base = await asymmetricJpeg(3);
    const exif = segments(base).find(([m]) => m === 0xe1);
    assert.ok(exif);
    const exifBlock = base.subarray(exif[1], exif[2]);
    const cases: [string, Buffer][] = [
      ['two EXIF blocks', withSegments(base, [exifBlock, exifBlock])],
      ['orientation 9', withSegments(base, [littleEndianExif(9)])],
      ['orientation 0', withSegments(base, [littleEndianExif(0)])],
    ];
    for (const [what, bytes] of cases) {
      assert.equal(readJpegHeader(bytes), undefined, what);
      const sq = await decodeImage(bytes, RGB, LIMITS);
      assert.ok(Buffer.from(sq.data).equals(await sharpSquare(bytes, RGB)), `${what}: decoded by sharp's own header pass`);
    }
    assert.equal(readJpegHeader(base.subarray(0, exif[1] + 10)), undefined, 'a header cut short');
    const sof = segments(base).find(([m]) => m === 0xc0);
    assert.ok(sof);
    assert.equal(readJpegHeader(Buffer.concat([base.subarray(0, sof[1]), base.subarray(sof[2])])), undefined, 'no frame header');
    assert.equal(readJpegHeader(fixture('dog.jpg').subarray(1)), undefined, 'no SOI');
  });

  it('refuses an image over the pixel limit from the frame header, with its stored size', async () => {
    const bytes = fixture('dog.jpg');
    await assert.rejects(decodeImage(bytes, RGB, { maxPixels: 768 * 576 - 1 }), (err: unknown) => {
      assert.ok(err instanceof ImageTooLargeError);
      assert.match(err.message, /768×576/);
      return true;
    });
    const sq = await decodeImage(bytes, RGB, { maxPixels: 768 * 576 });
    assert.equal(sq.width, 768);
  });
});
