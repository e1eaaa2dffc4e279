/**
 * One sharp pipeline per image: decode (with JPEG shrink-on-load), EXIF orientation, alpha
 * flattening, colour conversion, shorter side → resizeSize and a centered resizeSize² square.
 * Crops are then cut from that square in JS (crops.ts), so an image is decoded exactly once (the
 * header is read once before, for the size limit, the orientation and the ICC profile: in JS for
 * JPEGs, jpeg-header.ts, by sharp for other formats).
 */
import sharp from 'sharp';
import type { SharpOptions } from 'sharp';
import type { PreprocessContract } from '../contract.js';
import { ImageTooLargeError, UndecodableImageError, UnsupportedMediaError } from '../errors.js';
import { damageReason } from './damage.js';
import type { ImageFormat } from './formats.js';
import { sniffFormat } from './formats.js';
import { isSrgbIdentityProfile } from './icc.js';
import { readJpegHeader } from './jpeg-header.js';

export interface DecodeLimits {
  /** Largest accepted width × height of the encoded image, checked from its header before decoding. */
  readonly maxPixels: number;
}

/** The resizeSize × resizeSize square, uint8 HWC, in the contract's channel order. */
export interface DecodedSquare {
  readonly data: Uint8Array;
  readonly size: number;
  readonly channels: 1 | 3;
  readonly order: PreprocessContract['channels'];
  /** Size of the original image after EXIF orientation. */
  readonly width: number;
  readonly height: number;
  readonly format: ImageFormat;
}

// 'error' rejects corrupt pixel data but tolerates libvips warnings such as trailing bytes after
// the JPEG end marker, which many cameras and editors produce.
const FAIL_ON = 'error' as const;

function isPixelLimit(err: unknown): boolean {
  return err instanceof Error && /exceeds pixel limit/i.test(err.message);
}

/** Re-reads the header without a limit, only to report the real size in the error. */
async function tooLarge(bytes: Buffer, maxPixels: number): Promise<ImageTooLargeError> {
  const m = await sharp(bytes, { limitInputPixels: false, failOn: 'none' }).metadata().catch(() => undefined);
  return new ImageTooLargeError(m?.width ?? 0, m?.height ?? 0, maxPixels);
}

function checkLimits(limits: DecodeLimits): void {
  if (!Number.isInteger(limits.maxPixels) || limits.maxPixels < 1) {
    throw new RangeError(`'maxPixels' must be a positive integer, got ${String(limits.maxPixels)}`);
  }
}

interface Header {
  /** What sharp decodes: the file itself, or for a JPEG read here, the file without its EXIF block. */
  input: Buffer;
  /** Size after EXIF orientation. */
  width: number;
  height: number;
  /** An sRGB profile's conversion to sRGB changes no pixel but costs lcms time (icc.ts). */
  ignoreIcc: boolean;
}

/** A JPEG's header is read here when it can be (jpeg-header.ts); other files by sharp. */
async function readHeader(bytes: Buffer, format: ImageFormat, label: string, limits: DecodeLimits, options: SharpOptions): Promise<Header> {
  const jpeg = format === 'jpeg' ? readJpegHeader(bytes) : undefined;
  if (jpeg) {
    if (jpeg.width * jpeg.height > limits.maxPixels) throw new ImageTooLargeError(jpeg.width, jpeg.height, limits.maxPixels);
    const turned = jpeg.orientation >= 5; // orientations 5–8 swap the axes
    return { input: jpeg.lean, width: turned ? jpeg.height : jpeg.width, height: turned ? jpeg.width : jpeg.height, ignoreIcc: isSrgbIdentityProfile(jpeg.icc) };
  }
  try {
    const meta = await sharp(bytes, options).metadata();
    return { input: bytes, width: meta.autoOrient.width, height: meta.autoOrient.height, ignoreIcc: isSrgbIdentityProfile(meta.icc) };
  } catch (err) {
    if (isPixelLimit(err)) throw await tooLarge(bytes, limits.maxPixels);
    throw new UndecodableImageError(label, damageReason(format, bytes, 'header'));
  }
}

export async function decodeImage(bytes: Buffer, pre: PreprocessContract, limits: DecodeLimits): Promise<DecodedSquare> {
  checkLimits(limits);
  const sniffed = sniffFormat(bytes);
  if (sniffed.kind === 'unsupported') throw new UnsupportedMediaError(sniffed.label, sniffed.reason);
  if (sniffed.kind === 'unknown') throw new UndecodableImageError(sniffed.label, sniffed.reason);
  const { format, label } = sniffed;

  const options = { failOn: FAIL_ON, limitInputPixels: limits.maxPixels, autoOrient: true, sequentialRead: true };
  const { input, width, height, ignoreIcc } = await readHeader(bytes, format, label, limits, options);

  const [r, g, b] = pre.background;
  const gray = pre.channels === 'gray';
  const size = pre.resizeSize;
  let pipeline = sharp(input, { ...options, ignoreIcc })
    .flatten({ background: { r, g, b } })
    // fit 'cover' = shorter side to `size`, then the centered size×size square: the paper's
    // "rescale the shorter side, crop the central patch" in one libvips operation.
    .resize(size, size, { fit: 'cover', position: 'centre' });
  pipeline = gray ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const out = await pipeline
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
    .catch(async (err: unknown) => {
      throw isPixelLimit(err) ? await tooLarge(bytes, limits.maxPixels) : new UndecodableImageError(label, damageReason(format, bytes, 'pixels'));
    });
  const channels = gray ? 1 : 3;
  if (out.info.channels !== channels || out.info.width !== size || out.info.height !== size) {
    throw new UndecodableImageError(label, `decoder returned ${out.info.width}×${out.info.height}×${out.info.channels}, expected ${size}×${size}×${channels}`);
  }
  const data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length);
  if (pre.channels === 'bgr') swapRedBlue(data);
  return { data, size, channels, order: pre.channels, width, height, format };
}

/** In-place RGB → BGR on an HWC uint8 buffer. */
export function swapRedBlue(hwc: Uint8Array): void {
  for (let i = 0; i + 2 < hwc.length; i += 3) {
    const t = hwc[i] ?? 0;
    hwc[i] = hwc[i + 2] ?? 0;
    hwc[i + 2] = t;
  }
}
