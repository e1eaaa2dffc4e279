/**
 * PGlite (PostgreSQL compiled to WebAssembly, in-process) with pgvector 0.8, behind the catalog's
 * SqlClient port: how tests and benches exercise the PostgreSQL backend's pgvector path (HNSW on
 * `bit(n)` codes, `halfvec` embeddings) without a server. In memory unless `dataDir` is given.
 * PGlite is one connection: its own mutex serialises queries, and a transaction holds it.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { SqlClient, SqlQuery } from '../index/index.js';

type Params = unknown[] | undefined;

function port(q: { query: PGlite['query'] }): SqlQuery {
  return {
    async query<R>(text: string, params?: readonly unknown[]) {
      const r = await q.query<R>(text, params as Params);
      return { rows: r.rows };
    },
  };
}

export interface PgliteClient extends SqlClient {
  readonly pglite: PGlite;
}

/** A fresh PGlite with the `vector` extension available (the catalog creates it). */
export async function pgliteClient(opts: { dataDir?: string; withVector?: boolean } = {}): Promise<PgliteClient> {
  const pglite = await PGlite.create({ ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), extensions: opts.withVector === false ? {} : { vector } });
  const base = port(pglite);
  return {
    pglite,
    display: opts.dataDir ? `pglite:${opts.dataDir}` : 'pglite:memory',
    query: base.query,
    transaction: (fn) => pglite.transaction((tx) => fn(port(tx))),
    close: () => pglite.close(),
  };
}
