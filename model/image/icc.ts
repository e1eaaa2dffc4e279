/**
 * Embedded ICC profiles whose conversion to sRGB is a no-op, so decoding can skip it.
 *
 * sharp converts every image that carries an ICC profile to sRGB with lcms before resizing. For a
 * profile that already *is* sRGB that costs CPU and changes nothing: on tests/fixtures/images/dog.jpg
 * (768×576, the Linotype sRGB profile that Photoshop and most cameras embed) it took 2.5 of 6.6 ms
 * CPU per decode to the bundled model's 32 px square, and 9 of 16 ms to the full model's 256 px
 * square, with byte-identical output. Only profiles listed here are skipped; any other profile
 * (Display P3, Adobe RGB, an sRGB variant not verified) is converted as before.
 *
 * Each entry was checked on all 2^24 RGB colours (tests/model/icc.test.ts repeats that against the
 * installed sharp/libvips): converting with the profile and ignoring it give values that differ by
 * at most 1 of 255 (lcms 8-bit rounding), on 142,622 of 50,331,648 channel values for the Linotype
 * profile and on none for libvips' own.
 */
import { createHash } from 'node:crypto';

/** SHA-256 of the profile bytes → what the profile is. */
export const SRGB_IDENTITY_PROFILES: ReadonlyMap<string, string> = new Map([
  // "sRGB IEC61966-2.1", 3,144 bytes, Linotype/HP: embedded by Photoshop, Lightroom and most cameras.
  ['2b3aa1645779a9e634744faf9b01e9102b0c9b88fd6deced7934df86b949af7e', 'sRGB IEC61966-2.1 (Linotype/HP, 3144 bytes)'],
  // libvips' built-in sRGB profile (480 bytes): what sharp and libvips attach with withIccProfile('srgb').
  ['c56e1685d888f5edb92fe07f2750f387f8fe8e91b32ff8fb0b56bfbbb9458353', 'libvips built-in sRGB (480 bytes)'],
]);

/** Whether converting an image tagged with `icc` to sRGB would leave its pixels as they are. */
export function isSrgbIdentityProfile(icc: Uint8Array | undefined): boolean {
  // Every listed profile is under 4 KB: hashing a large (e.g. CMYK LUT) profile is not worth it.
  if (icc === undefined || icc.length > 4096) return false;
  return SRGB_IDENTITY_PROFILES.has(createHash('sha256').update(icc).digest('hex'));
}
