/**
 * Files swapped after the server decided to read them: a job's file replaced by a symlink (or a
 * FIFO) out of SIGHTLINE_INDEX_ROOTS between the folder walk and the read, and an indexed file
 * replaced after indexing before its thumbnail is made. Nothing outside the roots may be read,
 * nothing may hang, and the catalog must not gain the outside image.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import request from 'supertest';
import { sha256Hex } from '../../index/index.js';
import { JobManager } from '../../server/jobs.js';
import type { IndexRunOptions } from '../../server/services/indexing.js';
import type { WalkEntry } from '../../server/services/walk.js';
import { demoImage, FIXTURES, startTestServer, tempDir } from '../server/helpers.js';
import type { TestServer } from '../server/helpers.js';
import { faultReport } from './report.js';

const report = faultReport('files swapped for symlinks after the walk / after indexing');
const work = tempDir('sightline-swap-');
const root = join(work.path, 'root');
const outside = join(work.path, 'outside');
const secret = demoImage('bag/00.png');
let s: TestServer;

before(async () => {
  mkdirSync(join(root, 'job'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret.png'), secret);
  copyFileSync(join(FIXTURES, 'images', 'eagle.jpg'), join(outside, 'eagle.jpg'));
  for (const [i, cls] of ['coat', 'dress', 'sandal', 'shirt'].entries()) writeFileSync(join(root, 'job', `${i}.png`), demoImage(`${cls}/00.png`));
  s = await startTestServer({ indexRoots: [root] });
});
after(async () => {
  await s.close();
  work.cleanup();
});

/** Replaces `path` atomically (rename over it), as an attacker with write access to the folder would. */
function swap(path: string, make: (tmp: string) => void): void {
  const tmp = `${path}.swap`;
  make(tmp);
  renameSync(tmp, path);
}

test('a job file swapped for a symlink or a FIFO after the walk is not read; the outside image never enters the catalog', async () => {
  const dir = join(root, 'job');
  const jobs = new JobManager(
    {
      // The real indexing, entered after the walk: the swap happens in between.
      run: async (entries: readonly WalkEntry[], opts: IndexRunOptions) => {
        swap(join(dir, '1.png'), (tmp) => symlinkSync(join(outside, 'secret.png'), tmp));
        swap(join(dir, '2.png'), (tmp) => execFileSync('mkfifo', [tmp]));
        return s.rt.indexing.run(entries, opts);
      },
    },
    { roots: [realpathSync(root)], stateFile: join(work.path, 'jobs.json'), concurrency: 2, logger: pino({ level: 'silent' }) },
  );
  await jobs.start(dir, true);
  await jobs.idle();
  const job = jobs.list()[0];
  assert.ok(job);
  assert.equal(job.state, 'done');
  assert.equal(job.total, 4);
  assert.equal(job.done, 2, JSON.stringify(job));
  assert.equal(job.failed, 2, JSON.stringify(job));
  const reasons = job.errors.map((e) => e.message).sort();
  assert.match(reasons[0] ?? '', /not read: not a regular file/);
  assert.match(reasons[1] ?? '', /not read: the file resolves to a path outside the allowed roots/);
  for (const r of reasons) assert.doesNotMatch(r, new RegExp(work.path), 'no server path in job errors');
  assert.equal(await s.rt.gallery.findBySha256(sha256Hex(secret)), undefined, 'the outside image was not indexed');
  report.add({ kind: 'job file → symlink out of the roots after the walk', outcome: 'failed: outside the allowed roots', lost: 0 });
  report.add({ kind: 'job file → FIFO after the walk', outcome: 'failed: not a regular file (no hang)', lost: 0 });
});

test('an indexed file swapped after indexing: its thumbnail is 410, never the outside file', async () => {
  const dir = join(root, 'thumbs');
  mkdirSync(dir, { recursive: true });
  const files = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'];
  for (const f of files) copyFileSync(join(FIXTURES, 'images', f === 'a.jpg' ? 'dog.jpg' : f === 'b.jpg' ? 'horses.jpg' : f === 'c.jpg' ? 'person.jpg' : 'eagle.jpg'), join(dir, f));
  const ids: number[] = [];
  for (const f of files) {
    const o = await s.rt.indexing.indexFile(join(dir, f), 'interactive', [root]);
    assert.equal(o.kind, 'added', JSON.stringify(o));
    if (o.kind === 'added') ids.push(o.id);
  }
  const [a, b, c, d] = ids as [number, number, number, number];
  // a: symlink to an outside copy of another indexed image (eagle).
  swap(join(dir, 'a.jpg'), (tmp) => symlinkSync(join(outside, 'eagle.jpg'), tmp));
  // b: symlink to an outside image; c: overwritten with text; d: left alone.
  swap(join(dir, 'b.jpg'), (tmp) => symlinkSync(join(outside, 'secret.png'), tmp));
  writeFileSync(join(dir, 'c.jpg'), 'no longer an image\n');
  const cases: [number, string, RegExp][] = [
    [a, 'symlink to an outside file', /outside the allowed roots/],
    [b, 'symlink to an outside image', /outside the allowed roots/],
    [c, 'overwritten with text', /has changed since it was indexed/],
  ];
  for (const [id, kind, pattern] of cases) {
    const res = await request(s.app).get(`/v1/images/${id}/thumbnail`);
    assert.equal(res.status, 410, `${kind}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.error.message, pattern);
    assert.doesNotMatch(res.body.error.message, new RegExp(work.path), 'no server path in the message');
    report.add({ kind: `thumbnail source ${kind}`, outcome: `410 ${String(res.body.error.reason)}`, lost: 0 });
  }
  const ok = await request(s.app).get(`/v1/images/${d}/thumbnail`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'image/webp');
  rmSync(join(dir, 'd.jpg'));
  // Cached thumbnails stay served; a fresh one for a missing source is 410 too.
  assert.equal((await request(s.app).get(`/v1/images/${d}/thumbnail`)).status, 200);
});
