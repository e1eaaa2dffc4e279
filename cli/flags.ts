/**
 * Flag parsing and paths shared by the sub-commands. It imports nothing heavy (no model, tfjs or
 * server code), so a command that only needs a flag parser loads no more than its own modules.
 * Wrong values are usage errors (exit 2) that name the flag and the value.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from './errors.js';

/** The bundled default model, relative to the package root. */
export const DEFAULT_MODEL = 'model/default/sightline-fmnist.onnx';

/** The folder holding our package.json, found from this file so it works from sources and from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw CliError.failure('cannot locate the sightline package root (no package.json above the CLI)');
    dir = up;
  }
  return dir;
}

export function intFlag(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || v < min || v > max) throw CliError.usage(`${flag} must be an integer in [${min}, ${max}], got '${raw}'`);
  return v;
}

export function numFlag(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) throw CliError.usage(`${flag} must be a number in [${min}, ${max}], got '${raw}'`);
  return v;
}

export function cropsFlag(raw: string): 1 | 10 {
  if (raw !== '1' && raw !== '10') throw CliError.usage(`--crops must be 1 or 10, got '${raw}'`);
  return raw === '1' ? 1 : 10;
}
