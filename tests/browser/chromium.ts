/** Debian's chromium driven by playwright-core, as every browser test launches it. */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** The tests' skip reason when the browser is missing, naming its Debian package. */
export const chromiumSkip: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (Debian package: chromium)`;

/** A headless chromium on a throw-away profile, with nothing that reaches outside the machine. */
export function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
}
