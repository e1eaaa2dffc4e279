/**
 * The indexed collection over index/'s catalog (SQLite or PostgreSQL, index/backend.ts): search by image or by id, uploads (stored under
 * BLOBS/uploads so that `source` stays a readable path for thumbnails and re-embedding), deletes,
 * and WebP thumbnails generated with sharp on first request and cached under BLOBS/thumbnails.
 * BLOBS is SIGHTLINE_BLOB_DIR (default the data folder): replicas on one PostgreSQL catalog share
 * it. Uploads are named by SHA-256 and thumbnails by image id, both written to a temp name and
 * renamed, so replicas writing the same name at once write the same bytes.
 */
import { readFile, realpath, rm } from 'node:fs/promises';
import { dirname, join, relative, isAbsolute } from 'node:path';
import sharp from 'sharp';
import type { CatalogBackend, ImageRecord as StoredImage, LabelScore, OodScore, SearchHit as IndexHit } from '../../index/index.js';
import { sha256Hex } from '../../index/index.js';
import { sniffFormat } from '../../model/index.js';
import type { Priority } from '../batcher.js';
import { GoneError, NotFoundError } from '../errors.js';
import { demoDir } from '../paths.js';
import type { DuplicatePage, DuplicatesOptions, Gallery, ImageEncoder, ImagePage, ImageRecord, IndexTarget, ListImagesOptions, SearchHit, SearchOptions } from '../ports.js';
import { DuplicateGroups } from './duplicates.js';
import { FileRefusedError, readInsideRoots } from './files.js';
import { storageError, storing, writeAtomically } from './storage.js';
import { isInside } from './walk.js';

export interface GalleryOptions {
  /** Uploads and thumbnails (SIGHTLINE_BLOB_DIR). */
  blobDir: string;
  thumbnailSize: number;
  /** Labels stored per image (top-n of the averaged softmax). */
  storedLabels?: number;
  /** SIGHTLINE_INDEX_ROOTS (thumbnails read sources below them, by real path). */
  indexRoots?: readonly string[];
}

/** Largest source file a thumbnail is made from (indexing refuses larger ones anyway). */
const MAX_SOURCE_BYTES = 256 * 1024 * 1024;

export function thumbnailUrl(id: number): string {
  return `/v1/images/${id}/thumbnail`;
}

function extensionOf(bytes: Buffer): string {
  const sniffed = sniffFormat(bytes);
  return sniffed.kind === 'supported' ? sniffed.format : 'bin';
}

function labelNames(labels: readonly LabelScore[]): string[] {
  return labels.map((l) => l.label);
}

export class GalleryService implements Gallery, IndexTarget {
  private readonly uploadsDir: string;
  private readonly thumbsDir: string;
  private readonly pendingThumbs = new Map<number, Promise<Buffer>>();
  private readonly duplicateGroups: DuplicateGroups;

  constructor(
    private readonly catalog: CatalogBackend,
    private readonly encoder: ImageEncoder,
    private readonly opts: GalleryOptions,
  ) {
    this.uploadsDir = join(opts.blobDir, 'uploads');
    this.thumbsDir = join(opts.blobDir, 'thumbnails');
    this.duplicateGroups = new DuplicateGroups(catalog, thumbnailUrl);
  }

  size(): Promise<number> {
    return this.catalog.count();
  }

  async findBySha256(sha: string): Promise<{ id: number; source: string; createdAt: string } | undefined> {
    const id = await this.catalog.findBySha256(sha);
    const r = id === undefined ? undefined : await this.catalog.get(id);
    return r ? { id: r.id, source: r.source, createdAt: r.createdAt } : undefined;
  }

