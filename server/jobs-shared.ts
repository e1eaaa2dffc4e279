/**
 * Indexing jobs shared by every replica on one PostgreSQL catalog (the SQLite setup keeps them in
 * DATA/jobs.json, jobs.ts). Any replica accepts a job, lists and cancels jobs; each replica polls
 * the queue and runs at most one job at a time, claimed under a lease that it renews every third
 * of the lease (index/'s PgJobQueue). If the owner dies, the lease runs out and another replica
 * claims the job and skips the files recorded as finished; files that were in flight run again
 * and find their own rows (same source, added after the job started), so they count once as added
 * and are never stored twice (images are unique by SHA-256). SIGTERM hands the job back at once.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { PgJobQueue, StoredJob } from '../index/index.js';
import { NotFoundError } from './errors.js';
import { publicReason } from './jobs.js';
import type { JobView, Jobs } from './ports.js';
import type { IndexingService, Outcome } from './services/indexing.js';
import { outcomeKind } from './services/job-journal.js';
import { checkJobPath, walkFiles } from './services/walk.js';

export interface SharedJobOptions {
  /** Real paths of the allowed roots (the same mount paths on every replica). */
  roots: readonly string[];
  concurrency: number;
  logger: Logger;
  /** A job whose owner has not renewed for this long is taken over by another replica. */
  leaseMs: number;
  /** How often an idle replica looks for a job (default min(1000, leaseMs / 3)). */
  pollMs?: number;
  onFile?: (outcome: Outcome['kind']) => void;
}

interface Running {
  id: string;
  abort: AbortController;
  /** What an abort means: cancelled by a user, handed back at shutdown, or lost to another replica. */
  stopAs: 'cancelled' | 'handed_back' | 'lost';
  finished: Promise<void>;
}

export class SharedJobManager implements Jobs {
  /** This replica in the jobs table: host, process and a random part (pids repeat across containers). */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private current: Running | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopping = false;
  /** The claim under way, awaited by shutdown so that no claim lands after it. */
  private inFlight: Promise<void> = Promise.resolve();
  private readonly pollMs: number;

  constructor(
    private readonly queue: PgJobQueue,
    private readonly indexing: Pick<IndexingService, 'run'>,
    private readonly opts: SharedJobOptions,
  ) {
    this.pollMs = opts.pollMs ?? Math.min(1000, Math.max(10, Math.floor(opts.leaseMs / 3)));
  }

  async start(path: string, recursive: boolean): Promise<JobView> {
    const realPath = await checkJobPath(path, this.opts.roots);
    const job = await this.queue.create({ id: randomUUID(), path, realPath, recursive });
    await this.queue.prune();
    this.schedule(0);
    return view(job);
  }

  async get(id: string): Promise<JobView> {
    const j = await this.queue.get(id);
    if (!j) throw new NotFoundError(`job '${id}' does not exist`);
    return view(j);
  }

  async list(): Promise<JobView[]> {
    return (await this.queue.list()).map(view);
  }

  async cancel(id: string): Promise<JobView> {
    const j = await this.queue.cancel(id);
    if (!j) throw new NotFoundError(`job '${id}' does not exist`);
    if (this.current?.id === id) this.stop(this.current, 'cancelled');
    return view(j);
  }

  /** Starts polling the shared queue (jobs left by any replica are resumed from there); returns []. */
  resumeInterrupted(): string[] {
    this.polling = true;
    this.schedule(0);
    return [];
  }

