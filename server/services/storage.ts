/**
 * Writing files under DATA without leaving partial ones behind, and turning a full disk into the
 * storage-full error kind (mapped to 507 by server/errors.ts) instead of an internal error.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IndexStorageFullError, isStorageFull } from '../../index/index.js';

/** Suffix of every temp file written here; the start-up sweep (reconcile.ts) removes leftovers. */
export const TMP_SUFFIX = '.tmp';

/** `err` as the storage-full kind when it is ENOSPC / EDQUOT / SQLITE_FULL, else unchanged. */
export function storageError(operation: string, err: unknown): unknown {
  if (err instanceof IndexStorageFullError || !isStorageFull(err)) return err;
  return new IndexStorageFullError(operation, (err as Error).message);
}

export async function storing<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storageError(operation, err);
  }
}

/**
 * Writes `bytes` to a unique temp name next to `path`, fsyncs and renames it into place; on any
 * failure the temp file is removed, so a full disk leaves no zero-byte or partial files.
 */
export async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
