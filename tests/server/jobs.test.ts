import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import pino from 'pino';
import request from 'supertest';
import { JobManager } from '../../server/jobs.js';
import type { JobView } from '../../server/ports.js';
import type { IndexRunOptions } from '../../server/services/indexing.js';
import type { WalkEntry } from '../../server/services/walk.js';
import { brokenJpeg, DEMO_DIR, demoImage, FIXTURES, image, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

const work = tempDir('sightline-jobs-');
const root = join(work.path, 'root');
const outside = join(work.path, 'outside');
let s: TestServer;

/** photos/: 2 JPEGs, a byte-identical copy, a broken JPEG, a text file, a PNG in a subfolder. */
function makeFixtures(): void {
  const photos = join(root, 'photos');
  mkdirSync(join(photos, 'sub'), { recursive: true });
  copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(photos, 'dog.jpg'));
  copyFileSync(join(FIXTURES, 'images', 'eagle.jpg'), join(photos, 'eagle.jpg'));
  copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(photos, 'dog-copy.jpg'));
  writeFileSync(join(photos, 'broken.jpg'), brokenJpeg());
  writeFileSync(join(photos, 'notes.txt'), 'shopping list: milk, eggs\n');
  copyFileSync(join(DEMO_DIR, 'sandal', '00.png'), join(photos, 'sub', 'sandal.png'));
  mkdirSync(join(root, 'many'), { recursive: true });
  for (let i = 0; i < 40; i++) copyFileSync(join(DEMO_DIR, 'coat', `${String(i % 30).padStart(2, '0')}.png`), join(root, 'many', `${i}.png`));
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret.png'), demoImage('bag/00.png'));
  symlinkSync(outside, join(root, 'escape'));
  mkdirSync(join(root, 'links'), { recursive: true });
  symlinkSync(join(outside, 'secret.png'), join(root, 'links', 'secret.png'));
  copyFileSync(join(DEMO_DIR, 'dress', '00.png'), join(root, 'links', 'dress.png'));
}

