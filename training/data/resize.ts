/**
 * Resizes raw uint8 squares with the same libvips operation the server applies to uploads
 * (model/image/decode.ts: resize fit 'cover', lanczos3), so that training sees exactly the
 * pixels that serving will produce for the same image.
 */
import sharp from 'sharp';

export async function resizeRawSquares(src: Uint8Array, n: number, side: number, channels: 1 | 3, size: number): Promise<Uint8Array> {
  const per = side * side * channels;
  const outPer = size * size * channels;
  const out = new Uint8Array(n * outPer);
  if (side === size) {
    out.set(src.subarray(0, n * per));
    return out;
  }
  const one = async (i: number) => {
    // Without toColourspace, libvips writes a one-channel input back out as 3-channel sRGB.
    const { data, info } = await sharp(src.subarray(i * per, (i + 1) * per), { raw: { width: side, height: side, channels } })
      .resize(size, size, { fit: 'cover', position: 'centre' })
      .toColourspace(channels === 1 ? 'b-w' : 'srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== channels || data.length !== outPer) {
      throw new Error(`resize of image ${i} returned ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}`);
    }
    out.set(data, i * outPer);
  };
  // A few images in flight keep libvips busy without queueing 60k promises at once.
  const inFlight = 8;
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) await one(next++);
  }));
  return out;
}
