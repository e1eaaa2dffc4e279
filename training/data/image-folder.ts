/**
 * An image folder laid out as ROOT/<class>/<image> (the ImageFolder convention), or for unlabelled
 * uses (codes) a flat ROOT/<image>. Images are
 * decoded with the server's own decoder (model/image/decode.ts) so training and serving see the
 * same pixels; files that are not decodable images are skipped and counted.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeImage } from '../../model/index.js';
import type { PreprocessContract } from '../../model/index.js';
import type { SquareDataset } from './dataset.js';
import { mulberry32 } from '../network.js';

export interface FolderLoad {
  dataset: SquareDataset;
  skipped: string[];
}

export async function loadImageFolder(
  root: string,
  pre: PreprocessContract,
  opts: { limit?: number; maxPixels?: number; onProgress?: (done: number, total: number) => void; unlabelled?: boolean } = {},
): Promise<FolderLoad> {
  const entries = await readdir(root, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  // `unlabelled`: a flat folder of images (no class sub-folders) is accepted, with no classes.
  const flat = opts.unlabelled === true && dirs.length < 2;
  const classNames = flat ? [] : dirs;
  if (!flat && classNames.length < 2) throw new Error(`'${root}' must contain one sub-folder per class (ROOT/<class>/<image>); found ${classNames.length}`);
  const files: { path: string; label: number }[] = [];
  if (flat) for (const f of entries.filter((e) => e.isFile()).map((e) => e.name).sort()) files.push({ path: join(root, f), label: 0 });
  for (const [label, name] of classNames.entries()) {
    for (const f of (await readdir(join(root, name), { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort()) {
      files.push({ path: join(root, name, f), label });
    }
  }
  const chosen = files.slice(0, opts.limit ?? files.length);
  const channels = pre.channels === 'gray' ? 1 : 3;
  const per = pre.resizeSize * pre.resizeSize * channels;
  const pixels = new Uint8Array(chosen.length * per);
  const labels: number[] = [];
  const skipped: string[] = [];
  let n = 0;
  for (const [i, f] of chosen.entries()) {
    try {
      const sq = await decodeImage(await readFile(f.path), pre, { maxPixels: opts.maxPixels ?? 100_000_000 });
      pixels.set(sq.data, n * per);
      labels.push(f.label);
      n++;
    } catch {
      skipped.push(f.path);
    }
    opts.onProgress?.(i + 1, chosen.length);
  }
  return {
    dataset: { n, size: pre.resizeSize, channels, pixels: pixels.subarray(0, n * per), labels: Int32Array.from(labels), classNames },
    skipped,
  };
}

/** Seeded split into (train, validation) index lists. */
export function splitIndices(n: number, valCount: number, seed: number): { train: number[]; val: number[] } {
  const idx = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed ^ 0x9e3779b9);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  const v = Math.min(Math.max(valCount, 0), n - 1);
  return { val: idx.slice(0, v).sort((a, b) => a - b), train: idx.slice(v).sort((a, b) => a - b) };
}