async function waitForJob(app: TestServer['app'], id: string): Promise<JobView> {
  for (;;) {
    const res = await request(app).get(`/v1/jobs/${id}`);
    assert.equal(res.status, 200);
    const job = res.body as JobView;
    if (job.state !== 'running' && job.state !== 'queued') return job;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('indexing jobs over HTTP', () => {
  before(async () => {
    makeFixtures();
    s = await startTestServer({ indexRoots: [root] });
  });
  after(async () => {
    await s.close();
    work.cleanup();
  });

  test('a job over a folder with a broken JPEG, a text file and a duplicate reaches done with the right counts', async () => {
    const start = await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'photos'), recursive: true });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    assert.equal(start.headers['location'], `/v1/jobs/${start.body.id}`);
    const job = await waitForJob(s.app, start.body.id as string);
    assert.equal(job.state, 'done');
    assert.equal(job.total, 6);
    assert.equal(job.new, 3, 'dog, eagle, sub/sandal');
    assert.equal(job.done, job.new, 'done: the deprecated alias of new');
    assert.equal(job.processed, 6, 'every file looked at: new + skipped + failed');
    assert.equal(job.skipped, 2);
    assert.equal(job.duplicates, 1);
    assert.equal(job.not_images, 1);
    assert.equal(job.failed, 1);
    assert.equal(job.errors.length, 1);
    assert.match(job.errors[0]?.file ?? '', /broken\.jpg$/);
    assert.match(job.errors[0]?.message ?? '', /JPEG/);
    assert.equal(job.eta_s, 0);
    assert.ok(job.rate > 0);
    const indexed = (await request(s.app).post('/v1/search?k=10').set('content-type', 'image/jpeg').send(image('dog.jpg'))).body.results;
    assert.equal(indexed[0].distance, 0);
    assert.match(indexed[0].source, /photos\/dog(-copy)?\.jpg$/);

    const rerun = await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'photos') });
    const second = await waitForJob(s.app, rerun.body.id as string);
    assert.deepEqual([second.new, second.done, second.processed, second.duplicates, second.not_images, second.failed], [0, 0, 6, 4, 1, 1], 'a rerun indexes nothing twice');
  });

  test('non-recursive jobs stay in the folder', async () => {
    const start = await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'photos'), recursive: false });
    const job = await waitForJob(s.app, start.body.id as string);
    assert.equal(job.total, 5);
  });

  test('paths outside the roots are refused with 403: .., symlinked folders; symlinked files out of the root are not read', async () => {
    const refused = [join(root, '..', 'outside'), `${root}/photos/../../outside`, join(root, 'escape'), '/etc', outside];
    for (const path of refused) {
      const res = await request(s.app).post('/v1/jobs/index').send({ path });
      assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'forbidden');
    }
    assert.equal((await request(s.app).post('/v1/jobs/index').send({ path: 'photos' })).status, 400);
    assert.equal((await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'nope') })).status, 404);
    assert.equal((await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'photos', 'notes.txt') })).status, 400);
    assert.equal((await request(s.app).post('/v1/jobs/index').send({ path: 42 })).status, 400);

    const links = await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'links') });
    const job = await waitForJob(s.app, links.body.id as string);
    assert.equal(job.done, 1);
    assert.equal(job.failed, 1);
    assert.match(job.errors[0]?.message ?? '', /outside the allowed roots/);
    const secret = await request(s.app).post('/v1/search?k=100').set('content-type', 'image/png').send(demoImage('bag/00.png'));
    assert.ok(secret.body.results.every((r: { source: string }) => !r.source.endsWith('secret.png')));
  });

  test('interactive requests are answered while a job runs', async () => {
    const before = jobFileCounts((await request(s.app).get('/metrics')).text);
    const start = await request(s.app).post('/v1/jobs/index').send({ path: join(root, 'many') });
    const answers = await Promise.all(Array.from({ length: 4 }, () => request(s.app).post('/v1/classify').set('content-type', 'image/png').send(demoImage('shirt/00.png'))));
    for (const a of answers) assert.equal(a.status, 200);
    const job = await waitForJob(s.app, start.body.id as string);
    assert.equal(job.state, 'done');
    assert.equal(job.done + job.duplicates, 40);
    const list = await request(s.app).get('/v1/jobs');
    assert.ok(list.body.jobs.some((j: JobView) => j.id === job.id));
    assert.equal((await request(s.app).get('/v1/jobs/nope')).status, 404);
    const metrics = (await request(s.app).get('/metrics')).text;
    const after = jobFileCounts(metrics);
    assert.equal(after.added - before.added, job.done);
    assert.equal(after.added + after.duplicate - before.added - before.duplicate, 40);
    assert.match(metrics, /sightline_jobs\{state="done"\} [1-9]/);
    assert.doesNotMatch(metrics, new RegExp(job.id), 'no metric label carries a job id');
  });

  test('no roots configured: every job is refused', async () => {
    const bare = await startTestServer();
    try {
      const res = await request(bare.app).post('/v1/jobs/index').send({ path: root });
      assert.equal(res.status, 403);
      assert.match(res.body.error.message, /SIGHTLINE_INDEX_ROOTS/);
    } finally {
      await bare.close();
    }
  });
});

/** An indexing stand-in that finishes one entry per `step()`; `blocked()` resolves once it waits for the next step. */
function gatedIndexing() {
  const calls: { startAt: number; files: string[] }[] = [];
  let release: (() => void) | undefined;
  let isBlocked = false;
  let waiters: (() => void)[] = [];
  return {
    calls,
    step(): void {
      isBlocked = false;
      release?.();
    },
    blocked(): Promise<void> {
      return isBlocked ? Promise.resolve() : new Promise((r) => waiters.push(r));
    },
    async run(entries: readonly WalkEntry[], opts: IndexRunOptions): Promise<void> {
      calls.push({ startAt: opts.startAt ?? 0, files: entries.map((e) => basename(e.path)) });
      for (let i = opts.startAt ?? 0; i < entries.length && !opts.signal?.aborted; i++) {
        await new Promise<void>((r) => {
          release = r;
          opts.signal?.addEventListener('abort', () => r(), { once: true });
          isBlocked = true;
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        });
        if (opts.signal?.aborted) return;
        opts.onOutcome?.(i, entries[i] as WalkEntry, { kind: 'added', id: i + 1 });
      }
    },
  };
}

