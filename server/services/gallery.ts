/**
 * The indexed collection over index/'s Catalog: search by image or by id, uploads (stored under
 * DATA/uploads so that `source` stays a readable path for thumbnails and re-embedding), deletes,
 * and WebP thumbnails generated with sharp on first request and cached under DATA/thumbnails.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import sharp from 'sharp';
import type { Catalog, ImageRecord as StoredImage, LabelScore, SearchHit as IndexHit } from '../../index/index.js';
import { sha256Hex } from '../../index/index.js';
import { sniffFormat } from '../../model/index.js';
import { NotFoundError } from '../errors.js';
import type { Gallery, ImageRecord, SearchHit, SearchOptions } from '../ports.js';
import type { InferenceService } from './inference.js';

export interface GalleryOptions {
  dataDir: string;
  thumbnailSize: number;
  /** Labels stored per image (top-n of the averaged softmax). */
  storedLabels?: number;
}

export function thumbnailUrl(id: number): string {
  return `/v1/images/${id}/thumbnail`;
}

/** Top-n labels of an averaged softmax, as index/ stores them. */
export function topLabels(probabilities: ArrayLike<number>, labels: readonly string[], n: number): LabelScore[] {
  return Array.from({ length: probabilities.length }, (_, i) => ({ label: labels[i] ?? String(i), probability: Math.min(1, Math.max(0, probabilities[i] ?? 0)) }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, n);
}

function labelNames(labels: readonly LabelScore[]): string[] {
  return labels.map((l) => l.label);
}

export class GalleryService implements Gallery {
  private readonly uploadsDir: string;
  private readonly thumbsDir: string;
  private readonly pendingThumbs = new Map<number, Promise<Buffer>>();

  constructor(
    readonly catalog: Catalog,
    private readonly inference: InferenceService,
    private readonly opts: GalleryOptions,
  ) {
    this.uploadsDir = join(opts.dataDir, 'uploads');
    this.thumbsDir = join(opts.dataDir, 'thumbnails');
  }

  size(): number {
    return this.catalog.stats().images;
  }

  /** Id of the image with these bytes' hash, if indexed. */
  findBySha256(sha: string): number | undefined {
    return this.catalog.findBySha256(sha);
  }

  private record(r: StoredImage): ImageRecord {
    return {
      id: r.id,
      sha256: r.sha256,
      source: r.source,
      labels: labelNames(r.labels),
      label_scores: r.labels,
      width: r.width,
      height: r.height,
      created_at: r.createdAt,
      thumbnail_url: thumbnailUrl(r.id),
    };
  }

  private stored(id: number): StoredImage {
    const r = this.catalog.get(id);
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
      thumbnail_url: thumbnailUrl(h.id),
    }));
  }

  async search(bytes: Buffer, opts: SearchOptions): Promise<SearchHit[]> {
    const e = await this.inference.embed(bytes, { crops: this.inference.embedCrops });
    return this.hits(this.catalog.search({ code: e.code, embedding: e.embedding }, opts).hits);
  }

  async similar(id: number, opts: SearchOptions): Promise<SearchHit[]> {
    const r = this.stored(id);
    const embedding = this.catalog.embedding(id);
    // One more than asked, because the image itself comes first.
    const res = this.catalog.search({ code: r.code, embedding }, { ...opts, k: Math.min(100, opts.k + 1) });
    return this.hits(res.hits.filter((h) => h.id !== id).slice(0, opts.k));
  }

  get(id: number): ImageRecord {
    return this.record(this.stored(id));
  }

  async upload(bytes: Buffer, filename: string | undefined): Promise<{ record: ImageRecord; created: boolean }> {
    const sha = sha256Hex(bytes);
    const existing = this.findBySha256(sha);
    if (existing !== undefined) return { record: this.get(existing), created: false };
    // Embedding first: bytes that do not decode are refused before anything is written.
    const e = await this.inference.embedImage(bytes, { crops: this.inference.embedCrops });
    const code = await this.inference.codes.encode(e.embedding);
    const sniffed = sniffFormat(bytes);
    const ext = sniffed.kind === 'supported' ? sniffed.format : 'bin';
    await mkdir(this.uploadsDir, { recursive: true });
    const path = join(this.uploadsDir, `${sha}.${ext}`);
    await writeFile(`${path}.tmp`, bytes);
    await rename(`${path}.tmp`, path);
    const res = this.catalog.add({
      source: path,
      sha256: sha,
      width: e.width,
      height: e.height,
      labels: topLabels(e.probabilities, this.inference.info.labels, this.opts.storedLabels ?? 5),
      code,
      embedding: e.embedding,
    });
    const record = this.get(res.id);
    return { record: filename ? { ...record, filename } : record, created: !res.existed };
  }

  async remove(id: number): Promise<void> {
    const r = this.stored(id);
    this.catalog.remove(id);
    await rm(this.thumbPath(id), { force: true });
    // Only files we stored ourselves are deleted; indexed folders belong to the user.
    const rel = relative(this.uploadsDir, r.source);
    if (!rel.startsWith('..') && !isAbsolute(rel)) await rm(r.source, { force: true });
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

  private async makeThumbnail(id: number, path: string): Promise<Buffer> {
    const r = this.stored(id);
    const src = await readFile(r.source).catch(() => {
      throw new NotFoundError(`the source of image ${id} ('${r.source}') cannot be read any more`);
    });
    const size = this.opts.thumbnailSize;
    const webp = await sharp(src, { failOn: 'none', limitInputPixels: 1e9 })
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: false })
      .webp({ quality: 80 })
      .toBuffer();
    await mkdir(this.thumbsDir, { recursive: true });
    await writeFile(`${path}.${process.pid}.tmp`, webp);
    await rename(`${path}.${process.pid}.tmp`, path);
    return webp;
  }
}
