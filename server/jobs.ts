/**
 * Server-side indexing jobs: one runs at a time (others queue), each over a folder below the
 * allowed roots, through the shared IndexingService at background priority. Job state is saved
 * to DATA/jobs.json (atomically: temp, fsync, rename; throttled); each job's progress is its
 * journal (services/job-journal.ts), from which its counters are derived, so they stay exact
 * across crashes. A job that was running when the server stopped (SIGTERM or a crash) is resumed
 * at the next start and skips the files its journal lists. A damaged jobs.json is reported at warn
 * level and what can be read of it, or of the journals, is recovered.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { NotFoundError } from './errors.js';
import type { JobView, Jobs } from './ports.js';
import type { IndexingService, Outcome } from './services/indexing.js';
import { countersOf, JobJournal, outcomeKind } from './services/job-journal.js';
import type { Checkpoint, Counters } from './services/progress.js';
import { Progress } from './services/progress.js';
import { checkJobPath, walkFiles } from './services/walk.js';

type State = JobView['state'];

interface JobRecord {
  id: string;
  path: string;
  realPath: string;
  recursive: boolean;
  state: State;
  total: number;
  counters: Counters;
  errors: { file: string; message: string }[];
  checkpoint: Checkpoint | undefined;
  started_at: string;
  finished_at: string | null;
  /** Seconds spent running, over all runs, for the rate of finished jobs. */
  seconds: number;
  failure?: string;
}

interface Live {
  progress: Progress;
  journal: JobJournal;
  abort: AbortController;
  finished: Promise<void>;
  /** What an abort means: the user cancelled, or the server is stopping. */
  stopAs: 'cancelled' | 'interrupted';
}

const KEEP_JOBS = 100;
const SAVE_EVERY_MS = 1000;

export interface JobManagerOptions {
  /** Real paths of the allowed roots. */
  roots: readonly string[];
  stateFile: string;
  concurrency: number;
  logger: Logger;
  /** Told how each file ended (metrics); optional so tools and tests can run jobs without metrics. */
  onFile?: (outcome: Outcome['kind']) => void;
}

export class JobManager implements Jobs {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly live = new Map<string, Live>();
  private queue: string[] = [];
  private running: string | undefined;
  private lastSave = 0;
  private stopping = false;

  constructor(
    private readonly indexing: Pick<IndexingService, 'run'>,
    private readonly opts: JobManagerOptions,
  ) {
    for (const j of this.load()) this.jobs.set(j.id, j);
  }

  private get journalDir(): string {
    return join(dirname(this.opts.stateFile), 'jobs');
  }

  private journal(id: string): JobJournal {
    return new JobJournal(this.journalDir, id);
  }

  /** jobs.json, then the journals: jobs missing from the file are rebuilt, finished ones' journals dropped. */
  private load(): JobRecord[] {
    const { records, problem } = readJobsFile(this.opts.stateFile);
    const log = this.opts.logger;
    if (problem) log.warn({ file: this.opts.stateFile, recovered: records.length }, `job state file damaged (${problem}): recovered ${records.length} jobs from it`);
    const byId = new Map(records.map((j) => [j.id, j]));
    for (const id of JobJournal.ids(this.journalDir)) {
      const known = byId.get(id);
      if (known && (known.state === 'done' || known.state === 'cancelled' || known.state === 'failed')) {
        this.journal(id).remove(); // its final counters were saved before the crash
        continue;
      }
      const state = this.journal(id).read();
      if (state.badLines > 0) log.warn({ job: id, lines: state.badLines }, 'job journal had unreadable lines (a torn write at a crash); those files are processed again');
      if (!known && state.header) {
        const { counters, errors } = countersOf(state);
        const rebuilt: JobRecord = { ...state.header, state: 'interrupted', total: 0, counters, errors, checkpoint: undefined, finished_at: null, seconds: 0 };
        records.push(rebuilt);
        byId.set(id, rebuilt);
        log.warn({ job: id, path: rebuilt.path, files: state.files.size }, 'job missing from the job state file was recovered from its journal and will resume');
      } else if (!known) {
        log.warn({ job: id }, 'job journal without a readable header: cannot resume that job, journal removed');
        this.journal(id).remove();
      }
    }
    return records;
  }

