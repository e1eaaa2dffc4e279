/**
 * The hostile-input corpus of the fault suite, generated in code (sharp and hand-made bytes), so
 * nothing large is committed. Each kind says what it is and what the server must answer: the status
 * and error code, or success for the awkward-but-valid ones that must keep working.
 */
import sharp from 'sharp';
import { brokenJpeg, heicHeader, hugePngHeader, image } from '../server/helpers.js';

export interface ImageKind {
  name: string;
  bytes: Buffer;
  /** Content type of the raw-body request (multipart always sends the file as field 'image'). */
  type: string;
  /** Expected status and code; 'ok' = accepted (200, or 200/201 on POST /v1/images). */
  expect: 'ok' | { status: number; code: string };
}

const bad = (status: number, code: string) => ({ status, code });
const UNDECODABLE = bad(400, 'undecodable_image');
const UNSUPPORTED = bad(415, 'unsupported_media_type');

function ascii(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function withLength(head: Buffer, total: number, fill = 0): Buffer {
  return Buffer.concat([head, Buffer.alloc(Math.max(0, total - head.length), fill)]);
}

/** The first `n` bytes, or what is left after cutting the last `n` (n < 0). */
function cut(b: Buffer, n: number): Buffer {
  return n >= 0 ? b.subarray(0, n) : b.subarray(0, b.length + n);
}

/** A JPEG whose SOF0 header claims `w`×`h` (the rest is a tiny real JPEG). */
function jpegClaiming(jpeg: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2)) {
      out.writeUInt16BE(h, i + 5);
      out.writeUInt16BE(w, i + 7);
      return out;
    }
  }
  throw new Error('no SOF marker');
}

