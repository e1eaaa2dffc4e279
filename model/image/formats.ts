/**
 * Format sniffing from magic bytes, before libvips sees the data. It lets us refuse formats the
 * prebuilt sharp cannot decode (HEIC needs an HEVC decoder that is not shipped) with a message a
 * user can act on, instead of libvips' generic "unsupported image format".
 */

/** Formats the prebuilt sharp decodes and that we accept. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export type Sniffed =
  | { readonly kind: 'supported'; readonly format: ImageFormat; readonly label: string }
  | { readonly kind: 'unsupported'; readonly label: string; readonly reason: string }
  | { readonly kind: 'unknown'; readonly label: string; readonly reason: string };

const CONVERT = 'convert to JPEG or PNG';

const LABELS: Record<ImageFormat, string> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', gif: 'GIF', tiff: 'TIFF', avif: 'AVIF' };

/** Whether `sig` is at `at` in `b` (false when `b` ends first). */
export function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  return sig.every((v, i) => b[at + i] === v);
}

function ascii(b: Uint8Array, from: number, to: number): string {
  if (from >= b.length) return '';
  return Buffer.from(b.buffer, b.byteOffset + from, Math.max(0, Math.min(to, b.length) - from)).toString('latin1');
}

function supported(format: ImageFormat): Sniffed {
  return { kind: 'supported', format, label: LABELS[format] };
}

function unsupported(label: string, reason: string): Sniffed {
  return { kind: 'unsupported', label, reason };
}

const HEVC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs']);

/** ISO base media files (HEIF family, MP4, MOV, JPEG XL container) carry an 'ftyp' box at offset 4. */
function sniffFtyp(b: Uint8Array): Sniffed {
  const size = Math.min(b.length, Math.max(16, (((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0)) >>> 0));
  const brands = [ascii(b, 8, 12)];
  for (let at = 16; at + 4 <= size; at += 4) brands.push(ascii(b, at, at + 4));
  if (brands.includes('avif') || brands.includes('avis')) return supported('avif');
  if (brands.some((x) => HEVC_BRANDS.has(x))) {
    return unsupported('HEIC', `the prebuilt sharp (libvips) cannot decode HEIC (HEVC-coded HEIF); ${CONVERT}`);
  }
  if (brands.includes('mif1') || brands.includes('msf1')) {
    return unsupported('HEIF', `only AVIF-coded HEIF can be decoded by the prebuilt sharp (libvips); ${CONVERT}`);
  }
  if (brands.includes('jxl ')) return unsupported('JPEG XL', `the prebuilt sharp (libvips) has no JPEG XL decoder; ${CONVERT}`);
  if (brands.includes('crx ')) return unsupported('Canon RAW', `camera RAW files cannot be decoded; ${CONVERT}`);
  return unsupported('MP4/QuickTime video', `send a still image; ${CONVERT}`);
}

/**
 * Whether the text is an SVG document: optional UTF-8 byte-order mark (read as latin1: ï»¿), XML
 * declaration, then any comments, processing instructions and a DOCTYPE (with an internal subset)
 * before the <svg> root. A linear scan, not a regex: nested lazy quantifiers backtrack
 * exponentially on hostile input such as hundreds of comments followed by junk.
 */
function isSvg(text: string): boolean {
  let at = text.startsWith('\u00ef\u00bb\u00bf') ? 3 : 0;
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at] as string)) at++;
  };
  const skipPast = (end: string): boolean => {
    const i = text.indexOf(end, at);
    if (i < 0) return false;
    at = i + end.length;
    return true;
  };
  for (;;) {
    skipSpace();
    const rest = text.slice(at, at + 9);
    if (/^<svg[\s>/]/i.test(rest)) return true;
    let ok: boolean;
    if (rest.startsWith('<?')) ok = skipPast('?>');
    else if (rest.startsWith('<!--')) ok = skipPast('-->');
    else if (rest.toUpperCase() === '<!DOCTYPE') {
      const close = text.indexOf('>', at);
      const subset = text.indexOf('[', at);
      ok = subset >= 0 && (close < 0 || subset < close) ? skipPast(']') && skipPast('>') : skipPast('>');
    } else return false;
    if (!ok) return false;
  }
}

/** Identifies the container/codec from the first bytes; never throws. */
export function sniffFormat(b: Uint8Array): Sniffed {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return supported('jpeg');
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return supported('png');
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return supported('gif');
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return supported('webp');
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return supported('tiff');
  if (ascii(b, 4, 8) === 'ftyp') return sniffFtyp(b);
  if (ascii(b, 0, 5) === '%PDF-') return unsupported('PDF', `documents are not rasterised; ${CONVERT}`);
  if (ascii(b, 0, 2) === 'BM' && b.length > 18 && [12, 40, 52, 56, 108, 124].includes(b[14] ?? 0)) {
    return unsupported('BMP', `the prebuilt sharp (libvips) has no BMP decoder; ${CONVERT}`);
  }
  if (ascii(b, 0, 4) === '8BPS') return unsupported('PSD', `Photoshop documents cannot be decoded; ${CONVERT}`);
  if (startsWith(b, [0xff, 0x0a])) return unsupported('JPEG XL', `the prebuilt sharp (libvips) has no JPEG XL decoder; ${CONVERT}`);
  if (startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return unsupported('JPEG XL', `the prebuilt sharp (libvips) has no JPEG XL decoder; ${CONVERT}`);
  }
  if (startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(b, [0xff, 0x4f, 0xff, 0x51])) {
    return unsupported('JPEG 2000', `the prebuilt sharp (libvips) has no JPEG 2000 decoder; ${CONVERT}`);
  }
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00]) && b.length > 6 && (b[4] ?? 0) > 0) return unsupported('ICO', CONVERT);
  if (isSvg(ascii(b, 0, 4096))) {
    // librsvg would rasterise it, but a vector drawing has no natural size and is not a photo.
    return unsupported('SVG', `vector images are not rasterised by the server; ${CONVERT}`);
  }
  if (b.length === 0) return { kind: 'unknown', label: 'empty', reason: 'no bytes were received' };
  const head = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  return { kind: 'unknown', label: 'unrecognised', reason: `the data is not JPEG, PNG, WebP, GIF, TIFF or AVIF (first bytes ${head})` };
}
