import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { loadConfig, startServer } from '../../server/index.js';
import type { RunningServer } from '../../server/index.js';
import { createLogger } from '../../server/logging.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { FIXTURES, tempDir, testCodesPath, testModelPath } from '../server/helpers.js';

const skip = chromiumSkip;
const TOKEN = 'page-test-token-5c1e';
const data = tempDir('sightline-browser-token-');
const profile = tempDir('sightline-chromium-token-');
let server: RunningServer;
let browser: BrowserContext;
let base: string;

before(async () => {
  if (skip) return;
  const config = loadConfig(
    { modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: data.path, host: '127.0.0.1', port: 0, demo: false, threads: 2, logLevel: 'silent', apiToken: TOKEN, protect: 'all' },
    {},
  );
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

test('with SIGHTLINE_PROTECT=all the page asks for the token once and sends it on every call: search, add to collection, thumbnails', { skip }, async () => {
  const page = await browser.newPage();
  const prompts: string[] = [];
  page.on('dialog', (d) => {
    prompts.push(d.message());
    void d.accept(TOKEN);
  });
  const unauthorized: string[] = [];
  page.on('response', (r) => {
    if (r.status() === 401) unauthorized.push(new URL(r.url()).pathname);
  });
  await page.goto(base);
  await page.waitForFunction(() => document.getElementById('status')?.dataset['size'] === '0');
  assert.equal(prompts.length, 1);
  assert.match(prompts[0] ?? '', /API token/);

  await page.setInputFiles('#file', join(FIXTURES, 'images', 'person.jpg'));
  await page.waitForSelector('#add', { state: 'visible' });
  assert.equal(await page.textContent('#results li'), 'The index is empty.');
  await page.click('#add');
  await page.waitForFunction(() => (document.getElementById('add-status')?.textContent ?? '') === 'Added to the collection as image #1.');
  const row = await fetch(`${base}/v1/images/1`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(row.status, 200, 'the upload was stored with the token');

  // Another photo finds the stored one; its thumbnail (an <img>, which cannot send a header) is
  // fetched with the token and shown.
  await page.setInputFiles('#file', join(FIXTURES, 'images', 'dog.jpg'));
  await page.waitForSelector('#results li.result');
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('#results li.result img');
    return img !== null && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
  });
  assert.equal(prompts.length, 1, 'asked once');
  assert.deepEqual(unauthorized, ['/v1/info'], 'only the first call went without the token');
  assert.equal(await page.isHidden('#error'), true);
  await page.close();
});
