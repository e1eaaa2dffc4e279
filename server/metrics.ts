/**
 * Prometheus metrics (prom-client) on a registry of our own, so that several apps in one process
 * (tests, the benchmark) do not collide on the global one. Gauges that mirror live state (queue
 * depth, index size, jobs by state) are read at scrape time through `collect` callbacks.
 *
 * Names follow Prometheus conventions so that standard dashboards find them: the process and
 * Node.js metrics keep their usual unprefixed names (`process_cpu_seconds_total`, `nodejs_*`),
 * counters end in `_total`, durations are `_seconds` histograms, and no label takes unbounded
 * values (jobs are counted by state and file outcome, never by job id). `promtool check metrics`
 * finds nothing to warn about (tests/server/promtool.test.ts).
 */
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatcherObserver } from './batcher.js';

export interface MetricSources {
  queueDepth(priority: 'interactive' | 'background'): number;
  indexSize(): Promise<number>;
  /** The state of each known job (the job manager keeps the last 100). */
  jobs(): readonly { state: string }[] | Promise<readonly { state: string }[]>;
}

/** How one file of an indexing job ended (the indexing service's outcome kinds). */
export type JobFileOutcome = 'added' | 'duplicate' | 'not_image' | 'failed';

export interface Metrics {
  readonly registry: Registry;
  readonly batcherObserver: BatcherObserver;
  /** Counts each file an indexing job finished, by outcome. */
  jobFile(outcome: JobFileOutcome): void;
  /** Route-level request count and latency; needs `req.route` resolved, so it hooks `finish`. */
  readonly httpMiddleware: RequestHandler;
  setSources(sources: MetricSources): void;
}

/**
 * prom-client's default collectors export three gauges named `_total` (`nodejs_active_handles_total`,
 * `nodejs_active_requests_total`, `nodejs_active_resources_total`); promtool flags a `_total` name on
 * anything but a counter. They are dropped: the same counts stay available, by type, in the
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources` gauges (sum them).
 */
const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 10, 16, 20, 24, 30, 32, 48, 64, 128];

/** The matched route pattern (bounded cardinality), never the raw URL. */
function routeLabel(req: { baseUrl?: string; route?: { path?: unknown } }): string {
  const path = req.route?.path;
  if (typeof path === 'string') return `${req.baseUrl ?? ''}${path}`;
  return 'unmatched';
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  }
  let sources: MetricSources | undefined;

  const requests = new Counter({ name: 'sightline_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [registry] });
  const latency = new Histogram({
    name: 'sightline_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchSize = new Histogram({ name: 'sightline_inference_batch_size', help: 'Crops per onnxruntime run', buckets: BATCH_BUCKETS, registers: [registry] });
  const batchSeconds = new Histogram({ name: 'sightline_inference_batch_seconds', help: 'Duration of one onnxruntime run', buckets: LATENCY_BUCKETS, registers: [registry] });
  const queueWait = new Histogram({
    name: 'sightline_queue_wait_seconds',
    help: 'Time a request waited before its first crop ran, by priority',
    labelNames: ['priority'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const rejected = new Counter({ name: 'sightline_queue_rejected_total', help: 'Requests turned away by the batcher (503)', labelNames: ['reason'] as const, registers: [registry] });
  new Gauge({
    name: 'sightline_queue_depth',
    help: 'Crops waiting for inference, by priority',
    labelNames: ['priority'] as const,
    registers: [registry],
    collect() {
      if (!sources) return;
      this.set({ priority: 'interactive' }, sources.queueDepth('interactive'));
      this.set({ priority: 'background' }, sources.queueDepth('background'));
    },
  });
  new Gauge({
    name: 'sightline_index_images',
    help: 'Images in the similarity index',
    registers: [registry],
    async collect() {
      // A catalog that cannot answer (a database down) keeps the last value; readiness reports it.
      const n = sources ? await sources.indexSize().catch(() => undefined) : undefined;
      if (n !== undefined) this.set(n);
    },
  });
  new Gauge({
    name: 'sightline_jobs',
    help: 'Indexing jobs the server remembers, by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>(JOB_STATES.map((st) => [st, 0]));
      for (const j of (await sources?.jobs()) ?? []) counts.set(j.state, (counts.get(j.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  const jobFiles = new Counter({
    name: 'sightline_job_files_total',
    help: 'Files finished by indexing jobs since the server started, by outcome (added, duplicate, not_image, failed)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  const httpMiddleware: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const labels = { route: routeLabel(req), method: req.method, status: String(res.statusCode) };
      requests.inc(labels);
      latency.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };

  return {
    registry,
    httpMiddleware,
    setSources(s) {
      sources = s;
    },
    jobFile(outcome) {
      jobFiles.inc({ outcome });
    },
    batcherObserver: {
      batch(n, seconds) {
        batchSize.observe(n);
        batchSeconds.observe(seconds);
      },
      wait(seconds, priority) {
        queueWait.observe({ priority }, seconds);
      },
      rejected(reason) {
        rejected.inc({ reason });
      },
    },
  };
}
