/**
 * The error model and the one place where any thrown error becomes a response.
 *
 * Every error the code raises on purpose carries a `kind` (what went wrong, from the caller's
 * point of view) and a `code` (the specific reason, stable, e.g. `undecodable_image`). model/ and
 * index/ errors declare their kinds without knowing about HTTP; only this file maps kinds to
 * statuses (KIND_STATUS). Clients see `{ error: { code: KIND, reason: CODE, message } }` on /v1
 * and the rest (one `code` per kind, so a client branches on a handful of values), and
 * `{ error: message }` on the Open Inference Protocol routes (/v2, as Triton answers).
 * Stacks stay in the logs.
 */
import type { ErrorRequestHandler, Request } from 'express';
import type { Logger } from 'pino';
import type { IndexErrorKind } from '../index/index.js';
import type { ModelErrorKind } from '../model/index.js';

/** HTTP status of each kind: the only table of statuses in the project. */
export const KIND_STATUS = {
  invalid_argument: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  unsupported: 415,
  internal: 500,
  unavailable: 503,
  insufficient_storage: 507,
} as const satisfies Record<string, number>;

export type ErrorKind = keyof typeof KIND_STATUS;

// model/ and index/ declare their own kinds (they do not import server/); every one of them must
// have a status here, which this line checks at compile time.
const DOMAIN_KINDS_ARE_MAPPED: Record<ModelErrorKind | IndexErrorKind, ErrorKind> = {} as Record<ModelErrorKind | IndexErrorKind, ErrorKind>;
void DOMAIN_KINDS_ARE_MAPPED;

export function isErrorKind(v: unknown): v is ErrorKind {
  return typeof v === 'string' && Object.hasOwn(KIND_STATUS, v);
}

/** An error raised by server/ itself (routes, batcher, jobs): a kind, a specific code, optional headers. */
export class HttpError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After on 503. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }

  get status(): number {
    return KIND_STATUS[this.kind];
  }
}

/** A malformed request (body, multipart, missing image); `code` says which. */
export class BadRequestError extends HttpError {
  constructor(message: string, code = 'invalid_argument') {
    super('invalid_argument', code, message);
  }
}

