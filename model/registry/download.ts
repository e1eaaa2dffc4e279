/**
 * Fetches one large file into `<dest>.part`, resuming with an HTTP Range request when a previous
 * try left part of it, following redirects (the model zoo's raw URLs redirect to Git LFS storage),
 * and renames it to `dest` only after its size and SHA-256 match. A mismatch deletes the part file,
 * so the next try starts clean instead of resuming garbage.
 */
import { createReadStream, existsSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { sha256File } from '../hash.js';

export interface Progress {
  /** Bytes in the part file so far (resumed bytes included). */
  received: number;
  total: number;
  /** Bytes that were already there from an earlier try. */
  resumedFrom: number;
}

export interface DownloadOptions {
  /** http(s) URL, or a local file path (a mirror folder's copy). */
  source: string;
  dest: string;
  size: number;
  sha256: string;
  onProgress?: (p: Progress) => void;
  /** Tries per call; each one resumes what the last one left (default 3). */
  attempts?: number;
  /** A connection that delivers no byte for this long is dropped and retried (default 30 s). */
  idleTimeoutMs?: number;
}

/** Why a fetch failed, in words; `retry` = a new try may succeed (cut connection, 5xx). */
export class DownloadFailure extends Error {
  override readonly name = 'DownloadFailure';
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

/** The bytes arrived but are not the expected file; the part file has been deleted. */
export class ChecksumFailure extends Error {
  override readonly name = 'ChecksumFailure';
}

export const partPath = (dest: string): string => `${dest}.part`;

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** Node's fetch hides the socket error in `cause`: ENOTFOUND, ECONNREFUSED, ... */
function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: string }).code;
    return code ? `${code} (${cause.message})` : cause.message;
  }
  return err.name === 'AbortError' ? 'no data received for too long' : err.message;
}

async function appendStream(part: string, from: number, chunks: AsyncIterable<Uint8Array>, opts: DownloadOptions, onChunk: () => void): Promise<number> {
  const fh = await open(part, from > 0 ? 'a' : 'w');
  let received = from;
  try {
    for await (const chunk of chunks) {
      await fh.write(chunk);
      received += chunk.byteLength;
      onChunk();
      opts.onProgress?.({ received, total: opts.size, resumedFrom: from });
    }
  } finally {
    await fh.close();
  }
  return received;
}

async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
  } finally {
    reader.releaseLock();
  }
}

/** One HTTP try: resumes from the part file's length when the server honours Range. */
async function httpTry(opts: DownloadOptions, part: string): Promise<void> {
  const have = sizeOf(part);
  if (have >= opts.size) return;
  const ctrl = new AbortController();
  const idle = opts.idleTimeoutMs ?? 30_000;
  let timer = setTimeout(() => ctrl.abort(), idle);
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(), idle);
  };
  try {
    let res: Response;
    try {
      res = await fetch(opts.source, { redirect: 'follow', signal: ctrl.signal, headers: have > 0 ? { range: `bytes=${have}-` } : {} });
    } catch (err) {
      const reason = networkReason(err);
      // A refused or unknown host will not answer the next try either; a timeout might.
      throw new DownloadFailure(reason, !/ENOTFOUND|ECONNREFUSED|EAI_AGAIN/.test(reason));
    }
    let from = 0;
    if (res.status === 206 && have > 0) {
      const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (Number(start) !== have) throw new DownloadFailure(`server resumed at byte ${start ?? '?'}, expected ${have}`, false);
      from = have;
    } else if (res.status === 416 && have > 0) {
      unlinkSync(part);
      throw new DownloadFailure('server refused to resume (HTTP 416); the partial file was deleted', true);
    } else if (res.status !== 200) {
      throw new DownloadFailure(`HTTP ${res.status} ${res.statusText}`.trim(), res.status >= 500);
    }
    if (!res.body) throw new DownloadFailure('empty response body', true);
    let received: number;
    try {
      received = await appendStream(part, from, chunksOf(res.body), opts, touch);
    } catch (err) {
      throw new DownloadFailure(`connection cut after ${sizeOf(part)} of ${opts.size} bytes: ${networkReason(err)}`, true);
    }
    if (received < opts.size) throw new DownloadFailure(`connection closed after ${received} of ${opts.size} bytes`, true);
  } finally {
    clearTimeout(timer);
  }
}

/** A mirror folder: the file is copied (with progress) so the cache never points outside itself. */
async function fileTry(opts: DownloadOptions, part: string): Promise<void> {
  if (!existsSync(opts.source) || !statSync(opts.source).isFile()) throw new DownloadFailure(`no file '${opts.source}'`, false);
  await appendStream(part, 0, createReadStream(opts.source, { highWaterMark: 1 << 20 }), opts, () => undefined);
}

const isHttp = (source: string): boolean => /^https?:\/\//i.test(source);

/** Size, then SHA-256; a wrong file is deleted so it is never resumed or used. */
async function verify(part: string, opts: DownloadOptions): Promise<void> {
  const size = sizeOf(part);
  const problem =
    size !== opts.size
      ? `has ${size} bytes, expected ${opts.size}`
      : await sha256File(part).then((h) => (h === opts.sha256 ? undefined : `has SHA-256 ${h}, expected ${opts.sha256}`));
  if (problem === undefined) return;
  unlinkSync(part);
  throw new ChecksumFailure(`the downloaded file ${problem}; it was deleted`);
}

/** Downloads (or copies) `source` to `dest`, verified; throws DownloadFailure or ChecksumFailure. */
export async function downloadVerified(opts: DownloadOptions): Promise<void> {
  const part = partPath(opts.dest);
  if (sizeOf(part) > opts.size) unlinkSync(part);
  const attempts = isHttp(opts.source) ? Math.max(1, opts.attempts ?? 3) : 1;
  for (let i = 1; ; i++) {
    try {
      await (isHttp(opts.source) ? httpTry(opts, part) : fileTry(opts, part));
      break;
    } catch (err) {
      if (!(err instanceof DownloadFailure) || !err.retry || i >= attempts) throw err;
    }
  }
  await verify(part, opts);
  renameSync(part, opts.dest);
}
