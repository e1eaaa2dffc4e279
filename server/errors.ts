/**
 * Typed HTTP errors and the one place where any thrown error becomes a response:
 * `{ error: { code, message } }` on /v1 and the rest, `{ error: message }` on the Open Inference
 * Protocol routes (/v2, as Triton answers). Errors from model/ and index/ are mapped by the
 * `status` and `code` they carry, so this file does not import their classes. Stacks stay in the logs.
 */
import type { ErrorRequestHandler, Request } from 'express';
import type { Logger } from 'pino';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After on 503. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string, code = 'bad_request') {
    super(400, code, message);
  }
}

/** A query or body parameter out of range: the message names the parameter and the value. */
export class InvalidParameterError extends HttpError {
  constructor(readonly param: string, expected: string, value: unknown) {
    super(400, 'invalid_parameter', `'${param}' must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
  }
}

export class UnauthorizedError extends HttpError {
  constructor(message = 'a valid bearer token is required (Authorization: Bearer <SIGHTLINE_API_TOKEN>)') {
    super(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer' });
  }
}

export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

export class ConflictError extends HttpError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

/**
 * 410: the resource named exists (an indexed image) but what it is derived from is gone or has
 * changed for good, e.g. a thumbnail whose source file was deleted, replaced or swapped for a
 * symlink since indexing. Not 404 (GET /v1/images/:id still answers), not 5xx (retrying cannot help).
 */
export class GoneError extends HttpError {
  constructor(message: string, code = 'gone') {
    super(410, code, message);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}

export class UnsupportedContentTypeError extends HttpError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

/** 503 with Retry-After in whole seconds (at least 1), for a full queue or a request timeout. */
export class ServiceUnavailableError extends HttpError {
  constructor(code: 'overloaded' | 'timeout' | 'not_ready' | 'shutting_down', message: string, readonly retryAfterS = 1) {
    super(503, code, message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) });
  }
}

/** Bad configuration found at start-up (not an HTTP error: the server does not start). */
export class ConfigError extends Error {
  readonly code = 'config';
  readonly status = 500;
  override readonly name = 'ConfigError';
}

export interface ErrorBody {
  status: number;
  code: string;
  message: string;
  headers: Readonly<Record<string, string>>;
  /** Whether the message is safe to show the client (500s say only "internal error"). */
  expose: boolean;
}

function snake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();
}

const MULTER_STATUS: Readonly<Record<string, number>> = { LIMIT_FILE_SIZE: 413, LIMIT_PART_COUNT: 413, LIMIT_FIELD_VALUE: 413 };

/** Any thrown value → status, code and message. Pure, so it is unit-tested directly. */
export function describeError(err: unknown, bodyLimitBytes?: number): ErrorBody {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message, headers: err.headers, expose: true };
  if (err instanceof Error) {
    const e = err as Error & { status?: unknown; statusCode?: unknown; code?: unknown; type?: unknown; field?: unknown };
    // multer: MulterError has a `code` such as LIMIT_FILE_SIZE and no status.
    if (e.name === 'MulterError' && typeof e.code === 'string') {
      const status = MULTER_STATUS[e.code] ?? 400;
      const limit = e.code === 'LIMIT_FILE_SIZE' && bodyLimitBytes ? ` (limit ${bodyLimitBytes} bytes)` : '';
      return { status, code: status === 413 ? 'payload_too_large' : 'bad_multipart', message: `multipart upload: ${e.message}${limit}`, headers: {}, expose: true };
    }
    // body-parser / raw-body: `type` like 'entity.too.large', `status` 4xx.
    if (typeof e.type === 'string' && typeof e.status === 'number') {
      if (e.type === 'entity.too.large') {
        return { status: 413, code: 'payload_too_large', message: `request body exceeds the limit of ${bodyLimitBytes ?? '?'} bytes`, headers: {}, expose: true };
      }
      if (e.status >= 400 && e.status < 500) return { status: e.status, code: snake(e.type), message: e.message, headers: {}, expose: true };
    }
    // A full disk or quota, raw from fs or SQLite (index/ and the services wrap it as storage_full).
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'SQLITE_FULL') {
      return { status: 507, code: 'insufficient_storage', message: 'the server has no storage space left; nothing was stored, retry after space is freed', headers: {}, expose: true };
    }
    // model/ and index/ errors: a typed class carrying `status` and `code`.
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    if (status !== undefined && status >= 400 && status < 600) {
      const code = typeof e.code === 'string' ? snake(e.code) : snake(e.name.replace(/Error$/, '')) || 'error';
      // 507 (storage full) says nothing about the server's internals and tells the client what happened.
      const expose = status < 500 || status === 507;
      return { status, code, message: expose ? e.message : 'internal error', headers: {}, expose };
    }
  }
  return { status: 500, code: 'internal', message: 'internal error', headers: {}, expose: false };
}

/** Open Inference Protocol status: Triton answers client errors with 400 and `{ error }`. */
function oipStatus(status: number): number {
  if (status === 401 || status === 413 || status === 503 || status === 507) return status;
  return status >= 500 ? 500 : 400;
}

export function isOipPath(req: Request): boolean {
  return req.path === '/v2' || req.path.startsWith('/v2/');
}

/** The single error-handling middleware; `getLogger` gives the request's child logger. */
export function errorHandler(opts: { bodyLimitBytes: number; getLogger: (req: Request) => Logger }): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const d = describeError(err, opts.bodyLimitBytes);
    const log = opts.getLogger(req);
    if (d.status === 507) log.warn({ reason: d.message }, 'request failed: storage full');
    else if (d.status >= 500 && d.code !== 'overloaded' && d.code !== 'timeout' && d.code !== 'not_ready' && d.code !== 'shutting_down') log.error({ err }, 'request failed');
    else log.debug({ code: d.code, status: d.status, reason: d.message }, 'request rejected');
    for (const [k, v] of Object.entries(d.headers)) res.setHeader(k, v);
    if (isOipPath(req)) {
      res.status(oipStatus(d.status)).json({ error: d.message });
      return;
    }
    res.status(d.status).json({ error: { code: d.code, message: d.message } });
  };
}
