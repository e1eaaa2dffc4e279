/**
 * `sightline reindex --model` on a PostgreSQL catalog (a throw-away PostgreSQL 15 cluster; skipped
 * without it, Debian package: postgresql): every source is read again and embedded with model B,
 * each image then finds itself at distance 0 with model B while model A is refused; a missing source
 * stops the run before the switch (model A still serves the whole catalog) until --drop-unavailable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { DEMO_DIR, FIXTURES, tempDir, testCodesPath, testModelPath } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SIGHTLINE_THREADS: '2' } });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function top(res: { code: number | null; stdout: string; stderr: string }): { source?: string; distance?: number } | undefined {
  assert.equal(res.code, 0, res.stderr);
  return (JSON.parse(res.stdout) as { results: { source: string; distance: number }[] }).results[0];
}

describe('reindex --model on PostgreSQL', { skip: postgresSkipReason() }, () => {
  const work = tempDir('sightline-reindex-pg-');
  const photos = join(work.path, 'photos');
  const [modelA, codesA] = [testModelPath(), testCodesPath()];
  const modelB = testModelPath(8);
  const codesB = testCodesPath(128, 11, 'center', modelB);
  let cluster: PgCluster;

  before(async () => {
    mkdirSync(join(photos, 'sub'), { recursive: true });
    copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(photos, 'dog.jpg'));
    copyFileSync(join(FIXTURES, 'images', 'horses.jpg'), join(photos, 'horses.jpg'));
    copyFileSync(join(DEMO_DIR, 'bag', '00.png'), join(photos, 'sub', 'bag.png'));
    cluster = await startPostgres();
  });
  after(async () => {
    await cluster?.stop();
    work.cleanup();
  });

  async function indexed(): Promise<string> {
    const url = await cluster.createDatabase();
    const res = cli('index', photos, '--recursive', '--model', modelA, '--codes', codesA, '--db', url);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /indexed 3 new images/);
    return url;
  }

  it('re-embeds every image from its source with the new model', async () => {
    const url = await indexed();
    const re = cli('reindex', '--db', url, '--model', modelB, '--codes', codesB);
    assert.equal(re.code, 0, re.stderr);
    assert.match(re.stdout, /re-embedded 3 images/);
    assert.match(re.stdout, /3 images, 128-bit codes, exact scan/);
    for (const file of [join(photos, 'horses.jpg'), join(photos, 'sub', 'bag.png')]) {
      const hit = top(cli('search', file, '--k', '1', '--json', '--model', modelB, '--codes', codesB, '--db', url));
      assert.deepEqual([hit?.source, hit?.distance], [file, 0]);
    }
    const old = cli('search', join(photos, 'dog.jpg'), '--model', modelA, '--codes', codesA, '--db', url);
    assert.equal(old.code, 1);
    assert.match(old.stderr, /was built with another model: model differs/);
  });

  it('a missing source switches nothing (the old model still serves every image) until --drop-unavailable', async () => {
    const url = await indexed();
    rmSync(join(photos, 'sub', 'bag.png'));
    const stuck = cli('reindex', '--db', url, '--model', modelB, '--codes', codesB);
    assert.equal(stuck.code, 1, stuck.stderr);
    assert.match(stuck.stderr, /1 images could not be re-embedded .*nothing was switched: the catalog still serves the old model.*--drop-unavailable/);
    const stillA = top(cli('search', join(photos, 'horses.jpg'), '--k', '3', '--json', '--model', modelA, '--codes', codesA, '--db', url));
    assert.deepEqual([stillA?.source, stillA?.distance], [join(photos, 'horses.jpg'), 0]);
    assert.match(cli('stats', '--db', url).stdout, /images +3\b/);

    const dropped = cli('reindex', '--db', url, '--model', modelB, '--codes', codesB, '--drop-unavailable');
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stdout, /re-embedded 2 images .*, removed 1 whose source is gone/);
    assert.match(dropped.stdout, /2 images, 128-bit codes/);
    const hit = top(cli('search', join(photos, 'dog.jpg'), '--k', '1', '--json', '--model', modelB, '--codes', codesB, '--db', url));
    assert.deepEqual([hit?.source, hit?.distance], [join(photos, 'dog.jpg'), 0]);
  });
});
