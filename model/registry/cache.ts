/**
 * Where pulled models live. One folder per registry name under `<home>/models/`:
 *   <file>          the original download, verified (kept so a new importer can re-import it offline)
 *   <file>.part     a download in progress; a later pull resumes it
 *   model.onnx      the imported Sightline model (contract inside): what a name resolves to
 *   entry.json      what was pulled, from where, when, and the importer's changes
 *   codes.onnx      a random-projection codes model for search (made by the CLI's pull: no training data needed)
 * model.onnx is written last (atomically), so its presence means the pull finished.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RegistryEntry } from './entries.js';

/** `SIGHTLINE_HOME`, else ~/.cache/sightline (XDG_CACHE_HOME honoured). */
export function sightlineHome(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['SIGHTLINE_HOME'];
  if (explicit) return resolve(explicit);
  const cache = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return resolve(cache, 'sightline');
}

export const modelDir = (home: string, name: string): string => join(home, 'models', name);
export const importedPath = (home: string, name: string): string => join(modelDir(home, name), 'model.onnx');
export const sourcePath = (home: string, entry: RegistryEntry): string => join(modelDir(home, entry.name), entry.file);
export const codesPathFor = (home: string, name: string): string => join(modelDir(home, name), 'codes.onnx');
export const metaPath = (home: string, name: string): string => join(modelDir(home, name), 'entry.json');

let root: string | undefined;

/** The folder holding our package.json, found from this file (works from sources and from dist/). */
export function packageDir(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot locate the sightline package root (no package.json above model/registry/)');
    dir = up;
  }
  root = dir;
  return dir;
}

/**
 * The class names a registry entry is imported with. imagenet-1k.txt is torchvision's
 * `_IMAGENET_CATEGORIES` (Debian python3-torchvision 0.14.1, BSD-3-Clause), in the ILSVRC2012
 * class order that BVLC AlexNet's 1,000 outputs follow.
 */
export function registryLabels(entry: RegistryEntry): string[] | undefined {
  if (entry.labels === 'contract') return undefined;
  const text = readFileSync(join(packageDir(), 'model', 'registry', `${entry.labels}.txt`), 'utf8');
  return text.split('\n').filter((l) => l.length > 0);
}
