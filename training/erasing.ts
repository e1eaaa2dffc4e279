/**
 * Random erasing (Zhong et al., "Random Erasing Data Augmentation", 2017; the augmentation of
 * their WRN results): with probability p, one rectangle of the training crop is overwritten with
 * random pixel values (their RE-R variant, the best of their fill choices). The rectangle's area is
 * uniform in [2 %, 40 %] of the crop and its aspect ratio (height / width) uniform in
 * [0.3, 1 / 0.3], as in the paper; a draw that does not fit inside the crop is redrawn, at most
 * MAX_ATTEMPTS times (then the image stays whole), as in the authors' code.
 */

export const ERASE_MIN_AREA = 0.02;
export const ERASE_MAX_AREA = 0.4;
export const ERASE_MIN_ASPECT = 0.3;
const MAX_ATTEMPTS = 100;

/** Where one image was erased (rows y0 ≤ y < y0 + h, columns x0 ≤ x < x0 + w). */
export interface ErasedRect {
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/**
 * Draws the rectangle for one `side`×`side` crop, or undefined (not erased: probability 1 − p, or
 * no fitting draw). With p = 0 it draws nothing from `rand`, so runs without erasing keep their
 * random streams (crops, flips) exactly as before the option existed.
 */
export function drawErasure(side: number, p: number, rand: () => number): ErasedRect | undefined {
  if (p <= 0 || rand() >= p) return undefined;
  const area = side * side;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const target = area * (ERASE_MIN_AREA + rand() * (ERASE_MAX_AREA - ERASE_MIN_AREA));
    const aspect = ERASE_MIN_ASPECT + rand() * (1 / ERASE_MIN_ASPECT - ERASE_MIN_ASPECT);
    const h = Math.round(Math.sqrt(target * aspect));
    const w = Math.round(Math.sqrt(target / aspect));
    if (h < 1 || w < 1 || h >= side || w >= side) continue;
    const y0 = Math.floor(rand() * (side - h + 1));
    const x0 = Math.floor(rand() * (side - w + 1));
    return { y0, x0, h, w };
  }
  return undefined;
}

/**
 * Erases `rect` of the NHWC image at `offset` in `out` (side × side × channels, already normalized):
 * every value becomes a uniform random pixel value in [0, 255], normalized by `mul`·v + `add` per channel.
 */
export function eraseInto(
  out: Float32Array, offset: number, side: number, channels: number, rect: ErasedRect,
  mul: readonly number[], add: readonly number[], rand: () => number,
): void {
  for (let y = rect.y0; y < rect.y0 + rect.h; y++) {
    let o = offset + (y * side + rect.x0) * channels;
    for (let x = 0; x < rect.w; x++) {
      for (let k = 0; k < channels; k++) out[o++] = rand() * 255 * (mul[k] as number) + (add[k] as number);
    }
  }
}
