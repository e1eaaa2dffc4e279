/**
 * Indexing jobs shared by replicas through PostgreSQL (server/jobs-shared.ts over index/'s
 * PgJobQueue), on a real PostgreSQL 15 (testing/postgres.ts; Debian package: postgresql): several
 * managers polling one queue never run the same job twice at once, a job whose owner stopped
 * renewing its lease is taken over and only its unfinished files run again, SIGTERM hands a job
 * back at once, and a cancel on any replica stops the owner. The indexing itself is a gated stand-in
 * (what the manager hands it and when is the subject here); tests/system/replicas.test.ts runs the
 * real thing across two server processes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { JOB_TABLES_SQL, PgJobQueue } from '../../index/index.js';
import { SharedJobManager } from '../../server/jobs-shared.js';
import type { IndexRunOptions } from '../../server/services/indexing.js';
import type { WalkEntry } from '../../server/services/walk.js';
import { tempDir } from '../../testing/models.js';
import { postgresSkipReason, startPostgres } from '../../testing/postgres.js';
import type { PgCluster } from '../../testing/postgres.js';

const skip = postgresSkipReason();
const logger = pino({ level: 'silent' });
/** The dead replica's lease: short, so the takeover comes soon. */
const LEASE_MS = 600;
/** Live managers' leases: long enough that a loaded machine's stalls never cost a lease (a takeover would be right, but not this test's subject). */
const LIVE_LEASE_MS = 5000;
let cluster: PgCluster | undefined;
let pool: pg.Pool | undefined;
const dir = tempDir('sightline-shared-jobs-');
const folder = join(dir.path, 'pics');

before(async () => {
  mkdirSync(folder);
  for (let i = 0; i < 6; i++) writeFileSync(join(folder, `${i}.png`), `not really a png ${i}`);
  if (skip) return;
  cluster = await startPostgres();
  pool = new pg.Pool({ connectionString: await cluster.createDatabase(), max: 8 });
  for (const statement of JOB_TABLES_SQL) await pool.query(statement);
});
after(async () => {
  await pool?.end();
  await cluster?.stop();
  dir.cleanup();
});

/** A stand-in for IndexingService.run: each file waits for `step()` when gated, then counts as added. */
function indexing(opts: { gated: boolean; name: string; log: { replica: string; file: string }[] }) {
  const waiters: (() => void)[] = [];
  let blocked: (() => void) | undefined;
  const runs: string[][] = [];
  return {
    runs,
    step: () => waiters.shift()?.(),
    blocked: () => new Promise<void>((r) => (waiters.length > 0 ? r() : (blocked = r))),
    async run(entries: readonly WalkEntry[], o: IndexRunOptions): Promise<void> {
      runs.push(entries.map((e) => e.path.slice(folder.length + 1)));
      // Like the real service: an abort lets the file in flight end and takes no further file.
      o.signal?.addEventListener('abort', () => waiters.splice(0).forEach((w) => w()));
      for (let i = 0; i < entries.length; i++) {
        if (opts.gated) {
          await new Promise<void>((r) => {
            waiters.push(r);
            blocked?.();
            blocked = undefined;
          });
        }
        if (o.signal?.aborted) return;
        const entry = entries[i] as WalkEntry;
        opts.log.push({ replica: opts.name, file: entry.path });
        o.onOutcome?.(i, entry, { kind: 'added', id: i + 1 });
      }
    },
  };
}

const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 1500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
};

