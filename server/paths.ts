/**
 * Files the server ships next to its code (the page, the demo gallery, the default models),
 * found from the package root so they resolve the same from sources (tsx) and from dist/.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot locate the sightline package root (no package.json above server/)');
    dir = up;
  }
  root = dir;
  return dir;
}

export const publicDir = (): string => join(packageRoot(), 'server', 'public');
export const demoDir = (): string => join(packageRoot(), 'server', 'demo');
export const goldenRegistry = (): string => join(packageRoot(), 'server', 'demo', 'golden.json');
