/**
 * testing/postgres.ts gives a working throw-away PostgreSQL 15: real queries through `pg` (the driver
 * the PostgreSQL backend uses), concurrent connections, a fresh database per caller, and nothing left
 * behind after stop(). Needs Debian's postgresql package (`.ci/run` installs it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { postgresSkipReason, startPostgres } from '../../testing/postgres.js';
import type { PgCluster } from '../../testing/postgres.js';

const skip = postgresSkipReason();
let cluster: PgCluster | undefined;

before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => {
  await cluster?.stop();
});

test('the cluster answers real queries on 127.0.0.1', { skip }, async () => {
  assert.ok(cluster);
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    const version = await client.query<{ server_version_num: string }>('SHOW server_version_num');
    assert.match(version.rows[0]?.server_version_num ?? '', /^15\d{4}$/, 'PostgreSQL 15');
    // bit(n) and bit_count are what the exact-scan search path relies on.
    const hamming = await client.query<{ d: string }>("SELECT bit_count(B'10110000' # B'10011111') AS d");
    assert.equal(Number(hamming.rows[0]?.d), 5);
    const addr = await client.query<{ a: string }>('SELECT inet_server_addr()::text AS a');
    assert.equal(addr.rows[0]?.a, '127.0.0.1/32');
  } finally {
    await client.end();
  }
});

test('each createDatabase is a separate, empty database; concurrent inserts of one key land once', { skip }, async () => {
  assert.ok(cluster);
  const [a, b] = [await cluster.createDatabase(), await cluster.createDatabase()];
  assert.notEqual(a, b);
  const pool = new pg.Pool({ connectionString: a, max: 4 });
  try {
    await pool.query('CREATE TABLE t (sha text PRIMARY KEY)');
    // The same key inserted from 8 concurrent statements lands once (what idempotent uploads rely on).
    const inserts = Array.from({ length: 8 }, () => pool.query("INSERT INTO t VALUES ('x') ON CONFLICT DO NOTHING"));
    const counts = (await Promise.all(inserts)).map((r) => r.rowCount ?? 0);
    assert.equal(counts.reduce((s, c) => s + c, 0), 1);
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1);
  } finally {
    await pool.end();
  }
  const other = new pg.Client({ connectionString: b });
  await other.connect();
  try {
    const tables = await other.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
    assert.equal(tables.rows[0].n, 0, 'the second database does not see the first one\'s table');
  } finally {
    await other.end();
  }
});

test('stop() shuts the server down and removes its dir', { skip }, async () => {
  const c = await startPostgres();
  assert.ok(existsSync(c.dir));
  await c.stop();
  assert.ok(!existsSync(c.dir));
  const client = new pg.Client({ connectionString: c.url, connectionTimeoutMillis: 2000 });
  await assert.rejects(client.connect(), /ECONNREFUSED|connect/);
  await c.stop(); // idempotent
});
