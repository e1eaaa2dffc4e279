import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { loadConfig, startServer } from '../../server/index.js';
import type { RunningServer } from '../../server/index.js';
import { createLogger } from '../../server/logging.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { DEMO_DIR, FIXTURES, brokenJpeg, heicHeader, image, tempDir, testCodesPath, testModelPath } from '../server/helpers.js';

const skip = chromiumSkip;
const data = tempDir('sightline-browser-');
const profile = tempDir('sightline-chromium-');
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

/** What went wrong in the page: console errors (failed loads included), uncaught errors, HTTP ≥ 400. */
function watch(page: Page): { console: string[]; failed: string[] } {
  const seen = { console: [] as string[], failed: [] as string[] };
  page.on('console', (m) => {
    if (m.type() === 'error') seen.console.push(m.text());
  });
  page.on('pageerror', (e) => seen.console.push(`uncaught: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) seen.failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return seen;
}

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(base);
  await page.waitForFunction(() => Number(document.getElementById('status')?.dataset['size'] ?? 0) > 0);
  return page;
}

const text = async (page: Page, selector: string): Promise<string> => (await page.textContent(selector)) ?? '';
const indexSize = async (): Promise<number> => ((await (await fetch(`${base}/v1/info`)).json()) as { index: { size: number } }).index.size;

test('the page classifies an uploaded photo, shows similar images, and searches from a clicked result, with no console error', { skip }, async () => {
  const page = await browser.newPage();
  const seen = watch(page);
  const foreign: string[] = [];
  const favicon: number[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('blob:')) foreign.push(r.url());
  });
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/favicon')) favicon.push(r.status());
  });
  await page.goto(base);
  await page.waitForFunction(() => Number(document.getElementById('status')?.dataset['size'] ?? 0) > 0);
  assert.match(await text(page, '#status'), /model test-fmnist .* 300 images indexed/);

  await page.setInputFiles('#file', join(FIXTURES, 'images', 'dog.jpg'));
  await page.waitForSelector('#predictions li.prediction');
  await page.waitForSelector('#results li.result');
  assert.equal(await page.locator('#predictions li.prediction').count(), 5);
  const labels = await page.locator('#predictions .label').allTextContents();
  assert.ok(labels.every((l) => l.length > 0));
  const widths = await page.locator('#predictions .bar span').evaluateAll((els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
  assert.ok(widths.every((w) => w > 0 && w <= 100));
  const results = page.locator('#results li.result');
  assert.equal(await results.count(), 12);
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('#results li.result img');
    return img !== null && img.complete && img.naturalWidth > 0;
  });
  assert.match((await results.first().textContent()) ?? '', /distance \d+\.\d\d/);
  assert.equal(await page.isVisible('#add'), true, 'an uploaded image can be added to the collection');

  // Searching from a demo image: clicking its result shows its own stored labels and neighbours.
  await page.setInputFiles('#file', join(DEMO_DIR, 'sneaker', '03.png'));
  await page.waitForFunction(() => (document.querySelector('#results li.result .distance')?.textContent ?? '') === 'distance 0.00');
  const first = page.locator('#results li.result').first();
  const id = await first.getAttribute('data-id');
  await first.click();
  await page.waitForFunction((want) => (document.getElementById('classify-meta')?.textContent ?? '').includes(`image #${want}`), id);
  assert.ok((await page.locator('#results li.result').count()) >= 1);
  const ids = await page.locator('#results li.result').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['id']));
  assert.ok(!ids.includes(id ?? ''), 'similar images exclude the image itself');
  assert.equal(await page.isHidden('#error'), true);
  assert.equal(await page.isHidden('#add-section'), true, 'a stored image is not offered for adding');
  assert.deepEqual(foreign, [], 'no request leaves the server');

  // The icon the page names is served (the browser asked for it itself), and so is /favicon.ico.
  assert.ok(favicon.length > 0 && favicon.every((s) => s === 200), `favicon answers: ${favicon.join(', ') || 'none'}`);
  assert.deepEqual(seen.console, [], 'no console error');
  assert.deepEqual(seen.failed, [], 'no failed request');
  const ico = await fetch(`${base}/favicon.ico`);
  assert.equal(ico.status, 200);
  assert.deepEqual([...new Uint8Array(await ico.arrayBuffer()).subarray(0, 4)], [0, 0, 1, 0], 'an ICO file');
  assert.equal(await page.getAttribute('link[rel=icon]', 'href'), '/favicon.svg');
  await page.close();
});

