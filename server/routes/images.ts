/** Search and the indexed images: POST /v1/search, /v1/images (upload, get, similar, thumbnail, delete). */
import { Router } from 'express';
import type { Request } from 'express';
import { InvalidParameterError } from '../errors.js';
import { boolParam, imageUpload, intParam, requireToken, stringParam, uploadOf } from '../http.js';
import type { Gallery, SearchOptions } from '../ports.js';

export const K_MAX = 100;

function idParam(req: Request): number {
  const raw = req.params['id'];
  const id = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new InvalidParameterError('id', 'a positive integer', raw);
  return id;
}

/** `max_distance`: a plain non-negative decimal (fc7 Euclidean distance); absent → no cut-off. */
function maxDistanceParam(req: Request, rerank: boolean): number | undefined {
  const raw = stringParam(req, 'max_distance');
  if (raw === undefined) return undefined;
  const v = /^\d+(\.\d+)?(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(v)) throw new InvalidParameterError('max_distance', 'a finite number ≥ 0 (fc7 Euclidean distance)', raw);
  if (!rerank) throw new InvalidParameterError('max_distance', 'used with rerank=true (it bounds the embedding distance)', raw);
  return v;
}

function searchOptions(req: Request, labels: readonly string[]): SearchOptions {
  const k = intParam(req, 'k', 10, 1, K_MAX);
  const rerank = boolParam(req, 'rerank', true);
  const label = stringParam(req, 'label');
  if (label !== undefined && !labels.includes(label)) throw new InvalidParameterError('label', `one of the model's labels (${labels.join(', ')})`, label);
  const maxDistance = maxDistanceParam(req, rerank);
  return { k, rerank, ...(label === undefined ? {} : { label }), ...(maxDistance === undefined ? {} : { maxDistance }) };
}

export function imageRoutes(gallery: Gallery, opts: { bodyLimitBytes: number; apiToken: string | undefined; labels: readonly string[] }): Router {
  const router = Router();
  const upload = imageUpload(opts.bodyLimitBytes);
  const auth = requireToken(opts.apiToken);

  router.post('/v1/search', upload, async (req, res) => {
    const o = searchOptions(req, opts.labels);
    res.json({ results: await gallery.search(uploadOf(req).bytes, o) });
  });

  // Auth runs before the upload is read, so an unauthenticated client cannot make us buffer 20 MB.
  router.post('/v1/images', auth, upload, async (req, res) => {
    const { bytes, filename } = uploadOf(req);
    const { record, created } = await gallery.upload(bytes, filename);
    if (created) res.location(`/v1/images/${record.id}`);
    res.status(created ? 201 : 200).json({ ...record, created });
  });

  router.get('/v1/images/:id', (req, res) => {
    res.json(gallery.get(idParam(req)));
  });

  router.get('/v1/images/:id/similar', async (req, res) => {
    const id = idParam(req);
    res.json({ results: await gallery.similar(id, searchOptions(req, opts.labels)) });
  });

  router.get('/v1/images/:id/thumbnail', async (req, res) => {
    const webp = await gallery.thumbnail(idParam(req));
    // Immutable: ids are never reused for other bytes (idempotent by SHA-256, deletes retire the id).
    res.type('image/webp').setHeader('Cache-Control', 'public, max-age=86400, immutable');
    res.send(webp);
  });

  router.delete('/v1/images/:id', auth, async (req, res) => {
    await gallery.remove(idParam(req));
    res.status(204).end();
  });
  return router;
}
