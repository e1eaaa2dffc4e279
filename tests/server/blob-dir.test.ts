/**
 * SIGHTLINE_BLOB_DIR: uploaded originals and thumbnails live there, not in the data folder, so that
 * replicas on one PostgreSQL catalog can share them on one volume; and a shared folder's start-up
 * sweep leaves alone what another replica may be writing right now (young temp files, an upload
 * whose row is about to be committed), removing only old leftovers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../server/config.js';
import { image, startTestServer, tempDir } from './helpers.js';

const work = tempDir('sightline-blobs-');
after(() => work.cleanup());

const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

test('the blob folder defaults to the data folder; SIGHTLINE_BLOB_DIR moves it', () => {
  assert.equal(loadConfig({ dataDir: '/srv/data' }, {}).blobDir, '/srv/data');
  assert.equal(loadConfig({ dataDir: '/srv/data' }, { SIGHTLINE_BLOB_DIR: '/mnt/shared' }).blobDir, '/mnt/shared');
});

test('uploads and thumbnails are written under the blob folder, and deleted from it', async () => {
  const blobs = join(work.path, 'blobs-a');
  const s = await startTestServer({ blobDir: blobs });
  try {
    const up = await request(s.app).post('/v1/images').set('content-type', 'image/jpeg').send(image('dog.jpg'));
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const sha = up.body.sha256 as string;
    assert.equal(up.body.source, join(blobs, 'uploads', `${sha}.jpeg`));
    assert.deepEqual(list(join(blobs, 'uploads')), [`${sha}.jpeg`]);
    const thumb = await request(s.app).get(`/v1/images/${up.body.id}/thumbnail`);
    assert.equal(thumb.status, 200);
    assert.deepEqual(list(join(blobs, 'thumbnails')), [`${up.body.id}.webp`]);
    assert.deepEqual(list(join(s.dir, 'uploads')), [], 'nothing in the data folder');
    assert.deepEqual(list(join(s.dir, 'thumbnails')), []);
    assert.equal((await request(s.app).delete(`/v1/images/${up.body.id}`)).status, 204);
    assert.deepEqual(list(join(blobs, 'uploads')), []);
    assert.deepEqual(list(join(blobs, 'thumbnails')), []);
  } finally {
    await s.close();
  }
});

/** An upload file without a row and a temp file, one pair fresh and one pair two hours old. */
function leftovers(blobs: string): void {
  mkdirSync(join(blobs, 'uploads'), { recursive: true });
  mkdirSync(join(blobs, 'thumbnails'), { recursive: true });
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  for (const [name, age] of [['a'.repeat(64) + '.png', old], ['b'.repeat(64) + '.png', undefined], ['c'.repeat(64) + '.png.1234.tmp', old], ['d'.repeat(64) + '.png.5678.tmp', undefined]] as const) {
    const path = join(blobs, 'uploads', name);
    writeFileSync(path, 'bytes');
    if (age) utimesSync(path, age, age);
  }
}

test('a shared blob folder keeps young files at start-up (another replica\'s write under way) and removes old leftovers', async () => {
  const blobs = join(work.path, 'blobs-shared');
  leftovers(blobs);
  const s = await startTestServer({ blobDir: blobs });
  try {
    assert.deepEqual(list(join(blobs, 'uploads')), ['b'.repeat(64) + '.png', 'd'.repeat(64) + '.png.5678.tmp']);
  } finally {
    await s.close();
  }
});

test('a blob folder that is the data folder (one server) is swept entirely at start-up', async () => {
  const data = join(work.path, 'data-own');
  leftovers(data);
  const s = await startTestServer({ dataDir: data });
  try {
    assert.deepEqual(list(join(data, 'uploads')), []);
  } finally {
    await s.close();
  }
});
