/**
 * The express application: request id + logging, metrics, the routes, and the single error
 * handler. Built from already-created services so tests drive it with supertest, no port needed.
 */
import express from 'express';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { errorHandler, NotFoundError } from './errors.js';
import { requireToken } from './http.js';
import { loggerOf, requestContext } from './logging.js';
import type { Metrics } from './metrics.js';
import { oipRouter } from './oip.js';
import { openApiDocument } from './openapi.js';
import { publicDir } from './paths.js';
import type { Gallery, Inference, Jobs, Readiness } from './ports.js';
import { imageRoutes } from './routes/images.js';
import { inferenceRoutes } from './routes/inference.js';
import { jobRoutes } from './routes/jobs.js';
import { routeSchemas } from './schemas.js';

export interface AppServices {
  logger: Logger;
  metrics: Metrics;
  inference: Inference;
  gallery: Gallery;
  jobs: Jobs;
  readiness(): Readiness;
}

export type AppConfig = Pick<Config, 'bodyLimitBytes' | 'apiToken' | 'maxQueue' | 'protect' | 'maxJsonBytes'>;

/** Routes open even with SIGHTLINE_PROTECT=all: liveness and readiness probes carry no token. */
const HEALTH = new Set(['/healthz', '/v2/health/live', '/v2/health/ready']);

export function createApp(services: AppServices, config: AppConfig): Express {
  const { logger, metrics, inference, gallery, jobs } = services;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(logger));
  app.use(metrics.httpMiddleware);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  if (config.protect === 'all') {
    // The page's own files hold no data and a browser cannot send a bearer token when it opens
    // them; everything they call (and every other route, known or not) needs the token.
    app.use(express.static(publicDir(), { index: 'index.html', maxAge: '1h' }));
    const auth = requireToken(config.apiToken);
    app.use((req, res, next) => (HEALTH.has(req.path) ? next() : auth(req, res, next)));
  }
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument(inference.info));
  });
  app.get('/v1/info', async (_req, res) => {
    const r = services.readiness();
    res.json({ model: inference.info, index: { size: await gallery.size() }, ready: r.ready, reason: r.reason });
  });

  const schemas = routeSchemas({ labels: inference.info.labels, embedCrops: inference.embedCrops });
  app.use(inferenceRoutes(inference, schemas, { bodyLimitBytes: config.bodyLimitBytes }));
  app.use(imageRoutes(gallery, schemas, { bodyLimitBytes: config.bodyLimitBytes, apiToken: config.apiToken }));
  app.use(jobRoutes(jobs, schemas, { apiToken: config.apiToken }));
  app.use(oipRouter(inference, services.readiness, { maxItems: Math.max(1, config.maxQueue), maxJsonBytes: config.maxJsonBytes }));
  if (config.protect !== 'all') app.use(express.static(publicDir(), { index: 'index.html', maxAge: '1h' }));

  app.use((req, _res, next) => {
    next(new NotFoundError(`no route for ${req.method} ${req.path}`));
  });
  app.use(errorHandler({ bodyLimitBytes: config.bodyLimitBytes, getLogger: (req) => loggerOf(req, logger) }));
  return app;
}