  /**
   * Encodes `bytes` (refusing what does not decode before anything is written) and adds them to the
   * catalog. `source` is a path, or for uploads a function that stores the bytes and returns where:
   * file first, row second, so a crash in between leaves an orphan file that the next start removes
   * (reconcile.ts), never a row without its file; a failed insert removes the stored file again.
   */
  async add(bytes: Buffer, at: { source: string | ((ext: string) => Promise<string>); sha256: string; priority: Priority }): Promise<{ id: number; existed: boolean }> {
    const e = await this.encoder.encode(bytes, { labels: this.opts.storedLabels ?? 5, priority: at.priority });
    const stored = typeof at.source === 'string' ? undefined : await at.source(extensionOf(bytes));
    const source = stored ?? (at.source as string);
    try {
      const res = await this.catalog.add({ source, sha256: at.sha256, width: e.width, height: e.height, labels: e.labels ?? [], code: e.code, embedding: e.embedding, ...(e.ood ? { ood: e.ood } : {}) });
      return { id: res.id, existed: res.existed };
    } catch (err) {
      if (stored === undefined) throw err;
      // The same bytes may have been stored meanwhile by a concurrent upload: that row keeps the file.
      if ((await this.catalog.findBySha256(at.sha256).catch(() => 0)) === undefined) await rm(stored, { force: true });
      throw storageError('store the upload', err);
    }
  }

  private record(r: StoredImage): ImageRecord {
    return {
      id: r.id,
      sha256: r.sha256,
      source: r.source,
      labels: labelNames(r.labels),
      label_scores: r.labels,
      ...this.oodFields(r.ood),
      width: r.width,
      height: r.height,
      created_at: r.createdAt,
      thumbnail_url: thumbnailUrl(r.id),
    };
  }

  /** The stored score is shown only with a verdict: a score on another basis would be read against the wrong threshold. */
  private oodFields(ood: OodScore | null): { unknown: boolean | null; ood_score: number | null } {
    const unknown = this.encoder.judge(ood);
    return { unknown, ood_score: unknown === null ? null : (ood?.score ?? null) };
  }

  private async stored(id: number): Promise<StoredImage> {
    const r = await this.catalog.get(id);
    if (!r) throw new NotFoundError(`image ${id} is not in the index`);
    return r;
  }

  private hits(hits: readonly IndexHit[]): SearchHit[] {
    return hits.map((h) => ({
      id: h.id,
      source: h.source,
      distance: h.distance,
      hamming: h.hamming,
      labels: labelNames(h.labels),
      ...this.oodFields(h.ood),
      near_duplicate: h.nearDuplicate,
      thumbnail_url: thumbnailUrl(h.id),
    }));
  }

  async search(bytes: Buffer, opts: SearchOptions): Promise<SearchHit[]> {
    const e = await this.encoder.encode(bytes);
    return this.hits((await this.catalog.search({ code: e.code, embedding: e.embedding }, opts)).hits);
  }

  async similar(id: number, opts: SearchOptions): Promise<SearchHit[]> {
    const r = await this.stored(id);
    const embedding = await this.catalog.embedding(id);
    // One more than asked, because the image itself comes first.
    const res = await this.catalog.search({ code: r.code, embedding }, { ...opts, k: Math.min(100, opts.k + 1) });
    return this.hits(res.hits.filter((h) => h.id !== id).slice(0, opts.k));
  }

  async get(id: number): Promise<ImageRecord> {
    return this.record(await this.stored(id));
  }

  duplicates(opts: DuplicatesOptions): Promise<DuplicatePage> {
    return this.duplicateGroups.page(opts);
  }

  async list(opts: ListImagesOptions): Promise<ImagePage> {
    const ood = opts.unknown === undefined ? undefined : { ...this.encoder.oodRule, unknown: opts.unknown };
    const page = await this.catalog.list({ limit: opts.limit, ...(opts.afterId ? { afterId: opts.afterId } : {}), ...(opts.label ? { label: opts.label } : {}), ...(ood ? { ood } : {}) });
    const images = page.images.map((r) => this.record(r));
    return { images, lastId: page.more ? (images.at(-1)?.id ?? null) : null };
  }

