/** Server-side indexing jobs: POST /v1/jobs/index, GET /v1/jobs[/:id], DELETE /v1/jobs/:id (write routes need the token). */
import { Router } from 'express';
import { requireToken } from '../http.js';
import { jsonBody } from '../json-body.js';
import type { Jobs } from '../ports.js';
import { parseRoute, type RouteSchemas } from '../schemas.js';

/** A job body is a folder path and a flag: far below any JSON limit. */
const JOB_BODY_BYTES = 64 * 1024;

export function jobRoutes(jobs: Jobs, schemas: RouteSchemas, opts: { apiToken: string | undefined }): Router {
  const router = Router();
  const auth = requireToken(opts.apiToken);

  router.post('/v1/jobs/index', auth, jsonBody(JOB_BODY_BYTES, { limitSource: 'a job request is a folder path' }), async (req, res) => {
    const { path, recursive } = parseRoute(schemas.startJob, req).body;
    const job = await jobs.start(path, recursive);
    res.status(202).location(`/v1/jobs/${job.id}`).json(job);
  });
  router.get('/v1/jobs', async (_req, res) => {
    res.json({ jobs: await jobs.list() });
  });
  router.get('/v1/jobs/:id', async (req, res) => {
    res.json(await jobs.get(String(req.params['id'])));
  });
  router.delete('/v1/jobs/:id', auth, async (req, res) => {
    res.json(await jobs.cancel(String(req.params['id'])));
  });
  return router;
}
