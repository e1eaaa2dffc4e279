import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { loadConfig, startServer } from '../../server/index.js';
import type { RunningServer } from '../../server/index.js';
import { createLogger } from '../../server/logging.js';
import { DEMO_DIR, FIXTURES, tempDir, testCodesPath, testModelPath } from '../server/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (Debian package: chromium)`;
const data = tempDir('sightline-browser-');
const profile = tempDir('sightline-chromium-');
let server: RunningServer;
let browser: BrowserContext;

before(async () => {
  if (skip) return;
  const config = loadConfig({ modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: data.path, host: '127.0.0.1', port: 0, demo: true, threads: 2, logLevel: 'silent' }, {});
  server = await startServer(config, { logger: createLogger('silent') });
  await server.startup;
  browser = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  data.cleanup();
  profile.cleanup();
});

test('the page classifies an uploaded photo, shows similar images, and searches from a clicked result', { skip }, async () => {
  const page = await browser.newPage();
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url.replace('localhost', '127.0.0.1')) && !r.url().startsWith('blob:')) foreign.push(r.url());
  });
  await page.goto(server.url.replace('localhost', '127.0.0.1'));
  await page.waitForFunction(() => Number(document.getElementById('status')?.dataset['size'] ?? 0) > 0);
  assert.match((await page.textContent('#status')) ?? '', /model test-fmnist .* 300 images indexed/);

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
  assert.deepEqual(foreign, [], 'no request leaves the server');
});
