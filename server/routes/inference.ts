/** POST /v1/classify and POST /v1/embed: validate, call the inference service, shape the JSON. */
import { Router } from 'express';
import { codeToHex } from '../../index/index.js';
import { imageUpload, uploadOf } from '../http.js';
import type { Inference } from '../ports.js';
import { parseRoute, type RouteSchemas } from '../schemas.js';

export function inferenceRoutes(inference: Inference, schemas: RouteSchemas, opts: { bodyLimitBytes: number }): Router {
  const router = Router();
  const upload = imageUpload(opts.bodyLimitBytes);

  router.post('/v1/classify', upload, async (req, res) => {
    const { topk, crops } = parseRoute(schemas.classify, req).query;
    const { bytes } = uploadOf(req);
    res.json(await inference.classify(bytes, { topk, crops }));
  });

  router.post('/v1/embed', upload, async (req, res) => {
    const { format, crops } = parseRoute(schemas.embed, req).query;
    const { bytes } = uploadOf(req);
    const e = await inference.embed(bytes, { crops });
    const embedding =
      format === 'base64' ? Buffer.from(e.embedding.buffer, e.embedding.byteOffset, e.embedding.byteLength).toString('base64') : Array.from(e.embedding);
    res.json({
      embedding,
      format,
      dim: e.embedding.length,
      code: codeToHex(e.code),
      bits: e.bits,
      crops: e.crops,
      model: { name: inference.info.name, version: inference.info.version },
      timings_ms: e.timings_ms,
    });
  });
  return router;
}
