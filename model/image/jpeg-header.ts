/**
 * A JPEG's header read in JS (size, EXIF orientation, ICC profile) and the same file without its
 * EXIF block, so that a JPEG is decoded in one sharp call instead of two.
 *
 * Why: libvips parses every EXIF tag into a string field of the image and copies those fields
 * through each operation of the pipeline. On tests/fixtures/images/dog.jpg (a 0.7 KB EXIF block
 * from a Canon camera) that cost about 1.3 of 6.3–7.2 ms CPU per decode to the bundled model's
 * 32 px square (AMD EPYC; libjpeg's own decode of that file at 1/8 scale takes 1.6 ms), and
 * sharp's metadata() pass over the header another ~0.4 ms. Pixels depend on the EXIF block only
 * through its orientation, which is kept as a one-tag block, so the decoded square is
 * byte-identical (tests/model/jpeg-header.test.ts).
 *
 * Only files read without doubt take this path: anything unexpected (a second EXIF block, an
 * orientation that is not a SHORT in 1..8, ICC chunks missing or repeated, a marker cut short, no frame
 * header before the first scan) returns undefined and the caller keeps sharp's own header pass.
 */
import { startsWith } from './formats.js';

export interface JpegHeader {
  /** As stored in the frame header (before orientation). */
  readonly width: number;
  readonly height: number;
  /** EXIF orientation 1–8 (1 without an EXIF block or without the tag). */
  readonly orientation: number;
  /** The embedded ICC profile (its APP2 chunks joined in sequence), if any. */
  readonly icc: Uint8Array | undefined;
  /** The file with its EXIF block replaced by a one-tag block holding the orientation (dropped when it is 1). */
  readonly lean: Buffer;
}

const EXIF_ID = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ICC_ID = [...Buffer.from('ICC_PROFILE', 'latin1'), 0];

/** Whether segment data [at, end) begins with `id`. */
function hasPrefix(b: Uint8Array, at: number, end: number, id: readonly number[]): boolean {
  return end - at >= id.length && startsWith(b, id, at);
}

function u16(b: Uint8Array, at: number, little: boolean): number {
  const x = b[at] ?? 0;
  const y = b[at + 1] ?? 0;
  return little ? x | (y << 8) : (x << 8) | y;
}

function u32(b: Uint8Array, at: number, little: boolean): number {
  return little ? (u16(b, at, true) + u16(b, at + 2, true) * 0x10000) : (u16(b, at, false) * 0x10000 + u16(b, at + 2, false));
}

/** SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
function isFrameHeader(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** Orientation from a TIFF structure at [t, end): 1 when IFD0 has no tag, undefined when unreadable. */
function exifOrientation(b: Uint8Array, t: number, end: number): number | undefined {
  if (end - t < 8) return undefined;
  const order = u16(b, t, false);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined;
  const little = order === 0x4949;
  if (u16(b, t + 2, little) !== 42) return undefined;
  const ifd = t + u32(b, t + 4, little);
  if (ifd + 2 > end) return undefined;
  const count = u16(b, ifd, little);
  if (ifd + 2 + count * 12 > end) return undefined;
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + k * 12;
    if (u16(b, e, little) !== 0x0112) continue;
    if (u16(b, e + 2, little) !== 3 || u32(b, e + 4, little) !== 1) return undefined;
    const v = u16(b, e + 8, little);
    return v >= 1 && v <= 8 ? v : undefined;
  }
  return 1;
}

/** An APP1 segment whose EXIF block holds only IFD0's orientation tag (big-endian TIFF). */
function orientationSegment(orientation: number): Buffer {
  const s = Buffer.alloc(36);
  s.writeUInt16BE(0xffe1, 0);
  s.writeUInt16BE(34, 2); // length: itself, "Exif\0\0", TIFF header, one-entry IFD
  Buffer.from(EXIF_ID).copy(s, 4);
  s.write('MM', 10, 'latin1');
  s.writeUInt16BE(42, 12);
  s.writeUInt32BE(8, 14); // IFD0 right after the TIFF header
  s.writeUInt16BE(1, 18);
  s.writeUInt16BE(0x0112, 20);
  s.writeUInt16BE(3, 22); // SHORT
  s.writeUInt32BE(1, 24);
  s.writeUInt16BE(orientation, 28);
  s.writeUInt32BE(0, 32); // no next IFD
  return s;
}

function joinIcc(chunks: Map<number, Uint8Array>, count: number): Uint8Array | undefined | null {
  if (chunks.size === 0) return undefined;
  if (chunks.size !== count) return null;
  // Nearly every profile is one chunk: hand it on without a copy.
  if (count === 1) return chunks.get(1) ?? null;
  const parts: Uint8Array[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const c = chunks.get(seq);
    if (c === undefined) return null;
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** Reads the markers before the first scan; undefined for anything this reader is not sure of. */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  const b = bytes;
  if (b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let width = 0;
  let height = 0;
  let exif: [number, number] | undefined;
  let orientation = 1;
  const icc = new Map<number, Uint8Array>();
  let iccCount = 0;
  let at = 2;
  for (;;) {
    if (at + 4 > b.length || b[at] !== 0xff) return undefined;
    const m = b[at + 1] ?? 0;
    if (m === 0xda) break;
    // Fill bytes, a second SOI, an early EOI or restart markers: not a header this reader trusts.
    if (m === 0xff || m === 0xd8 || m === 0xd9 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) return undefined;
    const end = at + 2 + u16(b, at + 2, false);
    if (end < at + 4 || end > b.length) return undefined;
    const body = at + 4;
    if (isFrameHeader(m)) {
      if (width !== 0 || end - body < 6) return undefined;
      height = u16(b, body + 1, false);
      width = u16(b, body + 3, false);
      if (width === 0 || height === 0) return undefined;
    } else if (m === 0xe1 && hasPrefix(b, body, end, EXIF_ID)) {
      if (exif !== undefined) return undefined;
      const o = exifOrientation(b, body + EXIF_ID.length, end);
      if (o === undefined) return undefined;
      exif = [at, end];
      orientation = o;
    } else if (m === 0xe2 && hasPrefix(b, body, end, ICC_ID)) {
      const seq = b[body + 12] ?? 0;
      const count = b[body + 13] ?? 0;
      if (seq < 1 || seq > count || icc.has(seq) || (iccCount !== 0 && count !== iccCount)) return undefined;
      iccCount = count;
      icc.set(seq, b.subarray(body + 14, end));
    }
    at = end;
  }
  if (width === 0) return undefined;
  const profile = joinIcc(icc, iccCount);
  if (profile === null) return undefined;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const lean = exif === undefined ? buf : Buffer.concat([buf.subarray(0, exif[0]), ...(orientation === 1 ? [] : [orientationSegment(orientation)]), buf.subarray(exif[1])]);
  return { width, height, orientation, icc: profile, lean };
}