  /** Atomic (temp, fsync, rename), throttled unless forced; a failure (full disk) is logged, not thrown. */
  private save(force = false): boolean {
    const now = Date.now();
    if (!force && now - this.lastSave < SAVE_EVERY_MS) return true;
    this.lastSave = now;
    for (const [id, l] of this.live) {
      const j = this.jobs.get(id);
      if (j) {
        j.counters = { ...l.progress.counters };
        j.errors = [...l.progress.errors];
      }
    }
    const all = [...this.jobs.values()].slice(-KEEP_JOBS);
    const tmp = `${this.opts.stateFile}.tmp`;
    try {
      mkdirSync(dirname(this.opts.stateFile), { recursive: true });
      writeFileSync(tmp, JSON.stringify(all));
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.opts.stateFile);
      return true;
    } catch (err) {
      rmSync(tmp, { force: true });
      this.opts.logger.warn({ err: (err as Error).message }, 'saving the job state failed; the journals keep each job\'s progress');
      return false;
    }
  }

  /** Re-queues jobs that were running or queued when the server last stopped; returns their ids. */
  resumeInterrupted(): string[] {
    const ids = [...this.jobs.values()].filter((j) => j.state === 'running' || j.state === 'queued' || j.state === 'interrupted').map((j) => j.id);
    for (const id of ids) {
      const j = this.jobs.get(id) as JobRecord;
      j.state = 'queued';
      this.queue.push(id);
      this.opts.logger.info({ job: id, path: j.path, processed: j.counters.done + j.counters.skipped + j.counters.failed }, 'resuming indexing job');
    }
    this.pump();
    return ids;
  }

  async start(path: string, recursive: boolean): Promise<JobView> {
    const realPath = await checkJobPath(path, this.opts.roots);
    const job: JobRecord = {
      id: randomUUID(),
      path,
      realPath,
      recursive,
      state: 'queued',
      total: 0,
      counters: { done: 0, skipped: 0, failed: 0, duplicates: 0, not_images: 0 },
      errors: [],
      checkpoint: undefined,
      started_at: new Date().toISOString(),
      finished_at: null,
      seconds: 0,
    };
    this.jobs.set(job.id, job);
    this.queue.push(job.id);
    this.save(true);
    this.pump();
    return this.view(job);
  }

  get(id: string): JobView {
    return this.view(this.record(id));
  }

  list(): JobView[] {
    return [...this.jobs.values()].map((j) => this.view(j));
  }

  cancel(id: string): JobView {
    const j = this.record(id);
    if (j.state === 'queued') {
      this.queue = this.queue.filter((q) => q !== id);
      this.finish(j, 'cancelled');
    } else if (j.state === 'running') {
      const l = this.live.get(id);
      if (l) {
        l.stopAs = 'cancelled';
        l.abort.abort();
      }
      j.state = 'cancelled';
    }
    return this.view(j);
  }

  /** Stops the running job with a checkpoint so the next start resumes it; queued ones stay queued. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const l of this.live.values()) {
      l.stopAs = 'interrupted';
      l.abort.abort();
    }
    await Promise.all([...this.live.values()].map((l) => l.finished));
    this.save(true);
  }

  /** Resolves when no job is queued or running (tests, the CLI). */
  async idle(): Promise<void> {
    while (this.running !== undefined || this.queue.length > 0) {
      const l = this.running === undefined ? undefined : this.live.get(this.running);
      await (l ? l.finished : new Promise((r) => setTimeout(r, 10)));
    }
  }

  private record(id: string): JobRecord {
    const j = this.jobs.get(id);
    if (!j) throw new NotFoundError(`job '${id}' does not exist`);
    return j;
  }

  private view(j: JobRecord): JobView {
    const l = this.live.get(j.id);
    const c = l ? l.progress.counters : j.counters;
    const processed = c.done + c.skipped + c.failed;
    const rate = l ? l.progress.rate() : j.seconds > 0 ? processed / j.seconds : 0;
    return {
      id: j.id,
      path: j.path,
      recursive: j.recursive,
      state: j.state,
      total: j.total,
      processed,
      new: c.done,
      done: c.done,
      skipped: c.skipped,
      failed: c.failed,
      duplicates: c.duplicates,
      not_images: c.not_images,
      rate: Math.round(rate * 100) / 100,
      eta_s: l ? roundOrNull(l.progress.etaSeconds()) : j.state === 'done' ? 0 : null,
      errors: (l ? l.progress.errors : j.errors).slice(0, 5),
      started_at: j.started_at,
      finished_at: j.finished_at,
      ...(j.failure ? { failure: j.failure } : {}),
    };
  }

  private finish(j: JobRecord, state: State): void {
    j.state = state;
    j.finished_at = state === 'interrupted' ? null : new Date().toISOString();
    const saved = this.save(true);
    // A finished job's counters now live in jobs.json; an interrupted one still needs its journal.
    if (saved && state !== 'interrupted') this.journal(j.id).remove();
  }

  private pump(): void {
    if (this.running !== undefined || this.stopping) return;
    const id = this.queue.shift();
    if (id === undefined) return;
    const j = this.jobs.get(id);
    if (!j || j.state !== 'queued') return this.pump();
    this.running = id;
    j.state = 'running';
    const l: Live = { progress: new Progress(0), journal: this.journal(id), abort: new AbortController(), finished: Promise.resolve(), stopAs: 'cancelled' };
    this.live.set(id, l);
    l.finished = this.execute(j, l).finally(() => {
      this.live.delete(id);
      this.running = undefined;
      this.pump();
    });
  }

  private async execute(j: JobRecord, l: Live): Promise<void> {
    const t0 = performance.now();
    const log = this.opts.logger.child({ job: j.id });
    try {
      const entries = await walkFiles(j.realPath, { recursive: j.recursive, roots: this.opts.roots });
      // What earlier runs finished is read back from the journal: counters and the files to skip.
      const before = l.journal.read();
      const { counters, errors } = countersOf(before);
      l.progress = new Progress(entries.length, { position: 0, counters, errors });
      const remaining = entries.filter((e) => !before.files.has(e.path));
      l.journal.open({ id: j.id, path: j.path, realPath: j.realPath, recursive: j.recursive, started_at: j.started_at });
      j.total = entries.length;
      log.info({ path: j.path, total: j.total, finished_before: before.files.size }, 'indexing job started');
      await this.indexing.run(remaining, {
        concurrency: this.opts.concurrency,
        signal: l.abort.signal,
        priority: 'background',
        roots: this.opts.roots,
        onOutcome: (position, entry, outcome) => {
          const kind = outcomeKind(outcome, j.started_at);
          const message = outcome.kind === 'failed' ? outcome.message : undefined;
          l.journal.append(entry.path, kind, message);
          // Counted as the journal will count it on a resume (resumed = false: no guessing from sources).
          l.progress.record(position, entry.path, kind === 'added' && outcome.kind === 'duplicate' ? { kind: 'added', id: outcome.id } : outcome, false);
          this.opts.onFile?.(outcome.kind);
          if (outcome.kind === 'failed') log.debug({ file: entry.path, reason: outcome.message }, 'file not indexed');
          this.save();
        },
      });
      this.capture(j, l, t0);
      this.finish(j, l.abort.signal.aborted ? l.stopAs : 'done');
      log.info({ state: j.state, ...j.counters }, 'indexing job stopped');
    } catch (err) {
      this.capture(j, l, t0);
      const stopped = l.abort.signal.aborted || this.stopping;
      j.failure = stopped ? undefined : publicReason(err);
      this.finish(j, stopped ? l.stopAs : 'failed');
      if (!stopped) log.error({ err }, 'indexing job failed');
    }
  }

  private capture(j: JobRecord, l: Live, t0: number): void {
    l.journal.close();
    // The journal is the truth; the in-memory counters were built from the same lines.
    const { counters, errors } = countersOf(l.journal.read());
    j.counters = counters;
    j.errors = errors;
    j.checkpoint = undefined;
    j.seconds += (performance.now() - t0) / 1000;
  }
}

