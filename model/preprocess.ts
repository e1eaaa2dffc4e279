/**
 * Image preprocessing per the model contract: one sharp decode to a resizeSize² square
 * (image/decode.ts), then the paper's 1- or 10-crop batch cut and normalized in JS (image/crops.ts).
 */
export { decodeImage, swapRedBlue } from './image/decode.js';
export type { DecodedSquare, DecodeLimits } from './image/decode.js';
export { batchLength, cropSpecs, makeCrops, normalizationTable } from './image/crops.js';
export type { CropCount, CropName, CropSpec } from './image/crops.js';
export { sniffFormat } from './image/formats.js';
export type { ImageFormat, Sniffed } from './image/formats.js';
export { isSrgbIdentityProfile, SRGB_IDENTITY_PROFILES } from './image/icc.js';
export { readJpegHeader } from './image/jpeg-header.js';
export type { JpegHeader } from './image/jpeg-header.js';
