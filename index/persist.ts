/**
 * Files next to the database: the HNSW graph (index.hnsw) and its sidecar (index.hnsw.json); the
 * writer lock (index.lock) is in lock.ts.
 *
 * Crash safety: each file is written to a temp name, fsynced and renamed (atomic on POSIX), graph
 * first and sidecar last. The sidecar records the SQLite generation it reflects, so a crash between
 * the two renames leaves an older sidecar whose generation differs from the database's: that is
 * detected as stale and rebuilt. The sidecar also records the graph's byte size and CRC-32, because
 * hnswlib trusts its file: flipped bytes in the link lists would make it read out of bounds.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const DB_FILE = 'sightline.db';
export const HNSW_FILE = 'index.hnsw';
export const SIDECAR_FILE = 'index.hnsw.json';
const TMP_MARK = '.tmp-';

export interface Sidecar {
  format: 1;
  generation: number;
  bits: number;
  modelHash: string;
  codesHash: string;
  /** Live elements (= rows in SQLite at that generation). */
  count: number;
  /** hnswlib slots, deleted included (its getCurrentCount()). */
  slots: number;
  M: number;
  efConstruction: number;
  /** Order-independent digest of (id, code) over all live rows; see fingerprint.ts. */
  fingerprint: string;
  bytes: number;
  crc32: number;
  savedAt: string;
}

export function readSidecar(dir: string): Sidecar | string {
  const path = join(dir, SIDECAR_FILE);
  if (!existsSync(path)) return 'sidecar missing';
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return `sidecar unreadable (${(err as Error).message})`;
  }
  const s = raw as Partial<Sidecar> | null;
  const nums: (keyof Sidecar)[] = ['generation', 'bits', 'count', 'slots', 'M', 'efConstruction', 'bytes', 'crc32'];
  if (s === null || typeof s !== 'object' || s.format !== 1) return 'sidecar has an unknown format';
  for (const k of nums) if (!Number.isInteger(s[k])) return `sidecar field '${k}' is invalid`;
  if (typeof s.modelHash !== 'string' || typeof s.codesHash !== 'string' || typeof s.fingerprint !== 'string') return 'sidecar hashes are invalid';
  return s as Sidecar;
}

/** Writes `data` (or lets `produce` write the temp path) then fsyncs and renames into place. */
export function atomicWrite(path: string, produce: string | ((tmp: string) => void)): void {
  const tmp = `${path}${TMP_MARK}${process.pid}`;
  try {
    if (typeof produce === 'string') writeFileSync(tmp, produce);
    else produce(tmp);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
}

/** Streams the file through zlib's CRC-32 (≈5 GB/s here) with one reused 1 MiB buffer. */
export function fileCrc32(path: string): { bytes: number; crc32: number } {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let crc = 0;
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      crc = crc32(buf.subarray(0, n), crc);
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, crc32: crc };
}

/** Temp files are ours only while we hold the lock, so leftovers from a killed writer can go. */
export function removeStaleTemps(dir: string): string[] {
  const removed = readdirSync(dir).filter((f) => f.includes(TMP_MARK));
  for (const f of removed) unlinkSync(join(dir, f));
  return removed;
}