  async upload(bytes: Buffer, filename: string | undefined): Promise<{ record: ImageRecord; created: boolean }> {
    const sha = sha256Hex(bytes);
    const existing = await this.catalog.findBySha256(sha);
    if (existing !== undefined) return { record: await this.get(existing), created: false };
    // The bytes are stored under BLOBS/uploads only once they encoded: undecodable uploads leave nothing.
    const res = await this.add(bytes, { sha256: sha, priority: 'interactive', source: (ext) => this.store(bytes, sha, ext) });
    const record = await this.get(res.id);
    return { record: filename ? { ...record, filename } : record, created: !res.existed };
  }

  private async store(bytes: Buffer, sha: string, ext: string): Promise<string> {
    const path = join(this.uploadsDir, `${sha}.${ext}`);
    await storing('store the upload', () => writeAtomically(path, bytes));
    return path;
  }

  async remove(id: number): Promise<void> {
    const r = await this.stored(id);
    await this.catalog.remove(id);
    await rm(this.thumbPath(id), { force: true });
    // Only files we stored ourselves are deleted; indexed folders belong to the user. The same bytes
    // uploaded again meanwhile (here or on another replica) own the file now: it stays.
    const rel = relative(this.uploadsDir, r.source);
    if (!rel.startsWith('..') && !isAbsolute(rel) && (await this.catalog.findBySha256(r.sha256)) === undefined) await rm(r.source, { force: true });
  }

  private thumbPath(id: number): string {
    return join(this.thumbsDir, `${id}.webp`);
  }

  async thumbnail(id: number): Promise<Buffer> {
    const path = this.thumbPath(id);
    const cached = await readFile(path).catch(() => undefined);
    if (cached) return cached;
    let pending = this.pendingThumbs.get(id);
    if (!pending) {
      pending = this.makeThumbnail(id, path).finally(() => this.pendingThumbs.delete(id));
      this.pendingThumbs.set(id, pending);
    }
    return pending;
  }

  /**
   * Roots a source may be read from for a thumbnail: uploads, the demo gallery and
   * SIGHTLINE_INDEX_ROOTS when the source lies (lexically) in one of them; else the folder it was
   * indexed from (`sightline index DIR` outside the roots). Real paths, as files.ts compares them.
   */
  private async sourceRoots(source: string): Promise<string[]> {
    const named = [this.uploadsDir, demoDir(), ...(this.opts.indexRoots ?? [])];
    const hit = named.filter((r) => isInside(r, source));
    const dirs = hit.length > 0 ? hit : [dirname(source)];
    const real = await Promise.all(dirs.map((d) => realpath(d).catch(() => undefined)));
    return real.filter((r): r is string => r !== undefined);
  }

  /**
   * The source's bytes, opened once inside its roots and identical to what was indexed (same
   * SHA-256): a thumbnail never shows anything but the indexed image.
   */
  private async sourceBytes(id: number, r: StoredImage): Promise<Buffer> {
    const roots = await this.sourceRoots(r.source);
    if (roots.length === 0) throw new GoneError(`the source file of image ${id} is no longer readable (its folder is gone)`, 'source_unavailable');
    let src: Buffer;
    try {
      src = await readInsideRoots(r.source, roots, MAX_SOURCE_BYTES);
    } catch (err) {
      const why = err instanceof FileRefusedError ? err.message : 'it cannot be read';
      throw new GoneError(`the source file of image ${id} is no longer readable: ${why}`, 'source_unavailable');
    }
    if (sha256Hex(src) !== r.sha256) throw new GoneError(`the source file of image ${id} has changed since it was indexed (different bytes); re-index it`, 'source_changed');
    return src;
  }

  private async makeThumbnail(id: number, path: string): Promise<Buffer> {
    const src = await this.sourceBytes(id, await this.stored(id));
    const size = this.opts.thumbnailSize;
    const webp = await sharp(src, { failOn: 'none', limitInputPixels: 1e9 })
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: false })
      .webp({ quality: 80 })
      .toBuffer()
      .catch(() => {
        throw new GoneError(`the source file of image ${id} can no longer be decoded into a thumbnail`, 'source_undecodable');
      });
    // The cache is an optimisation: a full disk must not fail the request that already has the bytes.
    await writeAtomically(path, webp).catch(() => undefined);
    return webp;
  }
}
