/**
 * JSON request bodies with their own size limit (SIGHTLINE_MAX_JSON_BYTES) and a parser that yields
 * to the event loop every slice of input. JSON.parse of a multi-megabyte OIP tensor holds the only
 * thread for hundreds of milliseconds, stalling every other request; this parser is iterative
 * (an explicit stack, so nesting depth cannot overflow the call stack, and it is capped) and
 * resumes after a setImmediate every `sliceChars` characters.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { BadRequestError, PayloadTooLargeError, UnsupportedContentTypeError } from './errors.js';

export interface ChunkedJsonOptions {
  /** Characters parsed between two yields to the event loop (default 64 Ki: about 3 ms of parsing on an unloaded core here). */
  sliceChars?: number;
  /** Deepest nesting of arrays and objects accepted (default 64). */
  maxDepth?: number;
}

type Expect = 'value' | 'valueOrEnd' | 'keyOrEnd' | 'key' | 'colon' | 'commaOrEnd' | 'done';
type Frame = { array: unknown[]; object?: undefined; key?: undefined } | { array?: undefined; object: Record<string, unknown>; key: string | undefined };

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

function digitsEnd(text: string, i: number): number {
  while (i < text.length && isDigit(text.charCodeAt(i))) i++;
  return i;
}

/** End of the JSON number starting at `i` (-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?), or -1 if there is none. */
function numberEnd(text: string, i: number): number {
  if (text.charCodeAt(i) === 0x2d) i++;
  const first = text.charCodeAt(i);
  if (!isDigit(first)) return -1;
  i = first === 0x30 ? i + 1 : digitsEnd(text, i + 1);
  if (text.charCodeAt(i) === 0x2e) {
    const end = digitsEnd(text, i + 1);
    if (end === i + 1) return -1;
    i = end;
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    const end = digitsEnd(text, j);
    if (end === j) return -1;
    i = end;
  }
  return i;
}
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function invalid(text: string, at: number, what: string): BadRequestError {
  const near = at < text.length ? `'${text.slice(at, at + 12)}'` : 'the end';
  return new BadRequestError(`request body is not valid JSON: ${what} at position ${at} (near ${near})`, 'invalid_json');
}

/** Reads the string literal starting at `at` (a quote); returns its value and the index after it. */
function readString(text: string, at: number): [string, number] {
  let i = at + 1;
  let escaped = false;
  for (;;) {
    if (i >= text.length) throw invalid(text, at, 'unterminated string');
    const c = text.charCodeAt(i);
    if (c === 0x22) break;
    if (c < 0x20) throw invalid(text, i, 'control character in a string');
    if (c === 0x5c) {
      escaped = true;
      i++;
    }
    i++;
  }
  if (!escaped) return [text.slice(at + 1, i), i + 1];
  try {
    return [JSON.parse(text.slice(at, i + 1)) as string, i + 1];
  } catch {
    throw invalid(text, at, 'bad escape in a string');
  }
}

function setKey(o: Record<string, unknown>, key: string, v: unknown): void {
  // Plain assignment of '__proto__' would change the prototype; JSON.parse makes it an own property.
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true });
  else o[key] = v;
}

/** JSON.parse's result for valid JSON, a 400 naming the position otherwise; yields between slices. */
export async function parseJsonChunked(text: string, opts: ChunkedJsonOptions = {}): Promise<unknown> {
  const slice = opts.sliceChars ?? 64 * 1024;
  const maxDepth = opts.maxDepth ?? 64;
  const stack: Frame[] = [];
  let expect = 'value' as Expect;
  let result: unknown;
  let i = 0;
  let nextYield = slice;

  /** Stores a finished value in its container (or as the result); returns what may follow it. */
  const attach = (v: unknown): Expect => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      result = v;
      return 'done';
    }
    if (top.array) top.array.push(v);
    else setKey(top.object, top.key as string, v);
    return 'commaOrEnd';
  };
  const open = (f: Frame): void => {
    if (stack.length >= maxDepth) throw new BadRequestError(`request body is nested deeper than ${maxDepth} levels`, 'invalid_json');
    stack.push(f);
  };

  while (i < text.length) {
    if (i >= nextYield) {
      await yieldToLoop();
      nextYield = i + slice;
    }
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      i++;
      continue;
    }
    const top = stack[stack.length - 1];
    if (expect === 'done') throw invalid(text, i, 'unexpected data after the JSON value');
    if (expect === 'commaOrEnd') {
      if (c === 0x2c) {
        expect = top?.array ? 'value' : 'key';
        i++;
        continue;
      }
      if ((c === 0x5d && top?.array) || (c === 0x7d && top?.object)) {
        stack.pop();
        i++;
        expect = attach(top.array ?? top.object);
        continue;
      }
      throw invalid(text, i, `expected ',' or '${top?.array ? ']' : '}'}'`);
    }
    if (expect === 'colon') {
      if (c !== 0x3a) throw invalid(text, i, "expected ':'");
      expect = 'value';
      i++;
      continue;
    }
    if (expect === 'keyOrEnd' || expect === 'key') {
      if (c === 0x7d && expect === 'keyOrEnd' && top?.object) {
        stack.pop();
        i++;
        expect = attach(top.object);
        continue;
      }
      if (c !== 0x22 || !top?.object) throw invalid(text, i, 'expected a string key');
      const [key, next] = readString(text, i);
      top.key = key;
      i = next;
      expect = 'colon';
      continue;
    }
    // expect is 'value' or 'valueOrEnd'
    if (c === 0x5d && expect === 'valueOrEnd' && top?.array) {
      stack.pop();
      i++;
      expect = attach(top.array);
      continue;
    }
    if (c === 0x5b) {
      open({ array: [] });
      expect = 'valueOrEnd';
      i++;
    } else if (c === 0x7b) {
      open({ object: {}, key: undefined });
      expect = 'keyOrEnd';
      i++;
    } else if (c === 0x22) {
      const [s, next] = readString(text, i);
      i = next;
      expect = attach(s);
    } else if (c === 0x74 && text.startsWith('true', i)) {
      i += 4;
      expect = attach(true);
    } else if (c === 0x66 && text.startsWith('false', i)) {
      i += 5;
      expect = attach(false);
    } else if (c === 0x6e && text.startsWith('null', i)) {
      i += 4;
      expect = attach(null);
    } else {
      const end = numberEnd(text, i);
      if (end < 0) throw invalid(text, i, 'unexpected character');
      expect = attach(Number(text.slice(i, end)));
      i = end;
      // Tensor data is long runs of numbers: take the rest of the run here, without a trip
      // through the state machine per number (same grammar, same slice accounting).
      if (top?.array) {
        const a = top.array;
        while (i < nextYield && text.charCodeAt(i) === 0x2c) {
          const start = text.charCodeAt(i + 1) === 0x20 ? i + 2 : i + 1;
          const e = numberEnd(text, start);
          if (e < 0) break;
          a.push(Number(text.slice(start, e)));
          i = e;
        }
      }
    }
  }
  if (expect !== 'done') throw invalid(text, i, stack.length > 0 ? 'unterminated array or object' : 'no JSON value');
  return result;
}

