/**
 * A throw-away PostgreSQL 15 cluster for tests and benches: initdb in a fresh temp dir, a server on a
 * free port of 127.0.0.1 (its socket inside that dir, so several sessions never share one), trust
 * auth, fsync off; `stop()` shuts it down and removes the dir. Debian's `postgresql` package puts the
 * binaries in /usr/lib/postgresql/15/bin (no pgvector: the exact-scan path). initdb refuses to run as
 * root, so as root the programs run as the `postgres` user (runuser) and the dir is chowned to it.
 */
import { execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
export const PG_BIN = '/usr/lib/postgresql/15/bin';
const RUNUSER = '/usr/sbin/runuser';

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres — the cluster's default database. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** A new empty database in this cluster (a fresh catalog per test); returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (immediate mode: tests need no checkpoint) and removes the dir. Idempotent. */
  stop(): Promise<void>;
}

/** `false` when a cluster can be started here, else why not (naming the Debian package). */
export function postgresSkipReason(): false | string {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `${PG_BIN}/initdb not found (Debian package: postgresql)`;
  if (process.getuid?.() === 0 && !existsSync(RUNUSER)) return `${RUNUSER} not found (Debian package: util-linux), needed to run initdb as postgres`;
  return false;
}

async function idOf(user: string, flag: '-u' | '-g'): Promise<number> {
  const { stdout } = await run('id', [flag, user]);
  return Number(stdout.trim());
}

/** Runs a PostgreSQL program, as `postgres` when we are root (initdb and postgres refuse root). */
async function pgRun(program: string, args: string[], cwd: string): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? [RUNUSER, ['-u', 'postgres', '--', join(PG_BIN, program), ...args]] : [join(PG_BIN, program), args];
  try {
    const { stdout } = await run(cmd, argv, { cwd, env: { ...process.env, LC_ALL: 'C' }, timeout: 60_000 });
    return stdout;
  } catch (err: unknown) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${program} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a fresh cluster; throws with postgresSkipReason() when PostgreSQL is not installed. */
export async function startPostgres(opts: { maxConnections?: number } = {}): Promise<PgCluster> {
  const skip = postgresSkipReason();
  if (skip) throw new Error(skip);
  const dir = mkdtempSync(join(tmpdir(), 'sightline-pg-'));
  let started = false;
  try {
    if (process.getuid?.() === 0) chownSync(dir, await idOf('postgres', '-u'), await idOf('postgres', '-g'));
    const data = join(dir, 'data');
    await pgRun('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
    // The free port may be taken between the probe and the bind by another session: try a few.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const o = ['-p', port, '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', `max_connections=${opts.maxConnections ?? 100}`].join(' ');
      try {
        await pgRun('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'server.log'), '-o', o], dir);
        started = true;
        watchdog(dir, data);
        return cluster(dir, data, port);
      } catch (err: unknown) {
        if (attempt >= 3) throw err;
      }
    }
  } finally {
    if (!started) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A detached shell that stops the cluster and removes its dir once this process is gone: a test
 * killed by a timeout (or kill -9) never runs its after() hook, and would leave a server running.
 */
function watchdog(dir: string, data: string): void {
  const stop = process.getuid?.() === 0 ? `${RUNUSER} -u postgres -- ${PG_BIN}/pg_ctl` : `${PG_BIN}/pg_ctl`;
  const script = `while kill -0 ${process.pid} 2>/dev/null && [ -d "$1" ]; do sleep 1; done; [ -d "$1" ] && ${stop} stop -m immediate -D "$2" >/dev/null 2>&1; rm -rf "$1"`;
  const child = spawn('/bin/sh', ['-c', script, 'watchdog', dir, data], { detached: true, stdio: 'ignore', cwd: dir });
  child.unref();
}

function cluster(dir: string, data: string, port: number): PgCluster {
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let dbs = 0;
  let stopped = false;
  return Object.freeze({
    url,
    port,
    dir,
    async createDatabase(name = `t${process.pid}_${++dbs}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name must match [a-z_][a-z0-9_]*, got '${name}'`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await pgRun('pg_ctl', ['stop', '-w', '-m', 'immediate', '-D', data], dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });
}
