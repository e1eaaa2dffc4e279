import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokenJpeg, DEMO_DIR, FIXTURES, tempDir, testCodesPath, testModelPath } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const work = tempDir('sightline-cli-');
const photos = join(work.path, 'photos');
const db = join(work.path, 'db');

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args, '--model', testModelPath(), '--codes', testCodesPath(), '--db', db], {
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

test('search --json: results with id, source (the indexed path), distance, hamming, labels', () => {
  const res = cli('search', join(photos, 'horses.jpg'), '--k', '2', '--json');
  assert.equal(res.code, 0, res.stderr);
  const body = JSON.parse(res.stdout) as { results: { id: number; source: string; distance: number; hamming: number; labels: string[] }[] };
  assert.equal(body.results.length, 2);
  assert.equal(body.results[0]?.source, join(photos, 'horses.jpg'));
  assert.equal(body.results[0]?.distance, 0);
  assert.equal(body.results[0]?.hamming, 0);
  assert.deepEqual(Object.keys(body.results[0] ?? {}).sort(), ['distance', 'hamming', 'id', 'labels', 'source']);
  assert.ok((body.results[1]?.distance ?? 0) > 0);
});

test('user errors exit with a message, no stack', () => {
  const missing = cli('index', join(work.path, 'nope'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /folder '.*nope' does not exist/);
  const noDb = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'search', join(photos, 'dog.jpg'), '--model', testModelPath(), '--codes', testCodesPath(), '--db', join(work.path, 'empty')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(noDb.status, 2);
  assert.match(noDb.stderr, /no index database/);
  assert.doesNotMatch(noDb.stderr, /\n\s+at /);
});