/**
 * Reads jobs.json. A truncated or garbled file (a crash of an older version mid-write, a full
 * disk) keeps every job object that is still whole: the array is cut at the last complete entry.
 */
function readJobsFile(path: string): { records: JobRecord[]; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? { records: [] } : { records: [], problem: (err as Error).message };
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v)) return { records: v.filter(isJobRecord) };
    return { records: [], problem: 'not a JSON array' };
  } catch (err) {
    const problem = (err as Error).message;
    for (let end = text.lastIndexOf('},'); end > 0; end = text.lastIndexOf('},', end - 1)) {
      try {
        const v = JSON.parse(`${text.slice(0, end + 1)}]`) as unknown;
        if (Array.isArray(v)) return { records: v.filter(isJobRecord), problem };
      } catch {
        // keep cutting
      }
    }
    return { records: [], problem };
  }
}

function isJobRecord(v: unknown): v is JobRecord {
  const j = v as Partial<JobRecord> | null;
  return j !== null && typeof j === 'object' && typeof j.id === 'string' && typeof j.realPath === 'string' && typeof j.state === 'string' && typeof j.counters === 'object';
}

/**
 * A job failure as GET /v1/jobs shows it: node's fs messages carry absolute paths (e.g. the folder
 * vanished: "ENOENT: no such file or directory, scandir '/srv/…'"), so system errors show their
 * code and call only; the full error is in the log.
 */
export function publicReason(err: unknown): string {
  const e = err as { code?: unknown; syscall?: unknown; status?: unknown };
  if (typeof e.code === 'string' && typeof e.syscall === 'string') return `${e.code} in ${e.syscall} (details in the server log)`;
  if (err instanceof Error && typeof e.status === 'number' && e.status < 500) return err.message;
  return 'internal error (details in the server log)';
}

function roundOrNull(x: number | null): number | null {
  return x === null ? null : Math.round(x * 10) / 10;
}
