/**
 * Builds every service from the config, in dependency order, and tears them down in reverse:
 * model session → codes model → catalog (checked against both models' hashes) → inference with
 * its batcher → gallery, indexing, jobs. Shared by `serve`, `index`, `search`, tests and the bench.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { IndexModelMismatchError, jobQueueOf, openBackend, recordedCodesHashAt } from '../../index/index.js';
import type { CatalogBackend } from '../../index/index.js';
import { createSession, sha256File, fallbackCodesName } from '../../model/index.js';
import type { Config } from '../config.js';
import { JobManager } from '../jobs.js';
import { SharedJobManager } from '../jobs-shared.js';
import { createMetrics } from '../metrics.js';
import type { Metrics } from '../metrics.js';
import type { Readiness } from '../ports.js';
import { FALLBACK_ADVICE, resolveCodes } from './codes.js';
import { GalleryService } from './gallery.js';
import { IndexingService, type Outcome } from './indexing.js';
import { reconcileFiles } from './reconcile.js';
import { InferenceService } from './inference.js';
import { resolveRoots } from './walk.js';

export interface Runtime {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly catalog: CatalogBackend;
  readonly inference: InferenceService;
  readonly gallery: GalleryService;
  readonly indexing: IndexingService;
  /** DATA/jobs.json for a SQLite catalog; the database's job queue, shared by replicas, for PostgreSQL. */
  readonly jobs: JobManager | SharedJobManager;
  readonly modelHash: string;
  readiness(): Readiness;
  setReadiness(r: Readiness): void;
  /** Stops jobs (with a checkpoint), drains the batcher, releases the sessions, closes the catalog. */
  close(): Promise<void>;
}

/** Largest file an indexing job reads: far above any photo, far below what would hurt memory. */
const MAX_INDEX_FILE_BYTES = 256 * 1024 * 1024;
/** Age after which a temp or row-less upload in a shared blob folder is a leftover, not a write under way. */
const SHARED_LEFTOVER_MS = 60 * 60 * 1000;


export interface RuntimeOptions {
  metrics?: Metrics;
  /**
   * Open the index read-only (default false): an existing database only, no lock, no writes, so a
   * CLI `search` works beside a running server. Jobs are neither resumed nor saved.
   */
  readOnly?: boolean;
}

