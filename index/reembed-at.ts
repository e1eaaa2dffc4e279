/**
 * `sightline reindex --codes / --model` on either backend: the SQLite catalog is rewritten in place
 * under its lock (reembed.ts), a PostgreSQL one is staged and switched in one transaction while
 * replicas keep serving (pg/reembed.ts).
 */
import type { BackendMeta } from './backend.js';
import { inspectIndex } from './inspect.js';
import type { DbLocation } from './location.js';
import { openPostgres } from './pg/open.js';
import { type PgReembedOptions, reembedPostgres } from './pg/reembed.js';
import { reembed, type ReembedReport } from './reembed.js';

/** What the catalog at `location` is bound to (model, codes, bits, embedding width), read only. */
export async function storedMetaAt(location: DbLocation): Promise<BackendMeta> {
  if (location.kind === 'sqlite') {
    const s = inspectIndex(location.dir);
    return { bits: s.bits, embeddingDim: s.embeddingDim, modelHash: s.model, codesHash: s.codeModel };
  }
  const cat = await openPostgres(location, { readOnly: true, create: false, poolSize: 1 });
  try {
    return cat.meta;
  } finally {
    await cat.close();
  }
}

/** Recomputes the catalog's vectors (see ReembedOptions); `index` applies to PostgreSQL's rebuilt HNSW index. */
export async function reembedAt(location: DbLocation, opts: PgReembedOptions): Promise<ReembedReport> {
  if (location.kind === 'sqlite') return reembed(location.dir, opts);
  const cat = await openPostgres(location, { create: false, poolSize: 2 });
  try {
    return await reembedPostgres(cat, opts);
  } finally {
    await cat.close();
  }
}
