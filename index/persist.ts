/**
 * Files next to the database: the HNSW graph (index.hnsw), its sidecar (index.hnsw.json) and the
 * writer lock (index.lock).
 *
 * Crash safety: each file is written to a temp name, fsynced and renamed (atomic on POSIX), graph
 * first and sidecar last. The sidecar records the SQLite generation it reflects, so a crash between
 * the two renames leaves an older sidecar whose generation differs from the database's: that is
 * detected as stale and rebuilt. The sidecar also records the graph's byte size and CRC-32, because
 * hnswlib trusts its file: flipped bytes in the link lists would make it read out of bounds.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { IndexLockedError } from './errors.js';

export const DB_FILE = 'sightline.db';
export const HNSW_FILE = 'index.hnsw';
export const SIDECAR_FILE = 'index.hnsw.json';
export const LOCK_FILE = 'index.lock';
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

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One writer per directory. The lock file holds the owner's pid; a lock whose process is gone
 * (SIGKILL, crash) is taken over. Readers (stats, duplicates) never take it: SQLite's WAL lets
 * them read while the writer works.
 */
export function acquireLock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        if (existsSync(path) && Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new IndexLockedError(dir, pid);
      unlinkSync(path);
    }
  }
  throw new IndexLockedError(dir, -1);
}