describe('job manager: cancel, checkpoint and resume', () => {
  const dir = tempDir('sightline-jobstate-');
  const folder = join(dir.path, 'pics');
  before(() => {
    mkdirSync(folder);
    for (let i = 0; i < 5; i++) writeFileSync(join(folder, `${i}.png`), demoImage('bag/00.png'));
  });
  after(() => dir.cleanup());
  const logger = pino({ level: 'silent' });

  test('a job stopped by shutdown resumes from its journal in a new manager', async () => {
    const stateFile = join(dir.path, 'jobs.json');
    const first = gatedIndexing();
    const m1 = new JobManager(first, { roots: [dir.path], stateFile, concurrency: 1, logger });
    const job = await m1.start(folder, true);
    for (let i = 0; i < 2; i++) {
      await first.blocked();
      first.step();
    }
    await first.blocked();
    assert.equal(m1.get(job.id).done, 2);
    await m1.shutdown();
    assert.equal(m1.get(job.id).state, 'interrupted');

    const second = gatedIndexing();
    const m2 = new JobManager(second, { roots: [dir.path], stateFile, concurrency: 1, logger });
    assert.deepEqual(m2.resumeInterrupted(), [job.id]);
    for (let i = 0; i < 3; i++) {
      await second.blocked();
      second.step();
    }
    await m2.idle();
    assert.deepEqual(second.calls, [{ startAt: 0, files: ['2.png', '3.png', '4.png'] }], 'the resumed run gets only the files its journal does not list');
    const done = m2.get(job.id);
    assert.equal(done.state, 'done');
    assert.equal(done.total, 5);
    assert.equal(done.done, 5, 'counted once each across the two runs');
  });

  test('a failed job shows the error code, never the server path node put in the message', async () => {
    const failing = {
      run: () => Promise.reject(Object.assign(new Error(`ENOENT: no such file or directory, scandir '${folder}/gone'`), { code: 'ENOENT', syscall: 'scandir' })),
    };
    const m = new JobManager(failing, { roots: [dir.path], stateFile: join(dir.path, 'jobs-failing.json'), concurrency: 1, logger });
    const job = await m.start(folder, true);
    await m.idle();
    const view = m.get(job.id);
    assert.equal(view.state, 'failed');
    assert.equal(view.failure, 'ENOENT in scandir (details in the server log)');
  });

  test('cancel stops a running job and drops a queued one', async () => {
    const g = gatedIndexing();
    const m = new JobManager(g, { roots: [dir.path], stateFile: join(dir.path, 'jobs2.json'), concurrency: 1, logger });
    const running = await m.start(folder, true);
    await g.blocked();
    const queued = await m.start(folder, true);
    assert.equal(m.get(running.id).state, 'running');
    assert.equal(m.get(queued.id).state, 'queued');
    assert.equal(m.cancel(queued.id).state, 'cancelled');
    g.step();
    await g.blocked();
    assert.equal(m.cancel(running.id).state, 'cancelled');
    await m.idle();
    const j = m.get(running.id);
    assert.equal(j.state, 'cancelled');
    assert.equal(j.done, 1);
    assert.equal(g.calls.length, 1, 'the cancelled queued job never ran');
  });
});

/** The job file counters by outcome, 0 where a series has not been created yet. */
function jobFileCounts(metrics: string): { added: number; duplicate: number } {
  const read = (outcome: string): number => Number(new RegExp(`sightline_job_files_total\\{outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  return { added: read('added'), duplicate: read('duplicate') };
}