export async function imageKinds(bodyLimitBytes: number): Promise<ImageKind[]> {
  const gradient = Buffer.alloc(64 * 48 * 3);
  for (let i = 0; i < gradient.length; i++) gradient[i] = (i * 7) % 251;
  const raw = sharp(gradient, { raw: { width: 64, height: 48, channels: 3 } });
  const png = await raw.clone().png().toBuffer();
  const jpeg = await raw.clone().jpeg({ quality: 80 }).toBuffer();
  const gif = await raw.clone().gif().toBuffer();
  const webp = await raw.clone().webp().toBuffer();
  const tiff = await raw.clone().tiff().toBuffer();
  const dog = image('dog.jpg');
  const corruptPng = Buffer.from(png);
  corruptPng.fill(0x55, 60, corruptPng.length - 20);
  const corruptJpeg = Buffer.from(dog);
  corruptJpeg.fill(0xff, 2000, corruptJpeg.length - 2);
  const animated = await sharp({ create: { width: 20, height: 20 * 3, channels: 4, background: '#0a0' } })
    .gif()
    .toBuffer()
    .then((b) => sharp(b, { pages: -1 }).gif().toBuffer());

  const kinds: ImageKind[] = [
    { name: 'empty body', bytes: Buffer.alloc(0), type: 'image/png', expect: bad(400, 'missing_image') },
    { name: 'one byte', bytes: Buffer.from([0xff]), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'plain text', bytes: ascii('hello, this is not an image\n'), type: 'image/png', expect: UNDECODABLE },
    { name: 'HTML page', bytes: ascii('<!doctype html><html><body><img src=x onerror=alert(1)></body></html>'), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JSON text', bytes: ascii('{"image": "data:image/png;base64,iVBORw0KGgo="}'), type: 'image/png', expect: UNDECODABLE },
    { name: '1 KiB of zero bytes', bytes: Buffer.alloc(1024), type: 'image/png', expect: UNDECODABLE },
    { name: '1 KiB of random bytes', bytes: Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 2654435761) >>> 24)), type: 'application/octet-stream', expect: UNDECODABLE },
    { name: 'UTF-16 text', bytes: Buffer.from('\ufeffnot an image', 'utf16le'), type: 'image/png', expect: UNDECODABLE },
    { name: 'JPEG magic only', bytes: Buffer.from([0xff, 0xd8, 0xff]), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JPEG truncated at 2 KiB', bytes: brokenJpeg(), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JPEG truncated at 50 %', bytes: cut(dog, Math.floor(dog.length / 2)), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JPEG truncated by 10 bytes', bytes: cut(dog, -10), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JPEG with garbage pixel data', bytes: corruptJpeg, type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'JPEG claiming 65000×65000 (bomb)', bytes: jpegClaiming(jpeg, 65000, 65000), type: 'image/jpeg', expect: bad(413, 'image_too_large') },
    { name: 'JPEG claiming 0×0', bytes: jpegClaiming(jpeg, 0, 0), type: 'image/jpeg', expect: UNDECODABLE },
    { name: 'PNG signature only', bytes: cut(png, 8), type: 'image/png', expect: UNDECODABLE },
    { name: 'PNG truncated at 50 %', bytes: cut(png, Math.floor(png.length / 2)), type: 'image/png', expect: UNDECODABLE },
    // Only the IEND chunk missing: the pixels are complete and libvips decodes them, as it should.
    { name: 'PNG without IEND', bytes: cut(png, -12), type: 'image/png', expect: 'ok' },
    { name: 'PNG cut inside its last IDAT', bytes: cut(png, -40), type: 'image/png', expect: UNDECODABLE },
    { name: 'PNG with corrupt chunks', bytes: corruptPng, type: 'image/png', expect: UNDECODABLE },
    { name: 'PNG bomb 30000×30000', bytes: hugePngHeader(30000, 30000), type: 'image/png', expect: bad(413, 'image_too_large') },
    { name: 'PNG claiming 1000×1000, no pixel data', bytes: hugePngHeader(1000, 1000), type: 'image/png', expect: UNDECODABLE },
    { name: 'GIF header only', bytes: ascii('GIF89a'), type: 'image/gif', expect: UNDECODABLE },
    { name: 'GIF truncated at 50 %', bytes: cut(gif, Math.floor(gif.length / 2)), type: 'image/gif', expect: UNDECODABLE },
    { name: 'GIF polyglot (GIF header + script)', bytes: Buffer.concat([ascii('GIF89a/*'), ascii('*/=1;alert(document.domain);//')]), type: 'image/gif', expect: UNDECODABLE },
    { name: 'WebP RIFF header only', bytes: cut(webp, 16), type: 'image/webp', expect: UNDECODABLE },
    { name: 'WebP truncated at 50 %', bytes: cut(webp, Math.floor(webp.length / 2)), type: 'image/webp', expect: UNDECODABLE },
    { name: 'TIFF header only', bytes: cut(tiff, 8), type: 'image/tiff', expect: UNDECODABLE },
    { name: 'AVIF ftyp box only', bytes: withLength(Buffer.concat([Buffer.from([0, 0, 0, 0x18]), ascii('ftypavif'), Buffer.alloc(4), ascii('avifmif1')]), 64), type: 'image/avif', expect: UNDECODABLE },
    { name: 'HEIC (iPhone)', bytes: heicHeader(), type: 'image/heic', expect: UNSUPPORTED },
    { name: 'HEIF (mif1 only)', bytes: withLength(Buffer.concat([Buffer.from([0, 0, 0, 0x14]), ascii('ftypmif1'), Buffer.alloc(4), ascii('mif1')]), 64), type: 'image/heif', expect: UNSUPPORTED },
    { name: 'MP4 video', bytes: withLength(Buffer.concat([Buffer.from([0, 0, 0, 0x18]), ascii('ftypisom'), Buffer.alloc(4), ascii('isomiso2')]), 64), type: 'video/mp4', expect: UNSUPPORTED },
    { name: 'PDF document', bytes: ascii('%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n'), type: 'application/pdf', expect: UNSUPPORTED },
    { name: 'BMP', bytes: withLength(Buffer.concat([ascii('BM'), Buffer.alloc(12), Buffer.from([40, 0, 0, 0])]), 80), type: 'image/bmp', expect: UNSUPPORTED },
    { name: 'PSD', bytes: withLength(ascii('8BPS'), 64), type: 'image/vnd.adobe.photoshop', expect: UNSUPPORTED },
    { name: 'ICO', bytes: withLength(Buffer.from([0, 0, 1, 0, 1, 0, 16, 16]), 64), type: 'image/x-icon', expect: UNSUPPORTED },
    { name: 'JPEG XL', bytes: withLength(Buffer.from([0xff, 0x0a]), 64), type: 'image/jxl', expect: UNSUPPORTED },
    { name: 'JPEG 2000', bytes: withLength(Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]), 64), type: 'image/jp2', expect: UNSUPPORTED },
    { name: 'SVG', bytes: ascii('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), type: 'image/svg+xml', expect: UNSUPPORTED },
    { name: 'SVG with XML prolog', bytes: ascii('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'), type: 'image/svg+xml', expect: UNSUPPORTED },
    { name: 'SVG with BOM, comment and DOCTYPE', bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ascii('<?xml version="1.0"?><!-- x --><!DOCTYPE svg [<!ENTITY lol "lol">]><svg>&lol;</svg>')]), type: 'image/svg+xml', expect: UNSUPPORTED },
    { name: 'over the body limit', bytes: Buffer.concat([png, Buffer.alloc(bodyLimitBytes + 1024)]), type: 'image/png', expect: bad(413, 'payload_too_large') },
    // Awkward but valid: these must keep working.
    { name: 'valid PNG with a ZIP appended (polyglot)', bytes: Buffer.concat([png, ascii('PK\u0003\u0004'), Buffer.alloc(200, 7)]), type: 'image/png', expect: 'ok' },
    { name: 'valid JPEG sent as image/png', bytes: jpeg, type: 'image/png', expect: 'ok' },
    { name: 'valid 1×1 PNG', bytes: await sharp({ create: { width: 1, height: 1, channels: 3, background: '#f00' } }).png().toBuffer(), type: 'image/png', expect: 'ok' },
    { name: 'valid 4000×1 PNG strip', bytes: await sharp({ create: { width: 4000, height: 1, channels: 3, background: '#888' } }).png().toBuffer(), type: 'image/png', expect: 'ok' },
    { name: 'valid 16-bit RGBA PNG', bytes: await raw.clone().ensureAlpha().png().toColourspace('rgb16').toBuffer(), type: 'image/png', expect: 'ok' },
    { name: 'valid CMYK JPEG', bytes: await raw.clone().toColourspace('cmyk').jpeg().toBuffer(), type: 'image/jpeg', expect: 'ok' },
    { name: 'valid animated GIF', bytes: animated, type: 'image/gif', expect: 'ok' },
    { name: 'valid TIFF', bytes: tiff, type: 'image/tiff', expect: 'ok' },
    { name: 'valid WebP', bytes: webp, type: 'image/webp', expect: 'ok' },
  ];
  return kinds;
}