describe('jobs shared through PostgreSQL', { skip }, () => {
  test('three replicas polling one queue run each of five jobs once, and every file once', async () => {
    assert.ok(pool);
    const queue = new PgJobQueue(pool);
    const log: { replica: string; file: string }[] = [];
    const managers = ['a', 'b', 'c'].map((name) => new SharedJobManager(queue, indexing({ gated: false, name, log }), { roots: [dir.path], concurrency: 2, logger, leaseMs: LIVE_LEASE_MS, pollMs: 5 }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await (managers[i % 3] as SharedJobManager).start(folder, true)).id);
    for (const m of managers) m.resumeInterrupted();
    await (managers[0] as SharedJobManager).idle();
    for (const id of ids) {
      const job = await (managers[1] as SharedJobManager).get(id);
      assert.equal(job.state, 'done');
      assert.equal(job.new, 6);
      assert.equal(job.total, 6);
      assert.equal((await queue.get(id))?.runs, 1, 'claimed once');
    }
    assert.equal(log.length, 5 * 6, 'each file of each job ran exactly once');
    await Promise.all(managers.map((m) => m.shutdown()));
  });

  test('a job whose replica stopped renewing is taken over after the lease; only unfinished files run again', async () => {
    assert.ok(pool);
    const queue = new PgJobQueue(pool);
    const job = await queue.create({ id: crypto.randomUUID(), path: folder, realPath: folder, recursive: true });
    // A replica that claimed it, finished two files and then died (kill -9: no hand-back, no renewals).
    const dead = await queue.claim('dead-replica', LEASE_MS);
    assert.equal(dead?.job.id, job.id);
    await queue.record(job.id, join(folder, '0.png'), 'added');
    await queue.record(job.id, join(folder, '1.png'), 'added');
    const log: { replica: string; file: string }[] = [];
    const idx = indexing({ gated: false, name: 'b', log });
    const b = new SharedJobManager(queue, idx, { roots: [dir.path], concurrency: 1, logger, leaseMs: LIVE_LEASE_MS, pollMs: 20 });
    const t0 = Date.now();
    b.resumeInterrupted();
    await until('the takeover', async () => (await queue.get(job.id))?.state === 'done');
    assert.ok(Date.now() - t0 >= LEASE_MS / 2, 'not before the lease could have run out');
    assert.deepEqual(idx.runs, [['2.png', '3.png', '4.png', '5.png']]);
    const done = await b.get(job.id);
    assert.equal(done.new, 6, 'two by the dead replica, four by the new owner, none twice');
    assert.equal((await queue.get(job.id))?.runs, 2);
    await b.shutdown();
  });

  test('shutdown hands the running job back at once; a cancel on another replica stops its owner', async () => {
    assert.ok(pool);
    const queue = new PgJobQueue(pool);
    const log: { replica: string; file: string }[] = [];
    const ia = indexing({ gated: true, name: 'a', log });
    const a = new SharedJobManager(queue, ia, { roots: [dir.path], concurrency: 1, logger, leaseMs: 60_000, pollMs: 20 });
    a.resumeInterrupted();
    const job = await a.start(folder, true);
    for (let i = 0; i < 2; i++) {
      await ia.blocked();
      ia.step();
    }
    await ia.blocked();
    const stopped = a.shutdown();
    ia.step(); // the file in flight ends; the aborted run takes no further file
    await stopped;
    const handed = await queue.get(job.id);
    assert.equal(handed?.state, 'queued', 'back in the queue without waiting for the 60 s lease');
    assert.equal(handed?.counts.added, 2);

    const ib = indexing({ gated: true, name: 'b', log });
    // b renews every 200 ms: it learns of the cancel within that.
    const b = new SharedJobManager(queue, ib, { roots: [dir.path], concurrency: 1, logger, leaseMs: 3 * 200, pollMs: 20 });
    b.resumeInterrupted();
    await ib.blocked();
    assert.deepEqual(ib.runs, [['2.png', '3.png', '4.png', '5.png']]);
    ib.step();
    await until('the third file', async () => (await queue.get(job.id))?.counts.added === 3);
    // Cancelled through another replica's manager: b learns it at its next renewal.
    const c = new SharedJobManager(queue, indexing({ gated: false, name: 'c', log }), { roots: [dir.path], concurrency: 1, logger, leaseMs: LIVE_LEASE_MS });
    assert.equal((await c.cancel(job.id)).state, 'cancelled');
    await ib.blocked();
    ib.step();
    await until('b to stop', async () => (await queue.get(job.id))?.owner === null);
    await b.shutdown();
    const end = await queue.get(job.id);
    assert.equal(end?.state, 'cancelled');
    assert.ok((end?.counts.added ?? 0) <= 4, 'nothing ran after the cancel was seen');
    await assert.rejects(c.get('no-such-job'), /does not exist/);
    await assert.rejects(c.get(crypto.randomUUID()), /does not exist/);
  });
});
