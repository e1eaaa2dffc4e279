/**
 * Request plumbing shared by the routes: reading an uploaded image (multipart field `image` or a
 * raw body with an image content type) and the optional bearer token on write routes. Parameters
 * are validated by the routes' schemas (schemas.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import { BadRequestError, HttpError, InvalidParameterError, UnauthorizedError, UnsupportedContentTypeError } from './errors.js';

export interface UploadedImage {
  bytes: Buffer;
  filename: string | undefined;
}

const uploads = new WeakMap<Request, UploadedImage>();

function isRawImageType(req: { headers: { 'content-type'?: string | undefined } }): boolean {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  return type.startsWith('image/') || type.startsWith('application/octet-stream');
}

/** Middleware that leaves the image in `uploadOf(req)`; 415 for other content types, 413 over the limit. */
export function imageUpload(bodyLimitBytes: number): RequestHandler {
  // defParamCharset utf8: browsers send UTF-8 filenames without RFC 5987 encoding; busboy's
  // default (latin1) turned them into mojibake.
  const multipart = multer({ storage: multer.memoryStorage(), defParamCharset: 'utf8', limits: { fileSize: bodyLimitBytes, files: 1, fields: 10, parts: 12 } }).single('image');
  const raw = express.raw({ type: isRawImageType, limit: bodyLimitBytes });
  return (req: Request, res: Response, next: NextFunction) => {
    const type = req.get('content-type') ?? '';
    if (type.toLowerCase().startsWith('multipart/form-data')) {
      multipart(req, res, (err?: unknown) => {
        if (err) return next(multipartError(err));
        if (!req.file) return next(new BadRequestError(`multipart upload has no file field 'image'`, 'missing_image'));
        try {
          uploads.set(req, { bytes: req.file.buffer, filename: checkFilename(req.file.originalname) });
        } catch (e) {
          return next(e);
        }
        next();
      });
      return;
    }
    if (!isRawImageType(req)) {
      next(
        new UnsupportedContentTypeError(
          `content type '${type || '(none)'}' is not accepted: send the image as multipart/form-data field 'image' or as a raw body with an image/* content type`,
        ),
      );
      return;
    }
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      const body: unknown = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) return next(new BadRequestError('the request body is empty: send the image bytes', 'missing_image'));
      uploads.set(req, { bytes: body, filename: undefined });
      next();
    });
  };
}

/**
 * busboy reports a body it cannot parse (no boundary, unterminated, a part header broken by a raw
 * CR/LF or NUL) as a plain Error: the client's fault, so a 400 that says what was wrong.
 * MulterError (limits) keeps its own mapping in errors.ts.
 */
function multipartError(err: unknown): unknown {
  if (err instanceof multer.MulterError && err.code === 'LIMIT_UNEXPECTED_FILE') {
    return new BadRequestError(`multipart upload has a file in field '${err.field ?? ''}', expected one file in field 'image'`, 'missing_image');
  }
  if (!(err instanceof Error) || err.name === 'MulterError' || err instanceof HttpError) return err;
  return new BadRequestError(`malformed multipart/form-data body: ${err.message} (send the image as field 'image' with a boundary in the content type)`, 'bad_multipart');
}

const MAX_FILENAME = 1024;

/** The client's filename is echoed back and logged: refuse control characters (CR, LF, NUL...) and absurd lengths. */
function checkFilename(name: string): string | undefined {
  if (name === '') return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new InvalidParameterError('filename', 'free of control characters (CR, LF, NUL)', name);
  if (name.length > MAX_FILENAME) throw new InvalidParameterError('filename', `at most ${MAX_FILENAME} characters`, `${name.slice(0, 32)}…`);
  return name;
}

export function uploadOf(req: Request): UploadedImage {
  const u = uploads.get(req);
  if (!u) throw new BadRequestError('no image in the request', 'missing_image');
  return u;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** When a token is configured, write routes need `Authorization: Bearer <token>` (compared in constant time). */
export function requireToken(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, _res, next) => {
    const m = /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (!m?.[1] || !timingSafeEqual(digest(m[1].trim()), expected)) {
      next(new UnauthorizedError());
      return;
    }
    next();
  };
}