  /** Hands the running job back to the queue (another replica resumes it) and stops polling. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.inFlight;
    if (this.current) {
      this.stop(this.current, 'handed_back');
      await this.current.finished;
    }
  }

  /** Resolves when no job of any replica is queued or running (tests, tools). */
  async idle(): Promise<void> {
    for (;;) {
      const open = (await this.queue.list()).some((j) => j.state === 'queued' || j.state === 'running');
      if (!open && this.current === undefined) return;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  private stop(r: Running, as: Running['stopAs']): void {
    r.stopAs = as;
    r.abort.abort();
  }

  private schedule(ms: number): void {
    if (!this.polling || this.stopping || this.current) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.inFlight = this.poll();
    }, ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.stopping || this.current) return;
    try {
      const claimed = await this.queue.claim(this.owner, this.opts.leaseMs);
      if (claimed && this.stopping) {
        // Shutdown began while the claim was on its way: give the job straight back.
        await this.queue.finish(claimed.job.id, this.owner, 'queued', 0);
        return;
      }
      if (claimed) {
        const r: Running = { id: claimed.job.id, abort: new AbortController(), stopAs: 'cancelled', finished: Promise.resolve() };
        this.current = r;
        r.finished = this.execute(claimed.job, claimed.previousOwner, r).finally(() => {
          this.current = undefined;
          this.schedule(0);
        });
        return;
      }
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'looking for indexing jobs failed; retrying');
    }
    this.schedule(this.pollMs);
  }

  private async execute(job: StoredJob, previousOwner: string | null, r: Running): Promise<void> {
    const log = this.opts.logger.child({ job: job.id });
    if (previousOwner !== null) log.warn({ previous: previousOwner, finished_before: Object.values(job.counts).reduce((a, b) => a + b, 0) }, 'taking over an indexing job whose replica stopped renewing its lease');
    let beat = performance.now();
    const elapsed = (): number => {
      const now = performance.now();
      const s = (now - beat) / 1000;
      beat = now;
      return s;
    };
    const heartbeat = setInterval(() => {
      this.queue.renew(job.id, this.owner, this.opts.leaseMs, elapsed()).then(
        (mine) => {
          if (!mine && !r.abort.signal.aborted) this.stop(r, 'lost');
        },
        (err: unknown) => log.warn({ err: (err as Error).message }, 'renewing the job lease failed; retrying'),
      );
    }, Math.max(10, Math.floor(this.opts.leaseMs / 3)));
    let records: Promise<void> = Promise.resolve();
    let end: { state: 'done' | 'failed' | 'cancelled' | 'queued'; failure?: string };
    try {
      const entries = await walkFiles(job.realPath, { recursive: job.recursive, roots: this.opts.roots });
      await this.queue.setTotal(job.id, this.owner, entries.length);
      const before = await this.queue.finishedFiles(job.id);
      log.info({ path: job.path, total: entries.length, finished_before: before.size, run: job.runs }, 'indexing job started');
      await this.indexing.run(entries.filter((e) => !before.has(e.path)), {
        concurrency: this.opts.concurrency,
        signal: r.abort.signal,
        priority: 'background',
        roots: this.opts.roots,
        onOutcome: (_position, entry, outcome) => {
          const kind = outcomeKind(outcome, job.startedAt);
          const message = outcome.kind === 'failed' ? outcome.message : undefined;
          // In order, after the row's commit; a lost record only means the file runs again on a resume.
          records = records.then(() => this.queue.record(job.id, entry.path, kind, message)).catch((err: unknown) => log.warn({ err: (err as Error).message, file: entry.path }, 'recording a file of the job failed'));
          this.opts.onFile?.(outcome.kind);
        },
      });
      end = { state: r.abort.signal.aborted ? stoppedState(r) : 'done' };
    } catch (err) {
      end = r.abort.signal.aborted ? { state: stoppedState(r) } : { state: 'failed', failure: publicReason(err) };
      if (!r.abort.signal.aborted) log.error({ err }, 'indexing job failed');
    } finally {
      clearInterval(heartbeat);
    }
    await records;
    if (r.stopAs === 'lost' && r.abort.signal.aborted) {
      log.warn('indexing job stopped here: cancelled, or taken over by another replica');
      return;
    }
    const ended = await this.queue.finish(job.id, this.owner, end.state, elapsed(), end.failure).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, 'saving the end of the job failed; its lease will expire and another replica resumes it');
      return false;
    });
    log.info({ state: end.state, recorded: ended }, end.state === 'queued' ? 'indexing job handed back to the queue' : 'indexing job stopped');
  }
}

function stoppedState(r: Running): 'cancelled' | 'queued' {
  return r.stopAs === 'cancelled' ? 'cancelled' : 'queued';
}

function view(j: StoredJob): JobView {
  const c = j.counts;
  const skipped = c.duplicate + c.not_image;
  const processed = c.added + skipped + c.failed;
  const rate = j.seconds > 0 ? processed / j.seconds : 0;
  const eta = j.state === 'done' ? 0 : j.state === 'running' && rate > 0 ? (j.total - processed) / rate : null;
  return {
    id: j.id,
    path: j.path,
    recursive: j.recursive,
    state: j.state,
    total: j.total,
    processed,
    new: c.added,
    done: c.added,
    skipped,
    failed: c.failed,
    duplicates: c.duplicate,
    not_images: c.not_image,
    rate: Math.round(rate * 100) / 100,
    eta_s: eta === null ? null : Math.round(eta * 10) / 10,
    errors: j.errors,
    started_at: j.startedAt,
    finished_at: j.finishedAt,
    ...(j.failure ? { failure: j.failure } : {}),
  };
}
