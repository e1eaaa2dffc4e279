/**
 * Copying a catalog into another one, whatever holds each (SQLite folder → PostgreSQL and back;
 * `sightline migrate`). Rows go in id order, a page per transaction (`addMany`: all or nothing), so
 * an interrupted copy leaves whole pages; run again, it skips every image the destination holds
 * already (by SHA-256) without reading its embedding, and copies the rest. Embeddings are stored as
 * float16 on both sides, so they arrive bit for bit; codes, labels, sizes, sources and the
 * unknown-image score are copied as they are. The destination hands out its own ids and times.
 * Other paths of the same bytes (`copies`) follow their image. The counts are checked at the end.
 */
import type { CatalogBackend } from './backend.js';
import { IndexError, IndexParamError } from './errors.js';
import type { ImageRecord, NewImage } from './records.js';

export interface TransferOptions {
  /** Rows per page and per destination transaction (default 200). */
  batch?: number;
  /** Called after each page: images looked at so far, of `total`. */
  onProgress?(done: number, total: number): void;
}

export interface TransferReport {
  /** Images in the source when the copy started. */
  total: number;
  /** Written to the destination by this run. */
  copied: number;
  /** Already in the destination (an earlier, interrupted run; or the same bytes indexed there). */
  present: number;
  /** Other paths of stored bytes, recorded in the destination. */
  copies: number;
  /** Images in the destination at the end. */
  destination: number;
}

/** What a source's images failed to match in the destination at the end: the copy is incomplete. */
export class TransferIncompleteError extends IndexError {
  override readonly name = 'TransferIncompleteError';
  readonly kind = 'internal';
  readonly code = 'transfer_incomplete';
}

async function newImage(src: CatalogBackend, r: ImageRecord): Promise<NewImage> {
  const embedding = await src.embedding(r.id);
  if (!embedding) throw new TransferIncompleteError(`image ${r.id} of '${src.location}' has no stored embedding (deleted during the copy?); run the copy again`);
  return { source: r.source, sha256: r.sha256, width: r.width, height: r.height, labels: r.labels, code: r.code, embedding, ...(r.ood ? { ood: r.ood } : {}) };
}

export async function transferCatalog(src: CatalogBackend, dst: CatalogBackend, opts: TransferOptions = {}): Promise<TransferReport> {
  const batch = opts.batch ?? 200;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1000) throw new IndexParamError('batch', batch, 'an integer in [1, 1000]');
  const total = await src.count();
  const report: TransferReport = { total, copied: 0, present: 0, copies: 0, destination: 0 };
  const shaOf = new Map<number, string>();
  let afterId = 0;
  let done = 0;
  for (;;) {
    const page = await src.list({ afterId, limit: batch });
    const missing: ImageRecord[] = [];
    for (const r of page.images) {
      shaOf.set(r.id, r.sha256);
      if ((await dst.findBySha256(r.sha256)) === undefined) missing.push(r);
      else report.present++;
    }
    if (missing.length > 0) {
      const added = await dst.addMany(await Promise.all(missing.map((r) => newImage(src, r))));
      for (const a of added) {
        if (a.existed) report.present++;
        else report.copied++;
      }
    }
    done += page.images.length;
    opts.onProgress?.(done, total);
    const last = page.images.at(-1);
    if (!page.more || last === undefined) break;
    afterId = last.id;
  }
  report.copies = await transferCopies(src, dst, shaOf);
  report.destination = await dst.count();
  const missingNow = await countMissing(dst, shaOf);
  if (missingNow > 0) throw new TransferIncompleteError(`${missingNow} of the ${shaOf.size} images of '${src.location}' are not in '${dst.location}' after the copy; run it again`);
  if (report.destination < shaOf.size) throw new TransferIncompleteError(`'${dst.location}' holds ${report.destination} images after the copy, fewer than the ${shaOf.size} copied from '${src.location}'`);
  return report;
}

/** Each recorded copy (another path of stored bytes) re-added in the destination under its path. */
async function transferCopies(src: CatalogBackend, dst: CatalogBackend, shaOf: ReadonlyMap<number, string>): Promise<number> {
  let n = 0;
  for (const c of await src.copies()) {
    const sha = shaOf.get(c.imageId);
    const record = sha === undefined ? undefined : await src.get(c.imageId);
    if (!record) continue; // its image was deleted meanwhile: the copy goes with it
    // Same bytes under another path: the destination keeps its row and records the path.
    await dst.add({ ...(await newImage(src, record)), source: c.source });
    n++;
  }
  return n;
}

async function countMissing(dst: CatalogBackend, shaOf: ReadonlyMap<number, string>): Promise<number> {
  let missing = 0;
  for (const sha of shaOf.values()) if ((await dst.findBySha256(sha)) === undefined) missing++;
  return missing;
}
