// What both browser tests share: the headless Chromium they drive, the
// out/ folder for screenshots, and the pass/fail bookkeeping.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const outDir = join(here, "out");
mkdirSync(outDir, { recursive: true });

// The system's Chromium (never a downloaded one), headless.
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
      // https (BROWSER_TLS=1 in run.sh): trust exactly the test certificate's key.
      ...(process.env.CHAT_SPKI
        ? [`--ignore-certificate-errors-spki-list=${process.env.CHAT_SPKI}`]
        : []),
    ],
  });
}

const counts = { passed: 0, failed: 0 };

// Run one named check; a thrown error fails it with its first line.
export async function check(name, fn) {
  try {
    await fn();
    counts.passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    counts.failed++;
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// The steps before the checks failed: count it, say why.
export function setupFailed(e) {
  counts.failed++;
  console.log(`FAIL setup: ${e && e.message ? e.message : e}`);
}

// Print the tally and exit 0 only if something passed and nothing failed.
export function finish(label) {
  console.log(`${label}: ${counts.passed} passed, ${counts.failed} failed`);
  process.exit(counts.failed === 0 && counts.passed > 0 ? 0 : 1);
}

// Log in on the page as `name` and wait until its socket is open.
export async function login(page, name) {
  await page.fill("#name", name);
  await page.click("#login");
  await page.waitForFunction(
    () => document.querySelector("#status").dataset.state === "open",
  );
}
