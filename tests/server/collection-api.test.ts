/**
 * Browsing the collection over HTTP: GET /v1/images (keyset cursor paging in id order, filters on
 * the top label and on the unknown verdict, clear 400s) and GET /v1/duplicates (the groups
 * `sightline duplicates` finds, paged), on a real server over the tiny test model.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import { findDuplicatesIn, inspectIndex, openCatalog } from '../../index/index.js';
import { writeOodSidecar } from '../../model/index.js';
import { encodeCursor } from '../../server/cursor.js';
import { demoImage, image, startTestServer, tempDir, testModelPath, type TestServer } from './helpers.js';

interface Listed {
  id: number;
  labels: string[];
  unknown: boolean | null;
  ood_score: number | null;
}
interface Page {
  images: Listed[];
  next_cursor: string | null;
}

const work = tempDir('sightline-collection-api-');
const model = join(work.path, 'served.onnx');
const dataDir = join(work.path, 'data');
copyFileSync(testModelPath(), model);
mkdirSync(dataDir);
after(() => work.cleanup());

const DEMO = ['bag/00.png', 'bag/01.png', 'coat/00.png', 'coat/01.png', 'dress/00.png', 'dress/01.png', 'sandal/00.png', 'sandal/01.png'];

async function upload(s: TestServer, bytes: Buffer, name: string): Promise<number> {
  const res = await request(s.app).post('/v1/images').attach('image', bytes, name);
  assert.ok(res.status === 201 || res.status === 200, res.text);
  return (res.body as { id: number }).id;
}

/** Every page of a listing, following next_cursor; `between` runs after the first page. */
async function allPages(s: TestServer, query: string, between?: () => Promise<void>): Promise<{ ids: number[]; pages: number; items: Listed[] }> {
  const items: Listed[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await request(s.app).get(`/v1/images?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.status, 200, res.text);
    const page = res.body as Page;
    items.push(...page.images);
    cursor = page.next_cursor;
    if (pages++ === 0) await between?.();
  } while (cursor !== null && pages < 100);
  return { ids: items.map((i) => i.id), pages, items };
}

describe('GET /v1/images', () => {
  let s: TestServer;
  const ids: number[] = [];
  before(async () => {
    // The energy threshold is set after the scores are known (second server below).
    await writeOodSidecar(model, { statistic: 'energy', threshold: 1e9, keep: 0.97, fittedOn: 'test', images: 1 });
    s = await startTestServer({ modelPath: model, dataDir });
    for (const rel of DEMO) ids.push(await upload(s, demoImage(rel), rel.replace('/', '-')));
  });
  after(async () => s?.close());

  it('pages through every image once, in id order, with an opaque cursor', async () => {
    const { ids: listed, pages, items } = await allPages(s, 'limit=3');
    assert.deepEqual(listed, ids);
    assert.equal(pages, 3);
    // Items are the same records as GET /v1/images/{id}.
    const one = await request(s.app).get(`/v1/images/${ids[4]}`);
    assert.deepEqual(items[4], one.body);
  });

  it('a cursor survives deletes (including the image it ended at) and inserts between pages', async () => {
    let added = 0;
    const gone = [ids[2]!, ids[3]!];
    const { ids: listed } = await allPages(s, 'limit=3', async () => {
      for (const id of gone) assert.equal((await request(s.app).delete(`/v1/images/${id}`)).status, 204);
      added = await upload(s, image('dog.jpg'), 'dog.jpg');
    });
    assert.deepEqual(listed, [ids[0], ids[1], ids[2], ...ids.slice(4), added]);
    ids.splice(2, 2);
    ids.push(added);
    assert.deepEqual((await allPages(s, 'limit=500')).ids, ids);
  });

  it('filters by top label', async () => {
    const all = (await allPages(s, 'limit=500')).items;
    const label = all[0]!.labels[0]!;
    const filtered = await allPages(s, `limit=1&label=${encodeURIComponent(label)}`);
    assert.deepEqual(filtered.ids, all.filter((i) => i.labels[0] === label).map((i) => i.id));
    assert.ok(filtered.ids.length >= 1);
  });

  it('refuses bad arguments with a 400 naming the argument and the value', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /'limit' must be an integer in \[1, 500\], got "0"/],
      ['limit=501', /'limit' must be an integer in \[1, 500\], got "501"/],
      ['limit=ten', /'limit' .*got "ten"/],
      ['cursor=not-a-cursor!', /'cursor' must be a next_cursor returned by this route.*got "not-a-cursor!"/],
      ['unknown=maybe', /'unknown' must be true or false, got "maybe"/],
      ['label=Dog', /'label' must be one of the model's labels .*got "Dog"/],
    ];
    for (const [query, message] of cases) {
      const res = await request(s.app).get(`/v1/images?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'invalid_argument');
      assert.match(res.body.error.message, message, query);
    }
    // A cursor of GET /v1/duplicates is not one of GET /v1/images, though both stand for an id.
    const wrong = await request(s.app).get(`/v1/images?cursor=${encodeCursor('groups', ids[0]!)}`);
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.error.message, /'cursor' must be a next_cursor returned by this route/);
    assert.equal((await request(s.app).get(`/v1/images?cursor=${encodeCursor('images', ids[0]!)}`)).status, 200);
  });

  it('filters on unknown=true|false against the current threshold; unscored images match neither', async () => {
    const scores = (await allPages(s, 'limit=500')).items.map((i) => i.ood_score as number).sort((a, b) => a - b);
    assert.equal(scores.length, ids.length);
    await s.close();
    // A row as an older release left it: no score.
    const { model: modelHash, codeModel: codesHash } = inspectIndex(dataDir);
    const cat = await openCatalog(dataDir, { modelHash, codesHash });
    const first = cat.get(ids[0]!)!;
    const old = cat.add({ source: join(dataDir, 'old.png'), bytes: Buffer.from('indexed by release 2'), width: 8, height: 8, labels: first.labels, code: first.code, embedding: cat.embedding(first.id)! });
    cat.close();
    // The threshold re-fitted to the median stored score: about half the images are unknown now.
    const threshold = scores[Math.floor(scores.length / 2)]!;
    await writeOodSidecar(model, { statistic: 'energy', threshold, keep: 0.5, fittedOn: 'test', images: scores.length });
    s = await startTestServer({ modelPath: model, dataDir });
    const unknown = await allPages(s, 'limit=2&unknown=true');
    const known = await allPages(s, 'limit=2&unknown=false');
    assert.ok(unknown.items.every((i) => i.unknown === true && i.ood_score! > threshold));
    assert.ok(known.items.every((i) => i.unknown === false && i.ood_score! <= threshold));
    assert.deepEqual([unknown.ids.length, known.ids.length], [scores.filter((x) => x > threshold).length, scores.filter((x) => x <= threshold).length]);
    assert.ok(unknown.ids.length > 0 && known.ids.length > 0);
    assert.deepEqual([...unknown.ids, ...known.ids].sort((a, b) => a - b), ids);
    const all = await allPages(s, 'limit=500');
    assert.deepEqual(all.ids, [...ids, old.id]);
    assert.deepEqual([all.items.at(-1)?.unknown, all.items.at(-1)?.ood_score], [null, null]);
  });
});

