/**
 * The writer lock (DATA/index.lock): one writer per directory. Readers (stats, search beside a
 * server) never take it: SQLite's WAL lets them read while the writer works.
 *
 * A bare PID is not enough to tell a live owner from a dead one: in a container node is PID 1 on
 * every start, so after `kill -9` the restarted server found "1" in the file, saw itself alive and
 * refused to start, forever. The file therefore records the owner's identity: the kernel's boot id,
 * the PID and the process start time (field 22 of /proc/PID/stat, in clock ticks since boot). A lock
 * is held only while a process with that PID exists *and* started at that time during this boot;
 * anything else (another boot, a dead PID, a PID reused by a newer process) is stale and taken over.
 */
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { IndexLockedError } from './errors.js';

export const LOCK_FILE = 'index.lock';

export interface LockOwner {
  pid: number;
  /** /proc/sys/kernel/random/boot_id; null where the platform has no /proc. */
  boot: string | null;
  /** Start time of `pid` in clock ticks since boot; null where unknown. */
  start: number | null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function bootId(): string | null {
  return readOr('/proc/sys/kernel/random/boot_id')?.trim() || null;
}

/** Start time of a process (clock ticks since boot), or null when it does not exist or /proc is absent. */
export function processStart(pid: number): number | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return Number.isInteger(start) ? start : null;
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, boot: bootId(), start: processStart(process.pid) };
}

/** Parses the lock file: the JSON identity, or a bare PID written by older versions. */
export function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner> | number;
    if (typeof o === 'number') return Number.isInteger(o) && o > 0 ? { pid: o, boot: null, start: null } : null;
    if (o === null || typeof o !== 'object' || !Number.isInteger(o.pid) || (o.pid as number) <= 0) return null;
    return { pid: o.pid as number, boot: typeof o.boot === 'string' ? o.boot : null, start: Number.isInteger(o.start) ? (o.start as number) : null };
  } catch {
    return null;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the recorded owner is a live process. `self` is this process's identity (a parameter so
 * the rule is tested without spawning containers).
 */
export function ownerAlive(owner: LockOwner, self: LockOwner = currentOwner(), start: (pid: number) => number | null = processStart, exists: (pid: number) => boolean = pidExists): boolean {
  if (owner.boot !== null && self.boot !== null && owner.boot !== self.boot) return false; // written before a reboot
  if (owner.pid === self.pid) {
    // Our own PID: it is us only if the start time matches; a bare PID equal to ours was written by
    // an earlier process that had our PID (PID 1 in a restarted container).
    return owner.start !== null && owner.start === self.start;
  }
  if (!exists(owner.pid)) return false;
  if (owner.start === null) return true; // an old-format lock of a live process: assume held
  const now = start(owner.pid);
  return now === null || now === owner.start;
}

/** Takes the lock of `dir` or throws IndexLockedError; returns the release function. */
export function acquireLock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  const self = currentOwner();
  const text = `${JSON.stringify(self)}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, text);
      } catch (e) {
        unlinkSync(path); // e.g. ENOSPC: an empty lock would only confuse the next start
        throw e;
      } finally {
        closeSync(fd);
      }
      return () => {
        if (existsSync(path) && readOr(path) === text) unlinkSync(path);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stale = readOr(path) ?? '';
      const owner = parseOwner(stale);
      if (owner !== null && ownerAlive(owner, self)) throw new IndexLockedError(dir, owner.pid);
      // Only the lock we judged stale: another starter may have replaced it meanwhile.
      if (readOr(path) === stale) unlinkSync(path);
    }
  }
  throw new IndexLockedError(dir, -1);
}
