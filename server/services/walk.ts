/**
 * Folder walking for batch indexing, and the containment rules of server-side jobs: a job may only
 * read below the configured roots, judged on real paths (symlinks and `..` resolved), so a symlink
 * inside a root that points elsewhere is refused too.
 */
import { opendir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { BadRequestError, ForbiddenError, NotFoundError } from '../errors.js';

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Real paths of the configured roots; roots that do not exist are dropped (and reported). */
export async function resolveRoots(roots: readonly string[]): Promise<{ roots: string[]; missing: string[] }> {
  const out: string[] = [];
  const missing: string[] = [];
  for (const r of roots) {
    try {
      out.push(await realpath(r));
    } catch {
      missing.push(r);
    }
  }
  return { roots: out, missing };
}

/**
 * The real path of a requested job folder: 403 when it is (lexically or really) outside every
 * root, 404 when it does not exist, 400 when it is not a folder. The lexical check comes first so
 * that the answer does not reveal whether paths outside the roots exist.
 */
export async function checkJobPath(requested: string, roots: readonly string[]): Promise<string> {
  if (roots.length === 0) throw new ForbiddenError('server-side indexing is disabled: no allowed roots are configured (SIGHTLINE_INDEX_ROOTS)');
  if (!isAbsolute(requested)) throw new BadRequestError(`'path' must be an absolute folder path, got '${requested}'`);
  const lexical = resolve(requested);
  const refuse = () => new ForbiddenError(`'${requested}' is outside the allowed roots (SIGHTLINE_INDEX_ROOTS)`);
  if (!roots.some((r) => isInside(r, lexical)) && !roots.some((r) => isInside(resolve(r), lexical))) throw refuse();
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw new NotFoundError(`folder '${requested}' does not exist`);
  }
  if (!roots.some((r) => isInside(r, real))) throw refuse();
  if (!(await stat(real)).isDirectory()) throw new BadRequestError(`'${requested}' is not a folder`, 'not_a_folder');
  return real;
}

export interface WalkEntry {
  path: string;
  /** Set when the file is not readable for indexing (a symlink out of the roots). */
  refused?: string;
}

/**
 * Files under `dir` in a stable order (sorted by name, depth-first), so a resumed job can skip
 * what it already processed. Directory symlinks are not followed (no loops); file symlinks are,
 * but only when `roots` is empty or their target stays inside a root.
 */
export async function walkFiles(dir: string, opts: { recursive: boolean; roots?: readonly string[] }): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  const roots = opts.roots ?? [];
  const visit = async (d: string): Promise<void> => {
    const entries: { name: string; kind: 'file' | 'dir' | 'link' }[] = [];
    for await (const e of await opendir(d)) {
      if (e.isFile()) entries.push({ name: e.name, kind: 'file' });
      else if (e.isDirectory()) entries.push({ name: e.name, kind: 'dir' });
      else if (e.isSymbolicLink()) entries.push({ name: e.name, kind: 'link' });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.kind === 'dir') {
        if (opts.recursive) await visit(p);
      } else if (e.kind === 'file') out.push({ path: p });
      else {
        const target = await realpath(p).catch(() => undefined);
        const s = target === undefined ? undefined : await stat(target).catch(() => undefined);
        if (!s?.isFile()) continue;
        if (roots.length > 0 && !roots.some((r) => isInside(r, target as string))) out.push({ path: p, refused: 'symlink to a file outside the allowed roots' });
        else out.push({ path: p });
      }
    }
  };
  await visit(dir);
  return out;
}
