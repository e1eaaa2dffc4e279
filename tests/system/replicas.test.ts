/**
 * Two `sightline serve` processes on one throw-away PostgreSQL 15 (testing/postgres.ts; Debian
 * package: postgresql), sharing one blob folder, as docs/deploy.md runs them: the same 50 images
 * uploaded through both at once land as 50 rows; search through either answers the same ids; a
 * thumbnail of an image uploaded through one is served by the other, and a delete through one is
 * seen by the other at once; kill -9 of the replica that
 * runs a batch-index job makes the other take the job over and finish it, nothing lost, nothing
 * doubled; `sightline reindex --codes` meanwhile makes the replica still on the old codes not ready
 * and refuse searches and uploads. The replicas are node processes spawned directly (tests/faults/fixtures/proc.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { tempDir } from '../../testing/models.js';
import { postgresSkipReason, startPostgres } from '../../testing/postgres.js';
import type { PgCluster } from '../../testing/postgres.js';
import { makeCorpus } from '../faults/fixtures/corpus.js';
import { listeningUrl, modelFlags, runCli, type Child } from '../faults/fixtures/proc.js';

const skip = postgresSkipReason();
const work = tempDir('sightline-replicas-');
const blobs = join(work.path, 'blobs');
const photos = join(work.path, 'photos');
const JOB_FILES = 120;
let cluster: PgCluster | undefined;
let db: pg.Pool | undefined;
let dbUrl = '';
const replicas: { child: Child; url: string }[] = [];

async function startReplica(name: string): Promise<{ child: Child; url: string }> {
  const child = runCli(['serve', '--db', dbUrl, '--port', '0', '--host', '127.0.0.1', '--no-demo', ...modelFlags()], {
    env: { SIGHTLINE_DATA: join(work.path, `data-${name}`), SIGHTLINE_BLOB_DIR: blobs, SIGHTLINE_INDEX_ROOTS: photos, SIGHTLINE_JOB_LEASE_MS: '1500', SIGHTLINE_JOB_CONCURRENCY: '2', SIGHTLINE_THREADS: '1' },
  });
  const url = await listeningUrl(child);
  for (let i = 0; ; i++) {
    const ready = await fetch(`${url}/v2/health/ready`).then((r) => r.status, () => 0);
    if (ready === 200) break;
    if (i > 600) assert.fail(`replica ${name} never became ready:\n${child.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url };
}

const count = async (sql: string): Promise<number> => Number((await (db as pg.Pool).query<{ n: string }>(sql)).rows[0]?.n);

before(async () => {
  if (skip) return;
  cluster = await startPostgres();
  dbUrl = await cluster.createDatabase();
  db = new pg.Pool({ connectionString: dbUrl, max: 2 });
  await makeCorpus(join(work.path, 'uploads-src'), 50, 0, 0);
  await makeCorpus(join(photos, 'batch'), JOB_FILES + 50, 0, 0);
  // The job's folder must not hold the 50 uploaded images: drop the first 50 (same pixels as the uploads).
  for (const f of readdirSync(join(photos, 'batch')).sort().slice(0, 50)) rmSync(join(photos, 'batch', f));
  // One replica creates the schema; the second starts on the existing catalog.
  replicas.push(await startReplica('a'));
  replicas.push(await startReplica('b'));
});
after(async () => {
  for (const r of replicas) await r.child.kill9();
  await db?.end();
  await cluster?.stop();
  work.cleanup();
});

describe('two replicas on one PostgreSQL', { skip }, () => {
  test('the same 50 images uploaded through both at once: 50 rows, one 201 each, same search answers', async () => {
    const [a, b] = replicas as [{ child: Child; url: string }, { child: Child; url: string }];
    const dir = join(work.path, 'uploads-src');
    const files = readdirSync(dir).sort();
    const statuses: number[] = [];
    const send = async (url: string, file: string): Promise<void> => {
      const res = await fetch(`${url}/v1/images`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync(join(dir, file)) });
      statuses.push(res.status);
      await res.arrayBuffer();
    };
    for (let i = 0; i < files.length; i += 5) {
      const batch = files.slice(i, i + 5);
      await Promise.all(batch.flatMap((f) => [send(a.url, f), send(b.url, f)]));
    }
    assert.equal(statuses.filter((s) => s === 201).length, 50, 'each image created once');
    assert.equal(statuses.filter((s) => s === 200).length, 50, 'its twin answered with the existing image');
    assert.equal(await count('SELECT count(*) AS n FROM images'), 50);
    assert.equal(await count('SELECT count(DISTINCT sha256) AS n FROM images'), 50);
    assert.equal(readdirSync(join(blobs, 'uploads')).length, 50, 'one stored original per image, in the shared folder');

    for (const f of files.slice(0, 5)) {
      const ask = async (url: string): Promise<number[]> => {
        const res = await fetch(`${url}/v1/search?k=10`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync(join(dir, f)) });
        assert.equal(res.status, 200);
        return ((await res.json()) as { results: { id: number }[] }).results.map((h) => h.id);
      };
      const [ia, ib] = [await ask(a.url), await ask(b.url)];
      assert.equal(ia.length, 10);
      assert.deepEqual(ib, ia, `search for ${f} answers the same ids through either replica`);
    }
    const someId = await count('SELECT min(id) AS n FROM images');
    const thumb = await fetch(`${b.url}/v1/images/${someId}/thumbnail`);
    assert.equal(thumb.status, 200, 'any replica serves any thumbnail');
    assert.equal(thumb.headers.get('content-type'), 'image/webp');

    // A delete through one replica is seen by the other at once: no cache of the catalog anywhere.
    const gone = (await (await fetch(`${a.url}/v1/images/${someId}`)).json()) as { sha256: string };
    assert.equal((await fetch(`${a.url}/v1/images/${someId}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${b.url}/v1/images/${someId}`)).status, 404);
    // Searched with the deleted image's own bytes: before the delete, it was the first hit.
    const first = files.find((f) => createHash('sha256').update(readFileSync(join(dir, f))).digest('hex') === gone.sha256) as string;
    const after = await fetch(`${b.url}/v1/search?k=50`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync(join(dir, first)) });
    assert.ok(!((await after.json()) as { results: { id: number }[] }).results.some((h) => h.id === someId), 'search through the other replica no longer finds it');
    assert.equal(await count('SELECT count(*) AS n FROM images'), 49);
    assert.ok(!readdirSync(join(blobs, 'uploads')).some((f) => f.startsWith(gone.sha256)), 'its stored original is gone from the shared folder');
  });

  test('kill -9 of the replica running a batch job: the other takes it over and finishes it, nothing lost or doubled', async () => {
    const [a, b] = replicas as [{ child: Child; url: string }, { child: Child; url: string }];
    const start = await fetch(`${a.url}/v1/jobs/index`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(photos, 'batch') }) });
    assert.equal(start.status, 202);
    const id = ((await start.json()) as { id: string }).id;
    let owner: string | undefined;
    for (let i = 0; ; i++) {
      const r = (await db?.query<{ owner: string | null; n: string }>(`SELECT owner, (SELECT count(*) FROM index_job_files WHERE job_id = $1) AS n FROM index_jobs WHERE id = $1`, [id]))?.rows[0];
      if (r?.owner && Number(r.n) >= 15) {
        owner = r.owner;
        break;
      }
      if (i > 1200) assert.fail('the job never got going');
      await new Promise((res) => setTimeout(res, 25));
    }
    assert.ok(owner);
    const pid = Number(owner.split(':')[1]);
    const [victim, survivor] = a.child.proc.pid === pid ? [a, b] : [b, a];
    assert.equal(victim.child.proc.pid, pid, `the owner ${owner} is one of the replicas`);
    await victim.child.kill9();
    for (let i = 0; ; i++) {
      const job = (await (await fetch(`${survivor.url}/v1/jobs/${id}`)).json()) as { state: string };
      if (job.state === 'done') break;
      if (i > 2400) assert.fail(`job not finished by the survivor: ${JSON.stringify(job)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const job = (await (await fetch(`${survivor.url}/v1/jobs/${id}`)).json()) as { total: number; new: number; processed: number; failed: number; duplicates: number };
    assert.equal(job.total, JOB_FILES);
    assert.equal(job.processed, JOB_FILES, 'every file once in the counts');
    assert.equal(job.new, JOB_FILES, 'files in flight at the kill count once, as added');
    assert.equal(job.failed, 0);
    assert.equal(await count('SELECT count(*) AS n FROM images'), 49 + JOB_FILES, 'nothing lost, nothing doubled (49 uploads left after the delete)');
    assert.equal(await count(`SELECT runs AS n FROM index_jobs WHERE id = '${id}'`), 2, 'claimed by the victim, then by the survivor');
    assert.notEqual((await db?.query<{ owner: string | null }>('SELECT owner FROM index_jobs WHERE id = $1', [id]))?.rows[0]?.owner, owner);
    replicas.splice(replicas.indexOf(victim), 1);
  });

  test('reindex --codes while a replica serves: it becomes not ready and refuses search and upload (409) until restarted', async () => {
    const live = replicas[0] as { child: Child; url: string };
    const image = readFileSync(join(work.path, 'uploads-src', readdirSync(join(work.path, 'uploads-src')).sort()[3] as string));
    const before = await fetch(`${live.url}/v1/search?k=5`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image });
    assert.equal(before.status, 200);
    const re = runCli(['reindex', '--db', dbUrl, '--codes', 'random-projection']);
    assert.equal(await re.exited, 0, re.output());
    assert.match(re.output(), new RegExp(`recomputed ${49 + JOB_FILES} codes \\(128 bits\\)`));
    for (let i = 0; ; i++) {
      const ready = await fetch(`${live.url}/v2/health/ready`);
      const body = await ready.text();
      if (ready.status === 503) break;
      if (i > 200) assert.fail(`still ready after the reindex: ${body}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The reason is logged (the readiness route answers only ready: false).
    assert.match(await live.child.waitFor(/catalog reindexed for another model/, 10_000), /not ready/);
    const search = await fetch(`${live.url}/v1/search?k=5`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image });
    assert.equal(search.status, 409);
    assert.match(await search.text(), /code model differs/);
    const upload = await fetch(`${live.url}/v1/images`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.concat([image, Buffer.from('x')]) });
    assert.equal(upload.status, 409);
    assert.equal(await count('SELECT count(*) AS n FROM images'), 49 + JOB_FILES, 'nothing added with the old codes');
  });
});
