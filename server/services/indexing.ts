/**
 * Batch indexing of files, the one implementation behind `sightline index DIR` and the HTTP jobs.
 * A pool of `concurrency` workers each reads, sniffs, hashes, decodes and embeds one file at a
 * time; decoding (libuv threads) of some files overlaps inference of others, and the crops of all
 * workers meet in the batcher at background priority, so interactive requests go first.
 * Already indexed bytes (same SHA-256) are skipped before any decoding, which is what makes an
 * interrupted run resumable without duplicates.
 */
import type { Priority } from '../batcher.js';
import { sha256Hex } from '../../index/index.js';
import { sniffFormat } from '../../model/index.js';
import type { IndexTarget } from '../ports.js';
import { FileRefusedError, openInsideRoots } from './files.js';
import type { WalkEntry } from './walk.js';

export type Outcome =
  | { kind: 'added'; id: number }
  /** `createdAt` of the existing row: lets a resumed job recognise rows it added itself before a crash. */
  | { kind: 'duplicate'; id: number; sameSource: boolean; createdAt?: string }
  | { kind: 'not_image'; reason: string }
  | { kind: 'failed'; message: string };

/** Formats that are not photos at all: skipped like text files rather than reported as failures. */
const NOT_IMAGES = new Set(['PDF', 'MP4/QuickTime video', 'empty', 'unrecognised']);
const SNIFF_BYTES = 4096;

export interface IndexRunOptions {
  concurrency: number;
  signal?: AbortSignal;
  priority?: Priority;
  /** Real paths every file must really lie in when it is read (server jobs); empty = no containment. */
  roots?: readonly string[];
  /** Entries before this position were processed by an earlier, interrupted run. */
  startAt?: number;
  onOutcome?(position: number, entry: WalkEntry, outcome: Outcome): void;
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : message(err);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class IndexingService {
  constructor(
    private readonly target: IndexTarget,
    private readonly opts: { maxFileBytes: number },
  ) {}

  /**
   * Indexes one file; never throws for a bad file (the outcome says what happened). With `roots`,
   * the file is opened once and must really lie inside them (files.ts), whatever the walk saw.
   */
  async indexFile(path: string, priority: Priority = 'background', roots: readonly string[] = []): Promise<Outcome> {
    let bytes: Buffer;
    try {
      const { fh, size } = await openInsideRoots(path, roots);
      try {
        const head = Buffer.alloc(Math.min(SNIFF_BYTES, size));
        await fh.read(head, 0, head.length, 0);
        const sniffed = sniffFormat(head);
        if (sniffed.kind !== 'supported' && NOT_IMAGES.has(sniffed.label)) return { kind: 'not_image', reason: `${sniffed.label}: ${sniffed.reason}` };
        if (sniffed.kind === 'unsupported') return { kind: 'failed', message: `${sniffed.label} images are not supported: ${sniffed.reason}` };
        if (size > this.opts.maxFileBytes) return { kind: 'failed', message: `file is ${size} bytes, over the limit of ${this.opts.maxFileBytes}` };
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      // Not err.message: node's fs messages carry the absolute path, and job errors are served.
      return { kind: 'failed', message: err instanceof FileRefusedError ? `not read: ${err.message}` : `cannot read the file (${errCode(err)})` };
    }
    const sha = sha256Hex(bytes);
    const known = await this.target.findBySha256(sha);
    if (known !== undefined) return { kind: 'duplicate', id: known.id, sameSource: known.source === path, createdAt: known.createdAt };
    try {
      const res = await this.target.add(bytes, { source: path, sha256: sha, priority });
      // Two identical files in one run: the second add finds the first one's row.
      return res.existed ? { kind: 'duplicate', id: res.id, sameSource: false } : { kind: 'added', id: res.id };
    } catch (err) {
      // Unavailability (shutdown, overload) and a full disk are not the file's fault: let the caller stop or retry.
      const kind = (err as { kind?: unknown }).kind;
      if (kind === 'unavailable' || kind === 'insufficient_storage') throw err;
      return { kind: 'failed', message: message(err) };
    }
  }

  /** Runs the worker pool over `entries`; resolves when all are done or the signal aborted. */
  async run(entries: readonly WalkEntry[], opts: IndexRunOptions): Promise<void> {
    let next = opts.startAt ?? 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length && !opts.signal?.aborted) {
        const position = next++;
        const entry = entries[position] as WalkEntry;
        const outcome: Outcome = entry.refused ? { kind: 'failed', message: entry.refused } : await this.indexFile(entry.path, opts.priority ?? 'background', opts.roots);
        opts.onOutcome?.(position, entry, outcome);
      }
    };
    const n = Math.max(1, Math.min(opts.concurrency, entries.length));
    await Promise.all(Array.from({ length: n }, worker));
  }
}
