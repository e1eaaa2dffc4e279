import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenFor, indexDemoGallery } from '../../server/services/startup.js';
import { DEMO_DIR, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

const work = tempDir('sightline-startup-');
const gallery = join(work.path, 'gallery');
let s: TestServer;

before(async () => {
  for (const cls of ['bag', 'sandal']) {
    mkdirSync(join(gallery, cls), { recursive: true });
    for (const n of ['00', '01', '02']) copyFileSync(join(DEMO_DIR, cls, `${n}.png`), join(gallery, cls, `${n}.png`));
  }
  s = await startTestServer();
});
after(async () => {
  await s.close();
  work.cleanup();
});

test('the demo gallery is indexed once into an empty database, and never over a user’s images', async () => {
  assert.equal(await indexDemoGallery(s.rt, { dir: gallery }), 6);
  assert.equal(await s.rt.gallery.size(), 6);
  assert.deepEqual(JSON.parse(readFileSync(join(s.dir, 'demo.json'), 'utf8')), { state: 'done', images: 6 });
  await s.rt.catalog.remove(1);
  assert.equal(await indexDemoGallery(s.rt, { dir: gallery }), 0, 'a deleted demo image does not come back');

  rmSync(join(s.dir, 'demo.json'));
  assert.equal(await indexDemoGallery(s.rt, { dir: gallery }), 0, 'a database that already holds images is left alone');

  writeFileSync(join(s.dir, 'demo.json'), JSON.stringify({ state: 'running' }));
  assert.equal(await indexDemoGallery(s.rt, { dir: gallery }), 1, 'an interrupted first start completes the gallery');
});

test('golden image: configuration wins over the per-model registry; both settings are needed', async () => {
  const registry = join(work.path, 'golden.json');
  writeFileSync(registry, JSON.stringify({ models: { 'test-fmnist': { image: 'bag/00.png', label: 'Bag' } } }));
  assert.deepEqual(await goldenFor({ goldenImage: undefined, goldenLabel: undefined }, 'test-fmnist', registry), { image: join(DEMO_DIR, 'bag/00.png'), label: 'Bag' });
  assert.equal(await goldenFor({ goldenImage: undefined, goldenLabel: undefined }, 'other-model', registry), undefined);
  assert.deepEqual(await goldenFor({ goldenImage: '/x.png', goldenLabel: 'Coat' }, 'test-fmnist', registry), { image: '/x.png', label: 'Coat' });
  await assert.rejects(goldenFor({ goldenImage: '/x.png', goldenLabel: undefined }, 'test-fmnist', registry), /must be set together/);
});