function isJsonType(type: string): boolean {
  const t = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return t === '' || t === 'application/json' || t.endsWith('+json');
}

/**
 * Middleware leaving the parsed body in req.body: 413 above `maxBytes` (naming the limit and its
 * variable), 415 for non-JSON content types (a missing type is taken as JSON, as OIP clients send).
 */
export function jsonBody(maxBytes: number, opts: ChunkedJsonOptions & { limitSource?: string } = {}): RequestHandler {
  const tooLarge = () => new PayloadTooLargeError(`JSON body exceeds the limit of ${maxBytes} bytes (${opts.limitSource ?? 'SIGHTLINE_MAX_JSON_BYTES'})`);
  const raw = express.raw({ type: () => true, limit: maxBytes });
  return (req: Request, res: Response, next: NextFunction) => {
    const type = req.get('content-type') ?? '';
    if (!isJsonType(type)) return next(new UnsupportedContentTypeError(`content type '${type}' is not accepted: send application/json`));
    if (Number(req.get('content-length') ?? 0) > maxBytes) return next(tooLarge());
    raw(req, res, (err?: unknown) => {
      if (err) return next((err as { type?: unknown }).type === 'entity.too.large' ? tooLarge() : err);
      const body: unknown = req.body;
      const text = Buffer.isBuffer(body) ? body.toString('utf8') : '';
      parseJsonChunked(text, opts).then(
        (parsed) => {
          req.body = parsed;
          next();
        },
        (e: unknown) => next(e),
      );
    });
  };
}

const yieldEvery = 16_384;

/** `[a,b,...]` of one typed array, written in slices with a turn of the event loop between them. */
async function writeNumbers(res: Response, data: Float32Array): Promise<void> {
  res.write('[');
  for (let from = 0; from < data.length; from += yieldEvery) {
    const to = Math.min(data.length, from + yieldEvery);
    let s = from === 0 ? '' : ',';
    for (let i = from; i < to; i++) {
      const v = data[i] as number;
      // JSON has no NaN/Infinity: null, as JSON.stringify writes them.
      s += (i === from ? '' : ',') + (Number.isFinite(v) ? String(v) : 'null');
    }
    res.write(s);
    if (to < data.length) await yieldToLoop();
  }
  res.write(']');
}

/**
 * Sends `value` as JSON like res.json, except that Float32Array values (OIP output tensors, up to
 * millions of numbers) are written as arrays in slices that yield to the event loop: stringifying
 * a 320 × 4096 embedding at once held the loop for most of a second.
 */
export async function sendJsonChunked(res: Response, value: unknown): Promise<void> {
  const arrays: Float32Array[] = [];
  // A per-response nonce: a client-chosen string (the request id) cannot forge a placeholder.
  const mark = `@f32@${randomUUID()}@`;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (!(v instanceof Float32Array)) return v;
    arrays.push(v);
    return `${mark}${arrays.length - 1}`;
  });
  const parts = text.split(new RegExp(`"${mark}(\\d+)"`));
  res.status(res.statusCode).type('application/json');
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) res.write(parts[i] ?? '');
    else await writeNumbers(res, arrays[Number(parts[i])] as Float32Array);
  }
  res.end();
}