describe('GET /v1/duplicates', () => {
  const dupDir = join(work.path, 'dups');
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ dataDir: dupDir });
  });
  after(async () => s?.close());

  it('answers the groups `sightline duplicates` finds, paged by their smallest id, and follows changes', async () => {
    // Two originals, each with an edited copy (re-encoded, slightly resized), and unrelated images.
    const dog = image('dog.jpg');
    const horses = image('horses.jpg');
    const edited = async (b: Buffer): Promise<Buffer> => {
      const m = await sharp(b).metadata();
      return sharp(b).resize(m.width! - 4, m.height! - 4).jpeg({ quality: 80 }).toBuffer();
    };
    for (const [b, n] of [[dog, 'dog.jpg'], [horses, 'horses.jpg'], [await edited(dog), 'dog-2.jpg'], [await edited(horses), 'horses-2.jpg'], [image('eagle.jpg'), 'eagle.jpg'], [image('person.jpg'), 'person.jpg']] as const) await upload(s, b, n);
    for (const rel of DEMO) await upload(s, demoImage(rel), rel);

    const groups: { ids: number[]; members: { id: number; source: string }[]; pairs: unknown[] }[] = [];
    let cursor: string | null = null;
    let total: number | undefined;
    do {
      const res = await request(s.app).get(`/v1/duplicates?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200, res.text);
      groups.push(...res.body.groups);
      total = res.body.total;
      cursor = res.body.next_cursor;
    } while (cursor !== null && groups.length < 100);
    const cli = findDuplicatesIn(dupDir).groups.sort((a, b) => a.ids[0]! - b.ids[0]!);
    assert.deepEqual(groups.map((g) => g.ids), cli.map((g) => g.ids));
    assert.deepEqual(groups.map((g) => g.pairs), cli.map((g) => g.pairs));
    assert.deepEqual(groups.map((g) => g.members.map((m) => m.source)), cli.map((g) => g.members.map((m) => m.source)));
    assert.equal(total, groups.length);
    // The edited copies are found next to their originals.
    assert.ok(groups.some((g) => g.ids.includes(1) && g.ids.includes(3)), JSON.stringify(groups.map((g) => g.ids)));
    assert.ok(groups.some((g) => g.ids.includes(2) && g.ids.includes(4)), JSON.stringify(groups.map((g) => g.ids)));

    // A change to the collection starts a new pass: a deleted member leaves its group.
    assert.equal((await request(s.app).delete('/v1/images/3')).status, 204);
    const after = await request(s.app).get('/v1/duplicates?limit=200');
    assert.ok(!after.body.groups.some((g: { ids: number[] }) => g.ids.includes(3)));
    assert.deepEqual(after.body.groups.map((g: { ids: number[] }) => g.ids), findDuplicatesIn(dupDir).groups.map((g) => g.ids).sort((a, b) => a[0]! - b[0]!));
  });

  it('refuses bad arguments with a 400 naming the argument and the value', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /'limit' must be an integer in \[1, 200\], got "0"/],
      ['neighbours=100', /'neighbours' must be an integer in \[1, 99\], got "100"/],
      ['max_relative_distance=3', /'max_relative_distance' must be a number in \(0, 2\].*got "3"/],
      ['max_relative_distance=0', /'max_relative_distance' must be a number in \(0, 2\].*got "0"/],
      ['max_relative_distance=0.2&max_distance=1', /'max_distance' must be absent when max_relative_distance is given.*got "1"/],
      ['cursor=abc', /'cursor' must be a next_cursor returned by this route.*got "abc"/],
    ];
    for (const [query, message] of cases) {
      const res = await request(s.app).get(`/v1/duplicates?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(res.body.error.message, message, query);
    }
  });
});
