/**
 * The durable record of a job's progress: DATA/jobs/<id>.jsonl, one JSON line per finished file,
 * appended as each file ends, after its row was committed. A job's counters are always a fold over
 * its journal (by file, so a file met twice counts once), never in-memory increments: those were
 * lost or counted twice across crashes (done 256 / duplicates 44 where the truth was 290 / 10).
 * A kill -9 can lose at most the lines of files in flight; those files run again at resume, find
 * their own row (same source, created after the job started) and count as done.
 *
 * The first line holds the job itself, so a job whose entry in jobs.json is lost (a truncated
 * file) is rebuilt from its journal. Appends are not fsynced: a process crash keeps them (they are
 * in the page cache); after a power loss the lost lines' files are simply processed again.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Outcome } from './indexing.js';
import { type Counters, MAX_ERRORS } from './progress.js';

export interface JournalHeader {
  id: string;
  path: string;
  realPath: string;
  recursive: boolean;
  started_at: string;
}

type Kind = 'added' | 'duplicate' | 'not_image' | 'failed';
interface Line {
  f: string;
  k: Kind;
  m?: string;
}

export interface JournalState {
  header: JournalHeader | undefined;
  /** Final outcome per file (the last line for a file wins). */
  files: Map<string, { kind: Kind; message?: string }>;
  /** Lines that could not be parsed (a torn last line), ignored. */
  badLines: number;
}

/** How an outcome counts for the job that started at `startedAt`. */
export function outcomeKind(o: Outcome, startedAt: string): Kind {
  // Its own row from before a crash: the file was added by this job, its journal line was lost.
  if (o.kind === 'duplicate' && o.sameSource && o.createdAt !== undefined && o.createdAt >= startedAt) return 'added';
  return o.kind;
}

export function countersOf(state: JournalState): { counters: Counters; errors: { file: string; message: string }[] } {
  const c: Counters = { done: 0, skipped: 0, failed: 0, duplicates: 0, not_images: 0 };
  const errors: { file: string; message: string }[] = [];
  for (const [file, { kind, message }] of state.files) {
    if (kind === 'added') c.done++;
    else if (kind === 'duplicate') {
      c.skipped++;
      c.duplicates++;
    } else if (kind === 'not_image') {
      c.skipped++;
      c.not_images++;
    } else {
      c.failed++;
      if (errors.length < MAX_ERRORS) errors.push({ file, message: message ?? '' });
    }
  }
  return { counters: c, errors };
}

export class JobJournal {
  private fd: number | undefined;

  constructor(
    readonly dir: string,
    readonly id: string,
  ) {}

  get path(): string {
    return join(this.dir, `${this.id}.jsonl`);
  }

  read(): JournalState {
    const state: JournalState = { header: undefined, files: new Map(), badLines: 0 };
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return state;
    }
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        state.badLines++;
        continue;
      }
      const o = v as Partial<Line> & { job?: JournalHeader };
      if (o.job && typeof o.job.id === 'string') state.header = o.job;
      else if (typeof o.f === 'string' && typeof o.k === 'string') state.files.set(o.f, { kind: o.k, ...(o.m !== undefined ? { message: o.m } : {}) });
      else state.badLines++;
    }
    return state;
  }

  /** Opens for appending; writes the header when the journal is new. */
  open(header: JournalHeader): void {
    mkdirSync(this.dir, { recursive: true });
    const fresh = this.read().header === undefined;
    this.fd = openSync(this.path, 'a');
    if (fresh) this.write({ job: header });
  }

  append(file: string, kind: Kind, message?: string): void {
    this.write({ f: file, k: kind, ...(message !== undefined ? { m: message } : {}) });
  }

  private write(v: object): void {
    if (this.fd === undefined) throw new Error(`job journal ${this.id} is not open`);
    // One write per line: a crash leaves whole lines (at worst a torn last one, which read() skips).
    writeSync(this.fd, `${JSON.stringify(v)}\n`);
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fsyncSync(this.fd);
    } catch {
      // best effort: the lines are in the page cache already
    }
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** Called once the job's final counters are safely in jobs.json. */
  remove(): void {
    this.close();
    rmSync(this.path, { force: true });
  }

  /** Ids of every journal in `dir`. */
  static ids(dir: string): string[] {
    try {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .map((f) => f.slice(0, -'.jsonl'.length));
    } catch {
      return [];
    }
  }
}

