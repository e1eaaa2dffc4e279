/**
 * Open Inference Protocol (KServe v2 REST, as Triton serves it) over the loaded model:
 * server/model metadata, liveness/readiness and `infer` with FP32 [N, C, H, W] in, `logits` and
 * `embedding` out. Errors are `{ "error": "..." }` (errors.ts formats every /v2 path that way).
 */
import express, { Router } from 'express';
import type { Request } from 'express';
import { BadRequestError, NotFoundError, ServiceUnavailableError } from './errors.js';
import { jsonBody, sendJsonChunked } from './json-body.js';
import type { Inference, Readiness } from './ports.js';

export const SERVER_NAME = 'sightline';
export const SERVER_VERSION = '0.1.0';

interface TensorIn {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown;
}

/**
 * Flattens `data` (flat or nested, per the protocol) into `out` and returns how many numbers it
 * held. Iterative with an explicit stack, so a hostile nesting depth cannot overflow the call stack;
 * nesting deeper than the declared shape's rank is refused before anything is walked further.
 * Every value must be a number that float32 holds finitely (1e308 or a JSON 1e400 would turn into
 * Infinity and come back as `null` logits).
 */
export function flattenTensor(name: string, data: unknown, out: Float32Array, rank: number): number {
  if (typeof data === 'number') return writeValue(name, data, out, 0);
  if (!Array.isArray(data)) throw new BadRequestError(`input '${name}' data must be numbers or nested arrays of numbers, got ${typeof data}`);
  const stack: { a: unknown[]; i: number }[] = [{ a: data, i: 0 }];
  let count = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { a: unknown[]; i: number };
    if (top.i >= top.a.length) {
      stack.pop();
      continue;
    }
    const v = top.a[top.i++];
    if (typeof v === 'number') count = writeValue(name, v, out, count);
    else if (Array.isArray(v)) {
      if (stack.length >= rank) throw new BadRequestError(`input '${name}' data is nested deeper than its shape's ${rank} dimensions`);
      stack.push({ a: v, i: 0 });
    } else throw new BadRequestError(`input '${name}' data must be numbers or nested arrays of numbers, got ${v === null ? 'null' : typeof v} at value ${count}`);
  }
  return count;
}

function writeValue(name: string, v: number, out: Float32Array, at: number): number {
  if (at < out.length) {
    out[at] = v;
    if (!Number.isFinite(out[at])) throw new BadRequestError(`input '${name}' value ${at} is ${String(v)}: not a finite float32 number (|x| ≤ 3.4028235e38)`);
  }
  return at + 1;
}

