/** Search and the indexed images: POST /v1/search, /v1/images (list, upload, get, similar, thumbnail, delete), GET /v1/duplicates. */
import { Router } from 'express';
import { imageUpload, requireToken, uploadOf } from '../http.js';
import type { Gallery, SearchOptions } from '../ports.js';
import { encodeCursor } from '../cursor.js';
import { parseRoute, type RouteSchemas } from '../schemas.js';

function searchOptions(q: { k: number; rerank: boolean; label?: string | undefined; max_distance?: number | undefined }): SearchOptions {
  return { k: q.k, rerank: q.rerank, ...(q.label === undefined ? {} : { label: q.label }), ...(q.max_distance === undefined ? {} : { maxDistance: q.max_distance }) };
}

export function imageRoutes(gallery: Gallery, schemas: RouteSchemas, opts: { bodyLimitBytes: number; apiToken: string | undefined }): Router {
  const router = Router();
  const upload = imageUpload(opts.bodyLimitBytes);
  const auth = requireToken(opts.apiToken);
  const idOf = (req: Parameters<typeof parseRoute>[1]): number => parseRoute(schemas.image, req).params.id;

  router.post('/v1/search', upload, async (req, res) => {
    const o = searchOptions(parseRoute(schemas.search, req).query);
    res.json({ results: await gallery.search(uploadOf(req).bytes, o) });
  });

  // Auth runs before the upload is read, so an unauthenticated client cannot make us buffer 20 MB.
  router.post('/v1/images', auth, upload, async (req, res) => {
    const { bytes, filename } = uploadOf(req);
    const { record, created } = await gallery.upload(bytes, filename);
    if (created) res.location(`/v1/images/${record.id}`);
    res.status(created ? 201 : 200).json({ ...record, created });
  });

  router.get('/v1/images', async (req, res) => {
    const q = parseRoute(schemas.listImages, req).query;
    const page = await gallery.list({ limit: q.limit, ...(q.cursor ? { afterId: q.cursor } : {}), ...(q.label ? { label: q.label } : {}), ...(q.unknown === undefined ? {} : { unknown: q.unknown }) });
    res.json({ images: page.images, next_cursor: page.lastId === null ? null : encodeCursor('images', page.lastId) });
  });

  router.get('/v1/duplicates', async (req, res) => {
    const q = parseRoute(schemas.duplicates, req).query;
    const page = await gallery.duplicates({
      limit: q.limit,
      neighbours: q.neighbours,
      ...(q.cursor ? { afterId: q.cursor } : {}),
      ...(q.max_relative_distance === undefined ? {} : { maxRelativeDistance: q.max_relative_distance }),
      ...(q.max_distance === undefined ? {} : { maxDistance: q.max_distance }),
    });
    res.json({ groups: page.groups, total: page.total, next_cursor: page.lastId === null ? null : encodeCursor('groups', page.lastId) });
  });

  router.get('/v1/images/:id', async (req, res) => {
    res.json(await gallery.get(idOf(req)));
  });

  router.get('/v1/images/:id/similar', async (req, res) => {
    const { params, query } = parseRoute(schemas.similar, req);
    res.json({ results: await gallery.similar(params.id, searchOptions(query)) });
  });

  router.get('/v1/images/:id/thumbnail', async (req, res) => {
    const webp = await gallery.thumbnail(idOf(req));
    // Immutable: ids are never reused for other bytes (idempotent by SHA-256, deletes retire the id).
    res.type('image/webp').setHeader('Cache-Control', 'public, max-age=86400, immutable');
    res.send(webp);
  });

  router.delete('/v1/images/:id', auth, async (req, res) => {
    await gallery.remove(idOf(req));
    res.status(204).end();
  });
  return router;
}
