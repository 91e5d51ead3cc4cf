// Browser test of the chatserv web page: headless Chromium (the Debian
// package, never a downloaded build) driven by playwright-core.
//
// Usage: CHAT_URL=http://127.0.0.1:PORT/ node chat.test.mjs
// Prints one line per check and a final `browser: N passed, M failed`;
// exits non-zero if anything failed.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const url = process.env.CHAT_URL || process.argv[2];
if (!url) {
  console.error("usage: CHAT_URL=http://127.0.0.1:PORT/ node chat.test.mjs");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "out");
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
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

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// Each user gets its own browser context (separate tab state).
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 800, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(5000);
  await page.goto(url);
  return page;
}

async function login(page, name) {
  await page.fill("#name", name);
  await page.click("#login");
  await page.waitForFunction(
    () => document.querySelector("#status").dataset.state === "open",
  );
}

async function logText(page) {
  return page.$eval("#log", (el) => el.innerText);
}

async function waitForLine(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t),
    text,
  );
}

let alice, bob;
try {
  await check("page loads with the login form", async () => {
    alice = await openPage();
    bob = await openPage();
    assert((await alice.title()) === "chatserv", "title");
    assert(await alice.isVisible("#name"), "#name visible");
    assert(await alice.isVisible("#login"), "#login visible");
    assert(await alice.isHidden("#msg"), "#msg hidden before login");
  });

  await check("two users log in", async () => {
    await login(alice, "alice");
    await login(bob, "bob");
    const status = await bob.textContent("#status");
    assert(status.includes("Connected as bob"), `status: ${status}`);
  });

  if (url.startsWith("https:")) {
    await check("over https the page's WebSocket is wss://", async () => {
      const wsUrl = await bob.evaluate("ws && ws.url");
      assert(String(wsUrl).startsWith("wss://"), `WebSocket URL: ${wsUrl}`);
    });
  }

  await check("the browser's permessage-deflate offer is accepted", async () => {
    const ext = await bob.$eval("#status", (el) => el.dataset.extensions);
    assert(ext.startsWith("permessage-deflate"), `negotiated extensions: ${JSON.stringify(ext)}`);
  });

  await check("a long compressed message arrives intact", async () => {
    const long = "compress me ".repeat(300).trim();
    await alice.fill("#msg", long);
    await alice.click("#send");
    await waitForLine(bob, `${long} -- FROM alice`);
  });

  await check("a message reaches the other user, not echoed by the server", async () => {
    await alice.fill("#msg", "hello bob");
    await alice.click("#send");
    await waitForLine(bob, "hello bob -- FROM alice");
    await waitForLine(alice, "you: hello bob");
    // bob answers with Enter; once alice has it, any echo of her own line
    // would already be in her log.
    await bob.fill("#msg", "hi alice 👋");
    await bob.press("#msg", "Enter");
    await waitForLine(alice, "hi alice 👋 -- FROM bob");
    const text = await logText(alice);
    assert(!text.includes("-- FROM alice"), "alice got her own message back");
  });

  await check("logging in again elsewhere closes the old page with 4001", async () => {
    const alice2 = await openPage();
    await login(alice2, "alice");
    await waitForLine(alice, "connection closed (4001: logged in elsewhere)");
    assert(await alice.isDisabled("#send"), "old page still enabled");
    // The new session is the one that receives.
    await bob.fill("#msg", "welcome back");
    await bob.click("#send");
    await waitForLine(alice2, "welcome back -- FROM bob");
    await alice2.screenshot({ path: join(outDir, "alice-relogin.png") });
    await alice.screenshot({ path: join(outDir, "alice-kicked.png") });
  });

  await bob.screenshot({ path: join(outDir, "chat.png") });
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e && e.message ? e.message : e}`);
} finally {
  await browser.close();
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
