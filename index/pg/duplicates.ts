/**
 * Near-duplicate groups of a PostgreSQL catalog: the SQLite catalog's procedure (duplicates.ts:
 * the k nearest images of every image by the two-stage search, pairs within the calibrated
 * distance, union-find into groups), with the images read page by page in id order.
 */
import { groupPairs, type DuplicateGroup, type DuplicateOptions, type DuplicatePair, UnionFind } from '../duplicates.js';
import { IndexParamError } from '../errors.js';
import { decodeHalf } from '../float16.js';
import { halfNorm, nearDuplicateTest } from '../near-dup.js';
import type { SearchOptions, SearchQuery, SearchResult } from '../search.js';
import type { SqlClient } from './client.js';
import { fromBitString, halvesOf, num, vectorBytesSql } from './rows.js';
import type { PgMeta } from './schema.js';

const PAGE = 256;

interface Source {
  db: SqlClient;
  pgMeta: PgMeta;
  embeddingHalves(id: number): Promise<Uint16Array | undefined>;
}

export async function pgDuplicates(cat: Source, search: (q: SearchQuery, o: SearchOptions) => Promise<SearchResult>, opts: DuplicateOptions): Promise<DuplicateGroup[]> {
  const within = nearDuplicateTest(opts);
  const neighbours = opts.neighbours ?? 10;
  if (!Number.isInteger(neighbours) || neighbours < 1 || neighbours > 99) throw new IndexParamError('neighbours', neighbours, 'an integer in [1, 99]');
  const norms = new Map<number, number>();
  const normOf = async (id: number): Promise<number> => {
    let n = norms.get(id);
    if (n === undefined) norms.set(id, (n = halfNorm((await cat.embeddingHalves(id)) ?? new Uint16Array(0))));
    return n;
  };
  const uf = new UnionFind();
  const pairs: DuplicatePair[] = [];
  const seen = new Set<string>();
  const kind = cat.pgMeta.vector;
  for (let after = 0; ; ) {
    const page = (
      await cat.db.query<{ id: unknown; code: string; v: unknown }>(
        `SELECT i.id, i.code::text AS code, ${vectorBytesSql(kind).replace('vector', 'e.vector')} AS v FROM images i JOIN embeddings e ON e.id = i.id WHERE i.id > $1 ORDER BY i.id LIMIT ${PAGE}`,
        [after],
      )
    ).rows;
    if (page.length === 0) break;
    for (const row of page) {
      const id = num(row.id);
      after = id;
      const halves = halvesOf(kind, row.v);
      norms.set(id, halfNorm(halves));
      const res = await search({ code: fromBitString(row.code), embedding: decodeHalf(halves) }, { k: neighbours + 1 });
      for (const h of res.hits) {
        if (h.id === id || h.distance === null) continue;
        const a = Math.min(id, h.id);
        const b = Math.max(id, h.id);
        const key = `${a}:${b}`;
        if (seen.has(key) || !within(h.distance, await normOf(id), await normOf(h.id))) continue;
        seen.add(key);
        pairs.push({ a, b, hamming: h.hamming, distance: h.distance });
        uf.union(a, b);
      }
    }
  }
  return groupPairs(pairs, uf);
}
