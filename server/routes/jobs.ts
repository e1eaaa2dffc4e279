/** Server-side indexing jobs: POST /v1/jobs/index, GET /v1/jobs[/:id], DELETE /v1/jobs/:id (write routes need the token). */
import { Router } from 'express';
import { BadRequestError, InvalidParameterError } from '../errors.js';
import { requireToken } from '../http.js';
import { jsonBody } from '../json-body.js';

/** A job body is a folder path and a flag: far below any JSON limit. */
const JOB_BODY_BYTES = 64 * 1024;
import type { Jobs } from '../ports.js';

function jobBody(body: unknown): { path: string; recursive: boolean } {
  if (typeof body !== 'object' || body === null) throw new BadRequestError(`request body must be JSON like {"path": "/photos", "recursive": true}`);
  const { path, recursive } = body as { path?: unknown; recursive?: unknown };
  if (typeof path !== 'string' || path.length === 0 || path.length > 4096) throw new InvalidParameterError('path', 'a non-empty folder path', path);
  if (path.includes('\0')) throw new InvalidParameterError('path', 'a folder path without NUL characters', path);
  if (recursive !== undefined && typeof recursive !== 'boolean') throw new InvalidParameterError('recursive', 'true or false', recursive);
  return { path, recursive: recursive ?? true };
}

export function jobRoutes(jobs: Jobs, opts: { apiToken: string | undefined }): Router {
  const router = Router();
  const auth = requireToken(opts.apiToken);

  router.post('/v1/jobs/index', auth, jsonBody(JOB_BODY_BYTES, { limitSource: 'a job request is a folder path' }), async (req, res) => {
    const { path, recursive } = jobBody(req.body);
    const job = await jobs.start(path, recursive);
    res.status(202).location(`/v1/jobs/${job.id}`).json(job);
  });
  router.get('/v1/jobs', (_req, res) => {
    res.json({ jobs: jobs.list() });
  });
  router.get('/v1/jobs/:id', (req, res) => {
    res.json(jobs.get(String(req.params['id'])));
  });
  router.delete('/v1/jobs/:id', auth, (req, res) => {
    res.json(jobs.cancel(String(req.params['id'])));
  });
  return router;
}
