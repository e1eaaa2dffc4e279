/**
 * Browsing the collection page by page: rows in id order after a given id (keyset paging), so a
 * page boundary stays put when images are added (new ids are larger) or deleted (a missing id is
 * simply skipped) between pages, and every page costs one index range scan however deep it is,
 * unlike an OFFSET that re-reads every earlier row.
 *
 * Filters run in SQL: the stored top label (indexed), and the out-of-distribution verdict, which
 * is not stored: the caller passes the serving model's basis and threshold, and a row is unknown
 * when its score on that basis is over the threshold (records.ts OodScore), known when it is not.
 * Rows without a score on that basis match neither filter.
 */
import { IndexParamError } from './errors.js';
import type { ImageRecord } from './records.js';
import type { ImageStore } from './store.js';

/** The largest page one call returns. */
export const MAX_LIST_LIMIT = 1000;

export interface ListOptions {
  /** Rows with ids greater than this (the last id of the previous page); 0 or absent = from the start. */
  afterId?: number;
  /** Rows per page, in [1, MAX_LIST_LIMIT]. */
  limit: number;
  /** Only rows whose top label is this. */
  label?: string;
  /** Only rows judged unknown (true) or known (false) against this basis and threshold. */
  ood?: { basis: string; threshold: number; unknown: boolean };
}

export interface ListPage {
  images: ImageRecord[];
  /** True when rows after the last one returned match too. */
  more: boolean;
}

export function checkListOptions(o: ListOptions): void {
  if (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > MAX_LIST_LIMIT) throw new IndexParamError('limit', o.limit, `an integer in [1, ${MAX_LIST_LIMIT}]`);
  const after = o.afterId ?? 0;
  if (!Number.isSafeInteger(after) || after < 0) throw new IndexParamError('afterId', o.afterId, 'an integer ≥ 0');
  if (o.label !== undefined && (typeof o.label !== 'string' || o.label.length === 0)) throw new IndexParamError('label', o.label, 'a non-empty string');
  if (o.ood !== undefined && !Number.isFinite(o.ood.threshold)) throw new IndexParamError('ood.threshold', o.ood.threshold, 'a finite number');
}

/** One page of rows in id order. */
export function listImages(store: ImageStore, o: ListOptions): ListPage {
  checkListOptions(o);
  const where = ['id > @after'];
  const params: Record<string, string | number> = { after: o.afterId ?? 0, limit: o.limit + 1 };
  if (o.label !== undefined) {
    where.push('top_label = @label');
    params['label'] = o.label;
  }
  if (o.ood !== undefined) {
    // Same comparison as the verdict (model/ood.ts storedVerdict): unknown = not (score <= threshold).
    where.push(`ood_basis = @basis AND ood_score ${o.ood.unknown ? '>' : '<='} @threshold`);
    params['basis'] = o.ood.basis;
    params['threshold'] = o.ood.threshold;
  }
  // One more row than asked tells whether another page exists without a count.
  const rows = store.records(`WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`, params);
  return { images: rows.slice(0, o.limit), more: rows.length > o.limit };
}
