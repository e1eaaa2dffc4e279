/**
 * Image arguments of `classify`, `embed` and `search`: a file, or a folder standing for the image
 * files in it (top level, or every sub-folder with --recursive). Files inside a folder are picked
 * by extension so a folder of photos with a stray README still classifies; a file named directly
 * is always read (its bytes decide whether it is an image).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CliError } from './errors.js';

export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** A pattern the shell would have expanded had it not been quoted. */
export function looksLikeGlob(arg: string): boolean {
  return /[*?[\]{}]/.test(arg);
}

function imagesIn(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    const s = e.isSymbolicLink() ? statSync(p, { throwIfNoEntry: false }) : e;
    if (s === undefined) continue;
    if (s.isDirectory()) {
      if (recursive) out.push(...imagesIn(p, true));
    } else if (s.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
  }
  return out;
}

/**
 * Files and folders → image files, in argument order (a folder's files sorted by name). A quoted
 * glob or a missing path fails before any model loads.
 */
export function expandImageArgs(args: readonly string[], opts: { recursive: boolean }): string[] {
  const files: string[] = [];
  for (const arg of args) {
    const s = statSync(arg, { throwIfNoEntry: false });
    if (s === undefined) {
      if (looksLikeGlob(arg) && !existsSync(arg)) {
        throw CliError.usage(`'${arg}' is a pattern, not a file: let the shell expand it (drop the quotes) or pass the folder instead`);
      }
      throw CliError.failure(`image file '${arg}' does not exist`);
    }
    if (s.isDirectory()) {
      const found = imagesIn(arg, opts.recursive);
      if (found.length === 0) {
        throw CliError.failure(`folder '${arg}' holds no image files (${[...IMAGE_EXTENSIONS].join(' ')})${opts.recursive ? '' : '; add --recursive for its sub-folders'}`);
      }
      files.push(...found);
    } else files.push(arg);
  }
  return files;
}
