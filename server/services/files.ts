/**
 * The one way the server reads a user's indexed files (job indexing, thumbnails): each file a
 * request touches is opened once, and what was opened is checked, not what the path names later.
 * The descriptor's inode must be the one at the path's real path, that real path must lie inside
 * the allowed roots, and it must be a regular file; every byte is then read from that descriptor.
 * Swapping the file for a symlink (or a FIFO, or a device) between the folder walk or the indexing
 * and this read can therefore not make the server read anything outside the roots.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, realpath, stat } from 'node:fs/promises';
import { isInside } from './walk.js';

export type FileRefusal = 'outside_roots' | 'not_a_file' | 'changed' | 'unreadable';

/** The file cannot be read safely; the message never contains a server path. */
export class FileRefusedError extends Error {
  override readonly name = 'FileRefusedError';
  readonly code = 'file_refused';
  readonly kind = 'forbidden';
  constructor(
    readonly reason: FileRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface OpenedFile {
  fh: FileHandle;
  /** Real path of the opened file (inside a root when roots were given). */
  realPath: string;
  size: number;
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'error';
}

/**
 * Opens `path` for reading, inside `roots` (real paths; empty = no containment, the CLI indexing a
 * folder it was given). O_NONBLOCK so a FIFO swapped in cannot hang the open; the caller closes `fh`.
 */
export async function openInsideRoots(path: string, roots: readonly string[]): Promise<OpenedFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new FileRefusedError('unreadable', `cannot open the file (${errCode(err)})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FileRefusedError('not_a_file', 'not a regular file');
    const real = await realpath(path).catch((err: unknown) => {
      throw new FileRefusedError('changed', `the file changed while it was opened (${errCode(err)})`);
    });
    const now = await stat(real).catch(() => undefined);
    // Another inode at the real path: the path was swapped between open and realpath.
    if (now === undefined || now.dev !== st.dev || now.ino !== st.ino) throw new FileRefusedError('changed', 'the file changed while it was opened');
    if (roots.length > 0 && !roots.some((r) => isInside(r, real))) {
      throw new FileRefusedError('outside_roots', 'the file resolves to a path outside the allowed roots (SIGHTLINE_INDEX_ROOTS)');
    }
    return { fh, realPath: real, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The whole file, read through `openInsideRoots`, refused over `maxBytes`. */
export async function readInsideRoots(path: string, roots: readonly string[], maxBytes: number): Promise<Buffer> {
  const { fh, size } = await openInsideRoots(path, roots);
  try {
    if (size > maxBytes) throw new FileRefusedError('unreadable', `the file is ${size} bytes, over the limit of ${maxBytes}`);
    // Exactly the size fstat saw: a file growing meanwhile cannot push us past the limit.
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return buf.subarray(0, at);
  } finally {
    await fh.close();
  }
}
