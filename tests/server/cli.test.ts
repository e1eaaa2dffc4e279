import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokenJpeg, DEMO_DIR, FIXTURES, tempDir, testCodesPath, testModelPath } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const work = tempDir('sightline-cli-');
const photos = join(work.path, 'photos');
const db = join(work.path, 'db');

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  return cliRaw(...args, '--model', testModelPath(), '--codes', testCodesPath(), '--db', db);
}

function cliRaw(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SIGHTLINE_THREADS: '2' },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

before(() => {
  mkdirSync(join(photos, 'sub'), { recursive: true });
  copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(photos, 'dog.jpg'));
  copyFileSync(join(FIXTURES, 'images', 'horses.jpg'), join(photos, 'horses.jpg'));
  copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(photos, 'same-dog.jpg'));
  writeFileSync(join(photos, 'broken.jpg'), brokenJpeg());
  writeFileSync(join(photos, 'todo.txt'), 'not a photo');
  copyFileSync(join(DEMO_DIR, 'bag', '00.png'), join(photos, 'sub', 'bag.png'));
});
after(() => work.cleanup());

test('index: skips non-images and duplicates, reports the broken file, prints a summary; a rerun adds nothing', () => {
  const first = cli('index', photos, '--recursive', '--verbose');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /indexed 3 new images of 6 files/);
  assert.match(first.stdout, /skipped 2 \(1 already indexed, 1 not images\), failed 1/);
  assert.match(first.stderr, /failed: .*broken\.jpg: could not decode the JPEG image/);
  assert.match(first.stderr, /skipped: .*todo\.txt: not an image/);

  const again = cli('index', photos, '--recursive');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /indexed 0 new images of 6 files/);
  assert.match(again.stdout, /skipped 5 \(4 already indexed, 1 not images\), failed 1/);
  assert.match(again.stdout, /the index holds 3 images/);
});

test('search --json: results with id, source (the indexed path), distance, hamming, labels, unknown, ood_score', () => {
  const res = cli('search', join(photos, 'horses.jpg'), '--k', '2', '--json');
  assert.equal(res.code, 0, res.stderr);
  const body = JSON.parse(res.stdout) as { results: { id: number; source: string; distance: number; hamming: number; labels: string[]; unknown: unknown; ood_score: unknown }[] };
  assert.equal(body.results.length, 2);
  // `sightline index` scores each image (catalog schema 3): the verdict and score come back, not null.
  assert.equal(typeof body.results[0]?.unknown, 'boolean');
  assert.ok(Number.isFinite(body.results[0]?.ood_score), `ood_score ${String(body.results[0]?.ood_score)}`);
  assert.equal(body.results[0]?.source, join(photos, 'horses.jpg'));
  assert.equal(body.results[0]?.distance, 0);
  assert.equal(body.results[0]?.hamming, 0);
  assert.deepEqual(Object.keys(body.results[0] ?? {}).sort(), ['distance', 'hamming', 'id', 'labels', 'near_duplicate', 'ood_score', 'source', 'unknown']);
  assert.ok((body.results[1]?.distance ?? 0) > 0);
});

test('search reads beside a writer that holds the index lock (a running server)', () => {
  // The lock names a live process (this test runner), exactly what a serving process leaves.
  writeFileSync(join(db, 'index.lock'), `${process.pid}\n`);
  try {
    const res = cli('search', join(photos, 'horses.jpg'), '--k', '1', '--json');
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as { results: { source: string }[] }).results[0]?.source, join(photos, 'horses.jpg'));
  } finally {
    rmSync(join(db, 'index.lock'), { force: true });
  }
});

test('reindex --model re-embeds every image from its source; missing sources stop it unless dropped', () => {
  const modelB = testModelPath(8);
  const codesB = testCodesPath(128, 11, 'center', modelB);
  const copy = join(work.path, 'db-b');
  cpSync(db, copy, { recursive: true });
  const re = cliRaw('reindex', '--db', copy, '--model', modelB, '--codes', codesB);
  assert.equal(re.code, 0, re.stderr);
  assert.match(re.stdout, /re-embedded 3 images/);
  assert.match(re.stdout, /rebuilt the graph of 3 images \(3 distinct 128-bit codes\)/);
  // The stored vectors are what model B computes for the same file: each image finds itself at distance 0.
  for (const file of [join(photos, 'horses.jpg'), join(photos, 'sub', 'bag.png')]) {
    const res = cliRaw('search', file, '--k', '1', '--json', '--model', modelB, '--codes', codesB, '--db', copy);
    assert.equal(res.code, 0, res.stderr);
    const top = (JSON.parse(res.stdout) as { results: { source: string; distance: number }[] }).results[0];
    assert.deepEqual([top?.source, top?.distance], [file, 0]);
  }
  const old = cliRaw('search', join(photos, 'dog.jpg'), '--model', testModelPath(), '--codes', testCodesPath(), '--db', copy);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /was built with another model: model differs/);

  const gone = join(work.path, 'db-gone');
  cpSync(db, gone, { recursive: true });
  rmSync(join(photos, 'sub', 'bag.png'));
  const stuck = cliRaw('reindex', '--db', gone, '--model', modelB, '--codes', codesB);
  assert.notEqual(stuck.code, 0);
  assert.match(stuck.stderr, /1 images could not be re-embedded .*--drop-unavailable/);
  const dropped = cliRaw('reindex', '--db', gone, '--model', modelB, '--codes', codesB, '--drop-unavailable');
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.match(dropped.stdout, /removed 1 whose source is gone/);
  assert.match(dropped.stdout, /rebuilt the graph of 2 images/);
});

test('runtime failures exit 1 with a message, no stack', () => {
  const missing = cli('index', join(work.path, 'nope'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /folder '.*nope' does not exist/);
  const noDb = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'search', join(photos, 'dog.jpg'), '--model', testModelPath(), '--codes', testCodesPath(), '--db', join(work.path, 'empty')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(noDb.status, 1);
  assert.match(noDb.stderr, /no index database/);
  assert.doesNotMatch(noDb.stderr, /\n\s+at /);
});