test('a file that is not a usable image gets a sentence naming it, and no result is left from the previous image', { skip }, async () => {
  const page = await openPage();
  const seen = watch(page);
  await page.setInputFiles('#file', join(FIXTURES, 'images', 'eagle.jpg'));
  await page.waitForSelector('#results li.result');

  // While the next image's answer is held back, the previous result is already gone.
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const uploads = (url: URL): boolean => /^\/v1\/(classify|search)$/.test(url.pathname);
  await page.route(uploads, async (route) => {
    await held;
    await route.continue();
  });
  const pdf = { name: 'scan.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n') };
  await page.setInputFiles('#file', pdf);
  assert.equal(await page.locator('#results li').count(), 0, 'old similar images cleared at once');
  assert.equal(await page.locator('#predictions li').count(), 0, 'old labels cleared at once');
  assert.equal(await page.isHidden('#labels-section'), true);
  assert.equal(await page.isHidden('#add-section'), true);
  release();
  await page.waitForSelector('#error', { state: 'visible' });
  await page.unroute(uploads);
  assert.equal(await text(page, '#error'), '“scan.pdf” is a PDF document, not an image. Export the page as a JPEG or PNG to search with it.');
  assert.equal(await page.isHidden('#results-section'), true);
  assert.equal(await page.isHidden('#preview'), true, 'no blank preview of a file the browser cannot draw');

  // The server judges the bytes: an iPhone photo is named as HEIC whatever its file name says.
  const cases: [{ name: string; mimeType: string; buffer: Buffer }, string][] = [
    [{ name: 'IMG_0412.HEIC', mimeType: 'image/heic', buffer: heicHeader() }, `“IMG_0412.HEIC” is a HEIC photo (the iPhone's default format), which this server cannot read. Save it as a JPEG or PNG and try again.`],
    [{ name: 'holiday.jpg', mimeType: 'image/jpeg', buffer: heicHeader() }, `“holiday.jpg” is a HEIC photo (the iPhone's default format), which this server cannot read. Save it as a JPEG or PNG and try again.`],
    [{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('shopping list: eggs, milk\n') }, '“notes.txt” is not an image: its contents are not JPEG, PNG, WebP, GIF, TIFF or AVIF.'],
    [{ name: 'cut.jpg', mimeType: 'image/jpeg', buffer: brokenJpeg() }, '“cut.jpg” looks like a JPEG image but is damaged or cut short, so it cannot be read.'],
    [{ name: 'empty.png', mimeType: 'image/png', buffer: Buffer.alloc(0) }, '“empty.png” is empty: it has no bytes to read.'],
  ];
  for (const [file, sentence] of cases) {
    await page.evaluate(() => {
      document.getElementById('error')!.textContent = '';
    });
    await page.setInputFiles('#file', file);
    await page.waitForFunction(() => (document.getElementById('error')?.textContent ?? '') !== '');
    assert.equal(await text(page, '#error'), sentence, file.name);
    assert.equal(await page.locator('#results li').count(), 0, file.name);
  }

  // A good image afterwards: the error goes, results come back.
  await page.setInputFiles('#file', join(FIXTURES, 'images', 'horses.jpg'));
  await page.waitForSelector('#results li.result');
  assert.equal(await page.isHidden('#error'), true);
  assert.equal(await page.isVisible('#preview'), true);
  // The only failures were the refused uploads themselves (classify and search, each file).
  assert.ok(seen.failed.length > 0 && seen.failed.every((f) => /^(400|415) POST \/v1\/(classify|search)$/.test(f)), seen.failed.join('; '));
  assert.ok(seen.console.every((m) => /Failed to load resource: the server responded with a status of (400|415)/.test(m)), seen.console.join('; '));
  await page.close();
});

test('"Add to collection" stores the uploaded image (a row the API returns) and says so on a duplicate', { skip }, async () => {
  const page = await openPage();
  const seen = watch(page);
  const before = await indexSize();
  const bytes = image('person.jpg');
  await page.setInputFiles('#file', { name: 'person.jpg', mimeType: 'image/jpeg', buffer: bytes });
  await page.waitForSelector('#add', { state: 'visible' });
  await page.click('#add');
  await page.waitForFunction(() => /^Added to the collection as image #\d+\.$/.test(document.getElementById('add-status')?.textContent ?? ''));
  const id = Number(await page.getAttribute('#add-status', 'data-id'));
  assert.equal(await page.isDisabled('#add'), true, 'added once');

  const res = await fetch(`${base}/v1/images/${id}`);
  assert.equal(res.status, 200);
  const record = (await res.json()) as { sha256: string; width: number; height: number };
  assert.equal(record.sha256, createHash('sha256').update(bytes).digest('hex'), 'the stored row holds the uploaded bytes');
  assert.equal(await indexSize(), before + 1);
  await page.waitForFunction((want) => document.getElementById('status')?.dataset['size'] === String(want), before + 1);

  // The same bytes again, dropped this time under another name: no new row, the id it already has.
  const dropped = await page.evaluateHandle((b64) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'copy of person.jpg', { type: 'image/jpeg' }));
    return dt;
  }, bytes.toString('base64'));
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
  await page.waitForSelector('#add:enabled');
  assert.equal(await text(page, '#add-status'), '', 'the previous add result is cleared with the new image');
  await page.click('#add');
  await page.waitForFunction(() => (document.getElementById('add-status')?.textContent ?? '').startsWith('Already'));
  assert.equal(await text(page, '#add-status'), `Already in the collection as image #${id}.`);
  assert.equal(await indexSize(), before + 1);

  // "show it" opens the stored image with its neighbours.
  await page.click('#show-added');
  await page.waitForFunction((want) => (document.getElementById('classify-meta')?.textContent ?? '').includes(`image #${want}`), id);
  assert.deepEqual(seen.console, []);
  assert.deepEqual(seen.failed, []);
  await page.close();
});
