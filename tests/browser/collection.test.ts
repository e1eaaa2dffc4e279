import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { loadConfig, startServer } from '../../server/index.js';
import type { RunningServer } from '../../server/index.js';
import { createLogger } from '../../server/logging.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { image, tempDir, testCodesPath, testModelPath } from '../server/helpers.js';

const skip = chromiumSkip;
const data = tempDir('sightline-browser-collection-');
const profile = tempDir('sightline-chromium-collection-');
let server: RunningServer;
let browser: BrowserContext;
let base: string;

before(async () => {
  if (skip) return;
  const config = loadConfig({ modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: data.path, host: '127.0.0.1', port: 0, demo: true, threads: 2, logLevel: 'silent' }, {});
  server = await startServer(config, { logger: createLogger('silent') });
  await server.startup;
  base = server.url.replace('localhost', '127.0.0.1');
  browser = await launchChromium(profile.path);
});

after(async () => {
  await browser?.close();
  await server?.close();
  data.cleanup();
  profile.cleanup();
});

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  assert.equal(res.status, 200, path);
  return (await res.json()) as T;
}

async function upload(bytes: Buffer, name: string): Promise<number> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), name);
  const res = await fetch(`${base}/v1/images`, { method: 'POST', body: form });
  assert.ok(res.status === 201 || res.status === 200, `upload ${name}: ${res.status}`);
  return ((await res.json()) as { id: number }).id;
}

type ImagePage = { images: { id: number; labels: string[] }[]; next_cursor: string | null };
const shownIds = (page: Page, selector: string): Promise<number[]> => page.locator(selector).evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset['id'])));

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(base);
  await page.waitForFunction(() => Number(document.getElementById('status')?.dataset['size'] ?? 0) > 0);
  return page;
}

test('the collection view pages through the stored images as the API lists them, filtered by top label, and opens one on click', { skip }, async () => {
  const page = await openPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.click('#collection-browse');
  await page.waitForFunction(() => document.querySelectorAll('#collection li.result').length === 24);
  const first = await get<ImagePage>('/v1/images?limit=24');
  assert.deepEqual(await shownIds(page, '#collection li.result'), first.images.map((i) => i.id));
  assert.ok(first.next_cursor !== null);

  await page.click('#collection-more');
  await page.waitForFunction(() => document.querySelectorAll('#collection li.result').length === 48);
  const second = await get<ImagePage>(`/v1/images?limit=24&cursor=${encodeURIComponent(first.next_cursor ?? '')}`);
  assert.deepEqual((await shownIds(page, '#collection li.result')).slice(24), second.images.map((i) => i.id));
  assert.match((await page.textContent('#collection-note')) ?? '', /^48 images shown\.$/);

  // One top label: the view restarts and shows what the API lists for it, every tile that label.
  await page.selectOption('#collection-filter', 'Bag');
  await page.waitForFunction(() => (document.getElementById('collection-note')?.textContent ?? '').endsWith('shown.') || (document.getElementById('collection-note')?.textContent ?? '').endsWith('all of them.'));
  const bags = await get<ImagePage>('/v1/images?limit=24&label=Bag');
  assert.ok(bags.images.length > 0 && bags.images.every((i) => i.labels[0] === 'Bag'));
  assert.deepEqual(await shownIds(page, '#collection li.result'), bags.images.map((i) => i.id));
  const captions = await page.locator('#collection li.result .caption:not(.id)').allTextContents();
  assert.ok(captions.every((c) => c === 'Bag'), captions.join(', '));

  // A click opens the image like a search result: its stored labels and its neighbours.
  const target = bags.images[0]?.id;
  await page.locator(`#collection li.result[data-id="${target}"]`).click();
  await page.waitForFunction((want) => (document.getElementById('classify-meta')?.textContent ?? '').includes(`image #${want}`), target);
  await page.waitForSelector('#results li.result');

  // The images the model does not know (as the API judges them now; none is also an answer).
  await page.selectOption('#collection-filter', ':unknown');
  await page.waitForFunction(() => /shown|No images match/.test(document.getElementById('collection-note')?.textContent ?? ''));
  const unknown = await get<ImagePage>('/v1/images?limit=24&unknown=true');
  assert.deepEqual(await shownIds(page, '#collection li.result'), unknown.images.map((i) => i.id));
  if (unknown.images.length === 0) assert.equal(await page.textContent('#collection-note'), 'No images match.');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the near-duplicates view shows the groups the API finds, a re-encoded copy grouped with its original', { skip }, async () => {
  const original = image('person.jpg');
  const copy = await sharp(original).resize({ width: 200 }).jpeg({ quality: 70 }).toBuffer();
  const a = await upload(original, 'person.jpg');
  const b = await upload(copy, 'person-small.jpg');
  assert.notEqual(a, b);

  const page = await openPage();
  await page.click('#collection-duplicates');
  await page.waitForFunction(() => /group/.test(document.getElementById('collection-note')?.textContent ?? ''));
  type Groups = { groups: { ids: number[] }[]; total: number; next_cursor: string | null };
  const first = await get<Groups>('/v1/duplicates?limit=10');
  assert.equal(await page.textContent('#collection-note'), `${first.total} group${first.total === 1 ? '' : 's'} of near-duplicates.`);
  // "More" until the last page, against the API's pages followed by their cursors.
  const listed = first.groups.map((g) => g.ids);
  for (let cursor = first.next_cursor; cursor !== null; ) {
    const next = await get<Groups>(`/v1/duplicates?limit=10&cursor=${encodeURIComponent(cursor)}`);
    listed.push(...next.groups.map((g) => g.ids));
    cursor = next.next_cursor;
    await page.click('#collection-more');
    await page.waitForFunction((n) => document.querySelectorAll('#collection > li.group').length === n, listed.length);
  }
  assert.equal(listed.length, first.total);
  assert.equal(await page.isHidden('#collection-more'), true, 'no "More" after the last page');
  const shown = await page.locator('#collection > li.group').evaluateAll((els) => els.map((g) => Array.from(g.querySelectorAll('li.result'), (e) => Number((e as HTMLElement).dataset['id']))));
  assert.deepEqual(shown, listed);
  const withCopy = shown.find((ids) => ids.includes(a));
  assert.ok(withCopy?.includes(b), `the copy #${b} is grouped with #${a}: ${JSON.stringify(shown)}`);
  assert.equal(await page.isHidden('#collection-filter'), true, 'the label filter belongs to the image listing');
  await page.close();
});