/** A query, path or body parameter out of range: the message names the parameter and the value. */
export class InvalidParameterError extends HttpError {
  constructor(readonly param: string, expected: string, value: unknown) {
    super('invalid_argument', 'invalid_argument', `'${param}' must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
  }
}

export class UnauthorizedError extends HttpError {
  constructor(message = 'a valid bearer token is required (Authorization: Bearer <SIGHTLINE_API_TOKEN>)') {
    super('unauthorized', 'unauthorized', message, { 'WWW-Authenticate': 'Bearer' });
  }
}

export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super('forbidden', 'forbidden', message);
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super('not_found', 'not_found', message);
  }
}

/**
 * 410: the resource named exists (an indexed image) but what it is derived from is gone or has
 * changed for good, e.g. a thumbnail whose source file was deleted, replaced or swapped for a
 * symlink since indexing. Not 404 (GET /v1/images/:id still answers), not 5xx (retrying cannot help).
 */
export class GoneError extends HttpError {
  constructor(message: string, code = 'gone') {
    super('gone', code, message);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(message: string) {
    super('too_large', 'payload_too_large', message);
  }
}

export class UnsupportedContentTypeError extends HttpError {
  constructor(message: string) {
    super('unsupported', 'unsupported_media_type', message);
  }
}

/** 503 with Retry-After in whole seconds (at least 1), for a full queue or a request timeout. */
export class ServiceUnavailableError extends HttpError {
  constructor(code: 'overloaded' | 'timeout' | 'not_ready' | 'shutting_down', message: string, readonly retryAfterS = 1) {
    super('unavailable', code, message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) });
  }
}

/** Bad configuration found at start-up (not an HTTP error: the server does not start). */
export class ConfigError extends Error {
  readonly kind = 'internal';
  readonly code = 'config';
  override readonly name = 'ConfigError';
}

export interface ErrorBody {
  status: number;
  kind: ErrorKind;
  /** The specific reason (equal to the kind when there is nothing more specific to say). */
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

/** The kind of a bare status (errors from express, body-parser and other libraries). */
function kindOfStatus(status: number): ErrorKind {
  for (const [kind, s] of Object.entries(KIND_STATUS)) if (s === status) return kind as ErrorKind;
  return status >= 500 ? 'internal' : 'invalid_argument';
}

/**
 * Server errors are written for clients; other errors' 5xx messages may name paths, so they are
 * hidden, except a full disk's, which says nothing about the internals and tells the client what happened.
 */
function body(kind: ErrorKind, code: string, message: string, headers: Readonly<Record<string, string>> = {}, exposeAlways = false): ErrorBody {
  const status = KIND_STATUS[kind];
  const expose = exposeAlways || status < 500 || kind === 'insufficient_storage';
  return { status, kind, code, message: expose ? message : 'internal error', headers, expose };
}

const MULTER_TOO_LARGE = new Set(['LIMIT_FILE_SIZE', 'LIMIT_PART_COUNT', 'LIMIT_FIELD_VALUE']);

/** Any thrown value → status, kind, code and message. Pure, so it is unit-tested directly. */
export function describeError(err: unknown, bodyLimitBytes?: number): ErrorBody {
  if (err instanceof HttpError) return body(err.kind, err.code, err.message, err.headers, true);
  if (err instanceof Error) {
    const e = err as Error & { kind?: unknown; status?: unknown; statusCode?: unknown; code?: unknown; type?: unknown };
    // model/ and index/ errors: a typed class carrying `kind` and `code`.
    if (isErrorKind(e.kind)) return body(e.kind, typeof e.code === 'string' ? e.code : e.kind, e.message);
    // multer: MulterError has a `code` such as LIMIT_FILE_SIZE and no status.
    if (e.name === 'MulterError' && typeof e.code === 'string') {
      const tooLarge = MULTER_TOO_LARGE.has(e.code);
      const limit = e.code === 'LIMIT_FILE_SIZE' && bodyLimitBytes ? ` (limit ${bodyLimitBytes} bytes)` : '';
      return body(tooLarge ? 'too_large' : 'invalid_argument', tooLarge ? 'payload_too_large' : 'bad_multipart', `multipart upload: ${e.message}${limit}`);
    }
    // body-parser / raw-body: `type` like 'entity.too.large', `status` 4xx.
    if (typeof e.type === 'string' && typeof e.status === 'number') {
      if (e.type === 'entity.too.large') return body('too_large', 'payload_too_large', `request body exceeds the limit of ${bodyLimitBytes ?? '?'} bytes`);
      if (e.status >= 400 && e.status < 500) return body(kindOfStatus(e.status), snake(e.type), e.message);
    }
    // A full disk or quota, raw from fs or SQLite (index/ and the services wrap it as storage_full).
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'SQLITE_FULL') {
      return body('insufficient_storage', 'storage_full', 'the server has no storage space left; nothing was stored, retry after space is freed');
    }
    // Other libraries' errors with an HTTP status.
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    if (status !== undefined && status >= 400 && status < 600) {
      const kind = kindOfStatus(status);
      return body(kind, typeof e.code === 'string' ? snake(e.code) : kind, e.message);
    }
  }
  return body('internal', 'internal', 'internal error');
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
    if (d.kind === 'insufficient_storage') log.warn({ reason: d.message }, 'request failed: storage full');
    else if (d.status >= 500 && d.kind !== 'unavailable') log.error({ err }, 'request failed');
    else log.debug({ kind: d.kind, code: d.code, status: d.status, reason: d.message }, 'request rejected');
    for (const [k, v] of Object.entries(d.headers)) res.setHeader(k, v);
    if (isOipPath(req)) {
      res.status(oipStatus(d.status)).json({ error: d.message });
      return;
    }
    res.status(d.status).json({ error: { code: d.kind, ...(d.code === d.kind ? {} : { reason: d.code }), message: d.message } });
  };
}
