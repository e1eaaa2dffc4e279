/**
 * Public surface of server/, and `startServer`: runtime + app + listening socket, the start-up
 * sequence (golden check, demo gallery, resumed jobs) and the graceful stop used on SIGTERM.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server, ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { createLogger } from './logging.js';
import { setHeapGrowing } from './heap.js';
import { createRuntime } from './services/runtime.js';
import type { Runtime } from './services/runtime.js';
import { checkGolden, indexDemoGallery } from './services/startup.js';

export { createApp } from './app.js';
export type { AppConfig, AppServices } from './app.js';
export { Batcher } from './batcher.js';
export type { BatcherOptions, BatchRunFn, Priority } from './batcher.js';
export { configSchema, loadConfig } from './config.js';
export type { Config, ConfigInput } from './config.js';
export * from './errors.js';
export { createLogger } from './logging.js';
export { createMetrics } from './metrics.js';
export type * from './ports.js';
export { createRuntime } from './services/runtime.js';
export type { Runtime } from './services/runtime.js';
export { checkGolden, indexDemoGallery } from './services/startup.js';
export { walkFiles, checkJobPath } from './services/walk.js';
export { Progress } from './services/progress.js';
export { packageRoot } from './paths.js';
export { reembedWithModel } from './services/reembed.js';
export type { Outcome } from './services/indexing.js';

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  readonly runtime: Runtime;
  /** Warm-up at the largest batch, golden check, demo gallery and job resumption, in that order. */
  readonly startup: Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), checkpoints jobs, closes everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Node closes a connection whose headers take longer than headersTimeout, or whose whole request
 * takes longer than requestTimeout (slow-loris clients trickling bytes), but only checks every
 * connectionsCheckingInterval (30 s by default): a tenth of the headers timeout keeps the overshoot small.
 */
export function httpServerOptions(config: Pick<Config, 'headersTimeoutMs' | 'httpRequestTimeoutMs'>): ServerOptions {
  return {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 10))),
  };
}

export async function startServer(config: Config, opts: { logger?: Logger } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  setHeapGrowing(config.heapGrowingPercent);
  const rt = await createRuntime(config, logger);
  const app = createApp({ logger, metrics: rt.metrics, inference: rt.inference, gallery: rt.gallery, jobs: rt.jobs, readiness: rt.readiness }, config);
  const server = createServer(httpServerOptions(config), app);
  server.listen(config.port, config.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    await rt.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, model: rt.inference.info.name, provider: rt.inference.info.provider, images: await rt.gallery.size() }, 'listening');

  const stop = new AbortController();
  const startup = (async () => {
    await rt.inference.warmUp();
    rt.setReadiness(await checkGolden(rt));
    if (config.demo && !stop.signal.aborted) await indexDemoGallery(rt, { signal: stop.signal });
    if (!stop.signal.aborted) rt.jobs.resumeInterrupted();
  })().catch((err: unknown) => logger.error({ err }, 'start-up tasks failed'));

  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> => {
    closing ??= (async () => {
      logger.info('shutting down: no new connections, finishing in-flight requests');
      stop.abort();
      rt.setReadiness({ ready: false, reason: 'shutting down' });
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      // Jobs stop in parallel: their in-flight files finish, then they checkpoint.
      await Promise.all([drained, rt.jobs.shutdown()]);
      clearTimeout(timer);
      await startup;
      await rt.close();
      logger.info('shut down cleanly');
    })();
    return closing;
  };
  return { url, server, runtime: rt, startup, close };
}
