// The operator's panel in a real Chromium, against a running iofd (tests/browser.rs starts
// one on 127.0.0.1:0 and passes its addresses in the environment). Exits non-zero on the
// first failed step; a missing Chromium fails too.
//
// IOFD_ADMIN, IOFD_TOKEN (admin token), IOFD_PARTNER and IOFD_GATEWAY (a demo partner and its
// gateway URL), IOFD_SHOTS (where screenshots go).

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const admin = env('IOFD_ADMIN');
const token = env('IOFD_TOKEN');
const partner = env('IOFD_PARTNER');
const gateway = env('IOFD_GATEWAY');
const shots = env('IOFD_SHOTS');

// Flags for a machine without network: nothing is fetched in the background.
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function check(ok, what) {
  if (!ok) throw new Error(what);
}

/// Poll `url` until it answers `status`, for at most `ms`; returns the time it took.
async function statusWithin(url, status, ms) {
  const start = Date.now();
  let last;
  while (Date.now() - start <= ms) {
    last = (await fetch(url)).status;
    if (last === status) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${url} answered ${last}, not ${status}, within ${ms} ms`);
}

const profile = mkdtempSync(join(tmpdir(), 'iofd-chromium-'));
let context;
try {
  // A fresh profile directory every run (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());

  // Without a session the panel sends us to the login page.
  await page.goto(`${admin}/ui/`);
  check(new URL(page.url()).pathname === '/ui/login', `login page expected, got ${page.url()}`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${admin}/ui/`);
  await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
  console.log(`screenshot: ${join(shots, 'overview.png')}`);

  // Switch the demo partner's offer off: its gateway answers 403 within a second.
  check((await fetch(gateway)).status === 200, 'the gateway answers before the switch');
  await page.goto(`${admin}/ui/partners/${partner}`);
  await page.getByRole('button', { name: 'Switch offer access off' }).click();
  await page.getByText('Offer access switched off').waitFor();
  const off = await statusWithin(gateway, 403, 1000);
  console.log(`gateway 403 after ${off} ms`);
  await page.getByRole('button', { name: 'Switch offer access on' }).click();
  await page.getByText('Offer access switched on').waitFor();
  const on = await statusWithin(gateway, 200, 1000);
  console.log(`gateway 200 again after ${on} ms`);

  // The card shows the fetches just made.
  await page.goto(`${admin}/ui/partners/${partner}`);
  check(await page.getByRole('cell', { name: 'gateway', exact: true }).isVisible(), 'activity of the gateway');
  await page.screenshot({ path: join(shots, 'partner-card.png'), fullPage: true });
  console.log(`screenshot: ${join(shots, 'partner-card.png')}`);

  // The partners list on a phone's screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${admin}/ui/partners`);
  await page.screenshot({ path: join(shots, 'partners-phone.png'), fullPage: true });
  console.log(`screenshot: ${join(shots, 'partners-phone.png')}`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // Add a partner; its token and gateway URL are shown once and work.
  await page.goto(`${admin}/ui/partners`);
  await page.getByLabel('Id (used in URLs)').fill('browser-shop');
  await page.getByLabel('Name').fill('Added in a browser');
  await page.getByLabel('Languages').fill('pol,eng');
  await page.getByRole('button', { name: 'Add partner' }).click();
  const shownToken = (await page.locator('code#token').textContent()).trim();
  const url = (await page.locator('code.gateway').first().textContent()).trim();
  check(url.includes(`/browser-shop/${shownToken}/`), `the gateway URL carries the token: ${url}`);
  // Its settings equal a demo partner's, so its files exist; the reload takes a moment.
  await statusWithin(url, 200, 5000);
  const body = await (await fetch(url)).text();
  check(body.includes('<provider_description'), 'a gateway document');
  console.log(`added partner's gateway: ${body.length} bytes`);
  console.log('panel browser test: ok');
} catch (e) {
  console.error(`panel browser test failed: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
