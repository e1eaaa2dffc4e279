/**
 * The SQL port the PostgreSQL backend is written against: `query(text, params)` and a transaction
 * on one connection. node-postgres (`pg.Pool`, production) and PGlite (tests and benches, pgvector
 * in-process: testing/pglite.ts) both plug in, so one implementation serves a real server and the
 * embedded engine.
 *
 * Connection failures become IndexUnavailableError (kind `unavailable`: 503, CLI exit 1) naming the
 * URL without its password; SQL errors pass through untouched.
 */
import pg from 'pg';
import { IndexUnavailableError } from '../errors.js';

export interface SqlQuery {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
}

export interface SqlClient extends SqlQuery {
  /** Runs `fn` inside BEGIN … COMMIT on one connection; ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T>;
  /** Where it points, without a password (for messages). */
  readonly display: string;
  close(): Promise<void>;
}

/** Codes of a connection that cannot be made or was lost (node errno, PostgreSQL SQLSTATE classes 08, 28, 57P0x, 53300). */
const UNREACHABLE = /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|08\w{3}|28\w{3}|57P0[1-3]|53300|3D000)$/;

export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNREACHABLE.test(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i.test(String((err as Error | null)?.message ?? ''));
}

/** Turns a lost or refused connection into the domain error; anything else is rethrown as is. */
export function unavailable(display: string, err: unknown): never {
  if (!isUnreachable(err)) throw err;
  const why = String((err as Error).message ?? err).replace(/\/\/[^@/\s]*@/g, '//***@');
  throw new IndexUnavailableError(`database '${display}' is unreachable: ${why}`, { cause: err });
}

export interface PoolOptions {
  /** Most connections (default 10). */
  max?: number;
  /** Give up connecting after this long (default 5000 ms). */
  connectTimeoutMs?: number;
}

/** node-postgres pool behind the port. */
export function poolClient(url: string, display: string, opts: PoolOptions = {}): SqlClient {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, application_name: 'sightline' });
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const run = async <R>(q: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]): Promise<{ rows: R[] }> => {
    try {
      const r = await q.query(text, params as unknown[] | undefined);
      return { rows: r.rows as R[] };
    } catch (err) {
      return unavailable(display, err);
    }
  };
  return {
    display,
    query: (text, params) => run(pool, text, params),
    async transaction(fn) {
      const conn = await pool.connect().catch((err: unknown) => unavailable(display, err));
      try {
        await run(conn, 'BEGIN');
        const out = await fn({ query: (text, params) => run(conn, text, params) });
        await run(conn, 'COMMIT');
        conn.release();
        return out;
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => undefined);
        // A connection that broke mid-transaction is dropped, not handed to the next caller.
        conn.release(err instanceof IndexUnavailableError ? true : undefined);
        throw err;
      }
    },
    close: () => pool.end(),
  };
}
