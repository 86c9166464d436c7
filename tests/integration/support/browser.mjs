// Debian's Chromium, headless, driven through playwright-core (no browser download): what the
// browser tests open pages with. scripts/test.sh installs the chromium package; without it the
// tests fail, they never skip.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { plexusBin } from './plexus.mjs';

export const chromiumPath = process.env.PLEXUS_CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser() {
  if (!fs.existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: ./scripts/test.sh installs Debian's chromium`);
  // --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
}

// Where screenshots go: the build folder, beside the binary under test.
export const screenshotPath = (name) => path.join(path.dirname(plexusBin), `${name}.png`);
