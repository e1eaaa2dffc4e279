/**
 * Why an image that sniffed as a supported format failed to decode, worked out from the bytes
 * themselves. libvips keeps its error text in one process-wide buffer, so under concurrent decodes
 * the message sharp reports for the same bytes varies (often "Unknown error"); clients and tests
 * need the same answer for the same file, so this reason replaces libvips' text.
 */
import type { ImageFormat } from './formats.js';

function lastIndexOf(b: Uint8Array, sig: readonly number[], from: number): number {
  for (let i = b.length - sig.length; i >= from; i--) {
    let ok = true;
    for (let k = 0; k < sig.length && ok; k++) ok = b[i + k] === sig[k];
    if (ok) return i;
  }
  return -1;
}

/** Whether the file's own framing says it ends early (no end marker / shorter than it declares). */
export function isTruncated(format: ImageFormat, b: Uint8Array): boolean {
  // Cameras and editors may append bytes after the end marker: look for it near the end only.
  const tail = Math.max(0, b.length - 64 * 1024);
  switch (format) {
    case 'jpeg':
      return lastIndexOf(b, [0xff, 0xd9], tail) < 0;
    case 'png':
      return lastIndexOf(b, [0x49, 0x45, 0x4e, 0x44], tail) < 0; // IEND
    case 'gif':
      return lastIndexOf(b, [0x3b], Math.max(0, b.length - 16)) < 0; // trailer
    case 'webp':
      return b.length < 12 || Buffer.from(b.buffer, b.byteOffset, 8).readUInt32LE(4) + 8 > b.length;
    default:
      return false;
  }
}

/** A reason that depends only on the bytes: truncated, or corrupt in the header or the pixel data. */
export function damageReason(format: ImageFormat, b: Uint8Array, stage: 'header' | 'pixels'): string {
  if (isTruncated(format, b)) return `the file is truncated (its data ends after ${b.length} bytes, before the end of the image)`;
  return stage === 'header' ? 'the image header is corrupt' : 'the compressed pixel data is corrupt';
}
