/**
 * Typed errors raised by preprocessing, the session and classification. Each carries a `kind`
 * (what went wrong for the caller; server/errors.ts alone turns kinds into HTTP statuses) and a
 * stable, specific `code`; the CLI prints their message as is.
 */

/** The kinds of model/ errors (a subset of server/errors.ts's ErrorKind, checked there). */
export type ModelErrorKind = 'invalid_argument' | 'too_large' | 'unsupported' | 'unavailable' | 'internal';

export abstract class ModelError extends Error {
  abstract readonly kind: ModelErrorKind;
  abstract readonly code: string;
}

/** The image has more pixels than the configured limit (decompression-bomb guard). */
export class ImageTooLargeError extends ModelError {
  override readonly name = 'ImageTooLargeError';
  readonly kind = 'too_large';
  readonly code = 'image_too_large';
  constructor(
    readonly width: number,
    readonly height: number,
    readonly maxPixels: number,
  ) {
    const pixels = width * height;
    super(`image is ${width}×${height} = ${pixels} pixels, over the limit of ${maxPixels} pixels ('maxPixels')`);
  }
}

/** The bytes look like a format we accept (or like nothing known) but cannot be decoded. */
export class UndecodableImageError extends ModelError {
  override readonly name = 'UndecodableImageError';
  readonly kind = 'invalid_argument';
  readonly code = 'undecodable_image';
  constructor(
    readonly detectedType: string,
    reason: string,
  ) {
    super(`could not decode the ${detectedType} image: ${reason}`);
  }
}

/** A recognised format that this build cannot or will not decode (HEIC, PDF, BMP, ...). */
export class UnsupportedMediaError extends ModelError {
  override readonly name = 'UnsupportedMediaError';
  readonly kind = 'unsupported';
  readonly code = 'unsupported_media_type';
  constructor(
    readonly detectedType: string,
    reason: string,
  ) {
    super(`${detectedType} images are not supported: ${reason}`);
  }
}

/** A caller-supplied option is out of range; the message names the option and the value. */
export class InvalidOptionError extends ModelError {
  override readonly name = 'InvalidOptionError';
  readonly kind = 'invalid_argument';
  readonly code = 'invalid_argument';
}

/** The model file is missing or unreadable. */
export class ModelLoadError extends ModelError {
  override readonly name = 'ModelLoadError';
  readonly kind = 'unavailable';
  readonly code = 'model_unavailable';
}

/** Validates an integer option; used by classification and the CLI so messages read the same. */
export function checkIntOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`'${name}' must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/** Validates the crop count: the paper's 10-crop or the single center crop. */
export function checkCrops(value: number): 1 | 10 {
  if (value !== 1 && value !== 10) throw new InvalidOptionError(`'crops' must be 1 or 10, got ${String(value)}`);
  return value;
}
