// Headless Debian Chromium for page tests, started as the machine allows (no sandbox as root, no
// background traffic), and where screenshots go for a person to look at.
import { mkdir } from 'node:fs/promises';
import { type Browser, chromium } from 'playwright-core';

export const SCREENSHOTS = 'test-results/screenshots';

/** Chromium resolves this name to 127.0.0.1: the relay as a LAN name or a VPS before TLS would be reached. */
export const OTHER_HOST = 'relay.test';

/** Launches /usr/bin/chromium (or $CHROMIUM_PATH); never a downloaded browser. */
export async function launchChromium(): Promise<Browser> {
  await mkdir(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`,
    ],
  });
}