function parseTensor(body: unknown): TensorIn {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { inputs?: unknown }).inputs)) {
    throw new BadRequestError(`request body must be a JSON object with an 'inputs' array`);
  }
  const inputs = (body as { inputs: unknown[] }).inputs;
  if (inputs.length !== 1) throw new BadRequestError(`expected exactly 1 input tensor, got ${inputs.length}`);
  const t = inputs[0] as Partial<TensorIn> | null;
  if (typeof t !== 'object' || t === null) throw new BadRequestError(`input 0 must be an object with name, shape, datatype and data`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new BadRequestError(`input 'shape' must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  return { name: String(t.name), shape: t.shape, datatype: String(t.datatype), data: t.data };
}

/** Outputs the client asked for (all when omitted), validated against what the model has. */
function requestedOutputs(body: unknown, available: readonly string[]): string[] {
  const outs = (body as { outputs?: unknown }).outputs;
  if (outs === undefined) return [...available];
  if (!Array.isArray(outs)) throw new BadRequestError(`'outputs' must be an array, got ${typeof outs}`);
  return outs.map((o) => {
    const name = typeof o === 'object' && o !== null ? (o as { name?: unknown }).name : undefined;
    if (typeof name !== 'string' || !available.includes(name)) {
      throw new BadRequestError(`unexpected inference output '${String(name)}' for model: expected one of ${available.join(', ')}`);
    }
    return name;
  });
}

export function oipRouter(inference: Inference, readiness: () => Readiness, opts: { maxItems: number; maxJsonBytes: number }): Router {
  const router = Router();
  const info = inference.info;
  const [c, h, w] = info.inputShape;
  const itemSize = c * h * w;

  const model = (req: Request): void => {
    const name = req.params['name'];
    if (name !== info.name) throw new NotFoundError(`Request for unknown model: '${String(name)}' is not found (this server has '${info.name}')`);
    const version = req.params['version'];
    if (version !== undefined && version !== info.version) throw new NotFoundError(`Request for unknown model: '${info.name}' version ${version} is not found`);
  };

  router.get('/v2', (_req, res) => {
    res.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] });
  });
  router.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  router.get('/v2/health/ready', (_req, res) => {
    const r = readiness();
    res.status(r.ready ? 200 : 503).json({ ready: r.ready });
  });

  const metadata = (req: Request, res: express.Response): void => {
    model(req);
    res.json({
      name: info.name,
      versions: [info.version],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: info.io.input, datatype: 'FP32', shape: [-1, c, h, w] }],
      outputs: [
        { name: info.io.logits, datatype: 'FP32', shape: [-1, info.labels.length] },
        { name: info.io.embedding, datatype: 'FP32', shape: [-1, info.embeddingDim] },
      ],
      parameters: { labels: info.labels, provider: info.provider },
    });
  };
  router.get('/v2/models/:name', metadata);
  router.get('/v2/models/:name/versions/:version', metadata);

  const ready = (req: Request, res: express.Response): void => {
    model(req);
    const r = readiness();
    res.status(r.ready ? 200 : 503).json({ name: info.name, ready: r.ready });
  };
  router.get('/v2/models/:name/ready', ready);
  router.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (req: Request, res: express.Response): Promise<void> => {
    model(req);
    if (!readiness().ready) throw new ServiceUnavailableError('not_ready', `model '${info.name}' is not ready: ${readiness().reason}`);
    const body: unknown = req.body;
    const t = parseTensor(body);
    const outputs = requestedOutputs(body, [info.io.logits, info.io.embedding]);
    if (t.name !== info.io.input) throw new BadRequestError(`unexpected inference input '${t.name}' for model '${info.name}': expected '${info.io.input}'`);
    if (t.datatype !== 'FP32') throw new BadRequestError(`input '${t.name}' datatype must be FP32, got ${t.datatype}`);
    const [n, ...chw] = t.shape;
    if (t.shape.length !== 4 || chw[0] !== c || chw[1] !== h || chw[2] !== w) {
      throw new BadRequestError(`input '${t.name}' shape must be [N, ${c}, ${h}, ${w}], got [${t.shape.join(', ')}]`);
    }
    if (n === undefined || n < 1 || n > opts.maxItems) throw new BadRequestError(`input '${t.name}' batch size must be in [1, ${opts.maxItems}], got ${String(n)}`);
    const input = new Float32Array(n * itemSize);
    const count = flattenTensor(t.name, t.data, input, t.shape.length);
    if (count !== input.length) throw new BadRequestError(`input '${t.name}' has ${count} values, shape [${t.shape.join(', ')}] needs ${input.length}`);
    const out = await inference.infer(input, n);
    const id = (body as { id?: unknown }).id;
    await sendJsonChunked(res, {
      model_name: info.name,
      model_version: info.version,
      ...(typeof id === 'string' ? { id } : {}),
      outputs: outputs.map((name) => {
        const isLogits = name === info.io.logits;
        const data = isLogits ? out.logits : out.embedding;
        return { name, datatype: 'FP32', shape: [n, isLogits ? info.labels.length : info.embeddingDim], data };
      }),
    });
  };
  const json = jsonBody(opts.maxJsonBytes);
  router.post('/v2/models/:name/infer', json, infer);
  router.post('/v2/models/:name/versions/:version/infer', json, infer);
  return router;
}
