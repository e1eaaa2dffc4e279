/**
 * Batch-indexing jobs kept in PostgreSQL, so that several replicas share them: a queued job is
 * claimed by one replica (`FOR UPDATE SKIP LOCKED`: two replicas polling at once never get the same
 * job) under a lease that its owner renews; a job whose owner stopped renewing (killed, frozen,
 * cut off) is claimable again once the lease has expired, and its new owner skips the files
 * already recorded. Each finished file is one `index_job_files` row (the journal of the SQLite setup), so
 * counters are a fold over rows and survive any crash. Times come from the database's clock, the
 * same one that stamps image rows, so "added by this job" never depends on replicas' clocks.
 */
export type JobState = 'queued' | 'running' | 'done' | 'cancelled' | 'failed' | 'interrupted';
export type FileKind = 'added' | 'duplicate' | 'not_image' | 'failed';

export interface StoredJob {
  id: string;
  path: string;
  realPath: string;
  recursive: boolean;
  state: JobState;
  total: number;
  /** Replica running it (running only). */
  owner: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** Seconds spent running, over all runs and replicas. */
  seconds: number;
  failure: string | null;
  /** How many times the job was claimed: 2 and more means it was resumed. */
  runs: number;
  counts: Record<FileKind, number>;
  /** The first failed files, by name. */
  errors: { file: string; message: string }[];
}

/** What runs a statement: the backend's SqlQuery port (a pg.Pool behind it, or PGlite in tests). */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
}

/** The tables, one statement each (idempotent): the schema's migrations run them. */
export const JOB_TABLES_SQL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS index_jobs (
  id uuid PRIMARY KEY,
  path text NOT NULL,
  real_path text NOT NULL,
  recursive boolean NOT NULL,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled', 'failed', 'interrupted')),
  total integer NOT NULL DEFAULT 0,
  owner text,
  lease_until timestamptz,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  seconds double precision NOT NULL DEFAULT 0,
  failure text,
  runs integer NOT NULL DEFAULT 0
)`,
  `CREATE INDEX IF NOT EXISTS index_jobs_open ON index_jobs (started_at, id) WHERE state IN ('queued', 'running')`,
  `CREATE TABLE IF NOT EXISTS index_job_files (
  job_id uuid NOT NULL REFERENCES index_jobs (id) ON DELETE CASCADE,
  file text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('added', 'duplicate', 'not_image', 'failed')),
  message text,
  PRIMARY KEY (job_id, file)
)`,
];

const MAX_ERRORS = 5;
const KEEP_JOBS = 100;

const SELECT = `
SELECT j.id, j.path, j.real_path, j.recursive, j.state, j.total, j.owner, j.started_at, j.finished_at, j.seconds, j.failure, j.runs,
  (SELECT coalesce(json_object_agg(kind, n), '{}') FROM (SELECT kind, count(*) AS n FROM index_job_files WHERE job_id = j.id GROUP BY kind) c) AS counts,
  (SELECT coalesce(json_agg(json_build_object('file', e.file, 'message', e.message)), '[]')
     FROM (SELECT file, coalesce(message, '') AS message FROM index_job_files WHERE job_id = j.id AND kind = 'failed' ORDER BY file LIMIT ${MAX_ERRORS}) e) AS errors
