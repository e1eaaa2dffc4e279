/**
 * JSON logs (pino) and the request id: every response carries X-Request-Id (the client's own when
 * it sent a sane one, else a fresh UUID) and every log line of that request carries it as `reqId`.
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

declare module 'express-serve-static-core' {
  interface Request {
    /** Request id, echoed in X-Request-Id. */
    id: string;
    /** Child logger bound to the request id. */
    log: Logger;
  }
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'sightline' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    req.id = given !== undefined && SANE_ID.test(given) ? given : randomUUID();
    req.log = logger.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      req.log.info({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  };
}

/** The request's logger, or the root one for requests that failed before requestContext ran. */
export function loggerOf(req: Request, fallback: Logger): Logger {
  return (req as Partial<Request>).log ?? fallback;
}