export async function createRuntime(config: Config, logger: Logger, opts: RuntimeOptions = {}): Promise<Runtime> {
  const session = await createSession(config.modelPath, { device: config.device, ...(config.threads > 0 ? { threads: config.threads } : {}), logger, worker: config.inferenceWorker, spin: config.inferenceSpin });
  const cleanup: (() => Promise<void> | void)[] = [() => session.close()];
  try {
    const embeddingDim = session.contract.embeddingDim;
    const modelHash = await sha256File(config.modelPath);
    const { codes, codesHash } = await resolveCodes(config.codesPath, modelHash, embeddingDim, {
      recorded: await recordedCodesHashAt(config.database),
      onFallback: (reason) => logger.warn({ reason, code: fallbackCodesName() }, FALLBACK_ADVICE),
    });
    cleanup.push(() => codes.close());
    const catalog = await openBackend(config.database, {
      bits: codes.bits,
      embeddingDim,
      modelHash,
      codesHash,
      readOnly: opts.readOnly ?? false,
      poolSize: config.databasePool,
      onSaveError: (err) => logger.warn({ err }, 'saving the HNSW graph failed; will retry'),
    });
    cleanup.push(() => catalog.close());
    // Repairs and losses found at open are warnings: someone should know that data was touched.
    for (const w of catalog.openReport.warnings) logger.warn(w);
    if (catalog.openReport.removedTemps.length > 0) logger.warn({ files: catalog.openReport.removedTemps }, 'removed temp files of an interrupted index save');
    if (catalog.openReport.rebuilt) logger.warn({ reason: catalog.openReport.reason }, 'HNSW graph rebuilt from SQLite');
    if (catalog.kind === 'postgres') logger.info({ database: catalog.location }, 'catalog in PostgreSQL');
    const metrics = opts.metrics ?? createMetrics();
    const inference = new InferenceService(session, codes, {
      maxBatch: config.maxBatch,
      maxDelayMs: config.maxDelayMs,
      maxQueue: config.maxQueue,
      requestTimeoutMs: config.requestTimeoutMs,
      maxPixels: config.maxPixels,
      inflight: config.inferenceInflight,
      decodeConcurrency: config.decodeConcurrency,
      observer: metrics.batcherObserver,
    });
    const gallery = new GalleryService(catalog, inference, { blobDir: config.blobDir, thumbnailSize: config.thumbnailSize, indexRoots: config.indexRoots });
    if (!opts.readOnly) {
      // Leftovers of a crash or a full disk: temp files, and uploads whose row was never committed.
      // A blob folder that replicas may share (SIGHTLINE_BLOB_DIR, or any PostgreSQL catalog): leave
      // their writes under way alone, only leftovers older than any write are removed.
      const shared = config.blobDir !== config.dataDir || config.database.kind === 'postgres';
      const fixed = await reconcileFiles(config.blobDir, async (sha) => (await catalog.findBySha256(sha)) !== undefined, shared ? { minAgeMs: SHARED_LEFTOVER_MS } : {});
      if (fixed.temps + fixed.orphanUploads > 0) logger.warn(fixed, 'removed partial files and uploads without a database row (an interrupted write)');
    }
    const indexing = new IndexingService(gallery, { maxFileBytes: MAX_INDEX_FILE_BYTES });
    const { roots, missing } = await resolveRoots(config.indexRoots);
    if (missing.length > 0) logger.warn({ missing }, 'allowed index roots that do not exist are ignored');
    const queue = jobQueueOf(catalog);
    const jobOptions = { roots, concurrency: config.jobConcurrency, logger, onFile: (o: Outcome['kind']) => metrics.jobFile(o) };
    const jobs = queue ? new SharedJobManager(queue, indexing, { ...jobOptions, leaseMs: config.jobLeaseMs }) : new JobManager(indexing, { ...jobOptions, stateFile: join(config.dataDir, 'jobs.json') });
    metrics.setSources({
      queueDepth: (p) => inference.batcher.depth(p),
      indexSize: () => gallery.size(),
      jobs: () => jobs.list(),
    });
    let readiness: Readiness = { ready: false, reason: 'golden check pending' };
    let closed = false;
    const database = watchDatabase(catalog, logger);
    return {
      config,
      logger,
      metrics,
      catalog,
      inference,
      gallery,
      indexing,
      jobs,
      modelHash,
      readiness: () => (readiness.ready ? (database.problem() ?? readiness) : readiness),
      setReadiness(r) {
        readiness = r;
      },
      async close() {
        if (closed) return;
        closed = true;
        database.stop();
        readiness = { ready: false, reason: 'shutting down' };
        if (!opts.readOnly) await jobs.shutdown();
        await inference.close();
        await catalog.close();
      },
    };
  } catch (err) {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
    throw err;
  }
}

/** How often a replica checks that its shared database answers (readiness). */
const DATABASE_PING_MS = 2000;

/**
 * A database catalog can go away under a running replica: readiness then fails, with the reason,
 * so a load balancer sends requests elsewhere until it answers again; so can its model (another
 * process reindexed it). A local SQLite file cannot do either under a running server (its lock).
 */
function watchDatabase(catalog: CatalogBackend, logger: Logger): { problem(): Readiness | undefined; stop(): void } {
  if (catalog.kind === 'sqlite') return { problem: () => undefined, stop: () => undefined };
  let problem: Readiness | undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    catalog
      .ping()
      .then(
        () => {
          if (problem) logger.info({ database: catalog.location }, 'database reachable again');
          problem = undefined;
        },
        (err: unknown) => {
          // A reindex switched the catalog to another model (index/pg/reembed.ts): restart with it.
          const what = err instanceof IndexModelMismatchError ? 'catalog reindexed for another model' : 'database unreachable';
          if (!problem) logger.warn({ database: catalog.location, err: (err as Error).message }, `${what}: not ready`);
          problem = { ready: false, reason: `${what}: ${(err as Error).message}` };
        },
      )
      .finally(() => (busy = false));
  }, DATABASE_PING_MS);
  timer.unref();
  return { problem: () => problem, stop: () => clearInterval(timer) };
}