FROM index_jobs j`;

interface Row {
  id: string;
  path: string;
  real_path: string;
  recursive: boolean;
  state: JobState;
  total: number;
  owner: string | null;
  started_at: Date;
  finished_at: Date | null;
  seconds: number;
  failure: string | null;
  runs: number;
  counts: Partial<Record<FileKind, string | number>>;
  errors: { file: string; message: string }[];
}

function toJob(r: Row): StoredJob {
  const n = (k: FileKind): number => Number(r.counts[k] ?? 0);
  return {
    id: r.id,
    path: r.path,
    realPath: r.real_path,
    recursive: r.recursive,
    state: r.state,
    total: r.total,
    owner: r.owner,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
    seconds: Number(r.seconds),
    failure: r.failure,
    runs: r.runs,
    counts: { added: n('added'), duplicate: n('duplicate'), not_image: n('not_image'), failed: n('failed') },
    errors: r.errors,
  };
}

export class PgJobQueue {
  constructor(private readonly db: Queryable) {}

  async create(job: { id: string; path: string; realPath: string; recursive: boolean }): Promise<StoredJob> {
    await this.db.query(`INSERT INTO index_jobs (id, path, real_path, recursive, state) VALUES ($1, $2, $3, $4, 'queued')`, [job.id, job.path, job.realPath, job.recursive]);
    return (await this.get(job.id)) as StoredJob;
  }

  async get(id: string): Promise<StoredJob | undefined> {
    // Ids are UUIDs; anything else names no job (and must not reach the uuid cast as an error).
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
    const r = await this.db.query<Row>(`${SELECT} WHERE j.id = $1`, [id]);
    return r.rows[0] ? toJob(r.rows[0]) : undefined;
  }

  /** The last jobs, newest first. */
  async list(limit = KEEP_JOBS): Promise<StoredJob[]> {
    const r = await this.db.query<Row>(`${SELECT} ORDER BY j.started_at DESC, j.id LIMIT $1`, [limit]);
    return r.rows.map(toJob);
  }

  /**
   * Claims the oldest job that is queued, or running under an expired lease, for `owner`;
   * `previousOwner` is set when the job is taken over from a replica that stopped renewing.
   */
  async claim(owner: string, leaseMs: number): Promise<{ job: StoredJob; previousOwner: string | null } | undefined> {
    const r = await this.db.query<{ id: string; previous: string | null }>(
      `WITH c AS (
         SELECT id, owner AS previous FROM index_jobs
         WHERE state = 'queued' OR (state = 'running' AND lease_until < clock_timestamp())
         ORDER BY started_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
       UPDATE index_jobs j SET state = 'running', owner = $1, lease_until = clock_timestamp() + $2::double precision * interval '1 millisecond', runs = j.runs + 1
       FROM c WHERE j.id = c.id RETURNING j.id, c.previous`,
      [owner, leaseMs],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { job: (await this.get(row.id)) as StoredJob, previousOwner: row.previous };
  }

  /** Extends the lease and adds run time; false when the job is no longer ours (cancelled, taken over). */
  async renew(id: string, owner: string, leaseMs: number, addSeconds: number): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE index_jobs SET lease_until = clock_timestamp() + $3::double precision * interval '1 millisecond', seconds = seconds + $4::double precision
       WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING id`,
      [id, owner, leaseMs, addSeconds],
    );
    return r.rows.length > 0;
  }

  async setTotal(id: string, owner: string, total: number): Promise<void> {
    await this.db.query(`UPDATE index_jobs SET total = $3 WHERE id = $1 AND owner = $2`, [id, owner, total]);
  }

  /** One finished file; the last outcome recorded for a file wins (a file run again after a crash). */
  async record(id: string, file: string, kind: FileKind, message?: string): Promise<void> {
    await this.db.query(
      `INSERT INTO index_job_files (job_id, file, kind, message) VALUES ($1, $2, $3, $4)
       ON CONFLICT (job_id, file) DO UPDATE SET kind = EXCLUDED.kind, message = EXCLUDED.message`,
      [id, file, kind, message ?? null],
    );
  }

  /** Files of this job that are finished (what a resumed run skips). */
  async finishedFiles(id: string): Promise<Set<string>> {
    const r = await this.db.query<{ file: string }>(`SELECT file FROM index_job_files WHERE job_id = $1`, [id]);
    return new Set(r.rows.map((x) => x.file));
  }

  /**
   * Ends a run of `owner`: done, failed or cancelled for good, or `queued` again (the replica stops
   * and hands the job back, so another replica resumes it at once instead of after the lease).
   */
  async finish(id: string, owner: string, state: 'done' | 'failed' | 'cancelled' | 'queued', addSeconds: number, failure?: string): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE index_jobs SET state = $3, owner = NULL, lease_until = NULL, seconds = seconds + $4::double precision, failure = $5,
         finished_at = CASE WHEN $3 = 'queued' THEN NULL ELSE clock_timestamp() END
       WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING id`,
      [id, owner, state, addSeconds, failure ?? null],
    );
    return r.rows.length > 0;
  }

  /** Cancels a queued or running job (its owner sees it at its next renewal and stops). */
  async cancel(id: string): Promise<StoredJob | undefined> {
    if ((await this.get(id)) === undefined) return undefined;
    await this.db.query(
      `UPDATE index_jobs SET state = 'cancelled', owner = NULL, lease_until = NULL, finished_at = clock_timestamp()
       WHERE id = $1 AND state IN ('queued', 'running')`,
      [id],
    );
    return this.get(id);
  }

  /** Forgets finished jobs beyond the newest `keep` (their file rows go with them). */
  async prune(keep = KEEP_JOBS): Promise<void> {
    await this.db.query(
      `DELETE FROM index_jobs WHERE state IN ('done', 'cancelled', 'failed')
         AND id NOT IN (SELECT id FROM index_jobs ORDER BY started_at DESC LIMIT $1)`,
      [keep],
    );
  }
}
