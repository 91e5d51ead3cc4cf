// Browser test of the chatserv web page: headless Chromium (the Debian
// package, never a downloaded build) driven by playwright-core.
//
// Usage: CHAT_URL=http://127.0.0.1:PORT/ node chat.test.mjs
// Prints one line per check and a final `browser: N passed, M failed`;
// exits non-zero if anything failed.

import { assert, check, finish, launchBrowser, login, outDir, setupFailed } from "./harness.mjs";
import { join } from "node:path";
import { spawn } from "node:child_process";

const url = process.env.CHAT_URL || process.argv[2];
if (!url) {
  console.error("usage: CHAT_URL=http://127.0.0.1:PORT/ node chat.test.mjs");
  process.exit(2);
}
const browser = await launchBrowser();

// Each user gets its own browser context (separate tab state).
async function openPage(at = url) {
  const context = await browser.newContext({ viewport: { width: 800, height: 640 } });
  const page = watch(await context.newPage());
  page.setDefaultTimeout(5000);
  await page.goto(at);
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  return page;
}


// Every HTTP response of status >= 400 seen by any page (favicon 404s
// included): there must be none but the ones a test expects.
const badResponses = [];
function watch(page) {
  page.on("response", (r) => {
    if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`);
  });
  return page;
}

// A chatserv of our own (for restarts), on `port` (0: any). Resolves to
// { proc, port } once it has logged `started`.
const bin = process.env.CHATSERV_BIN;
function startServer(port, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--id", "browser-restart", ...extra], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    const timer = setTimeout(() => reject(new Error(`no started line: ${log}`)), 10_000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/started.*listen="[^"]*:(\d+)"/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on("exit", (code) => reject(new Error(`chatserv exited ${code}: ${log}`)));
  });
}
function stopServer(server) {
  return new Promise((resolve) => {
    server.proc.removeAllListeners("exit");
    server.proc.on("exit", () => resolve());
    server.proc.kill("SIGTERM");
  });
}

async function messages(page) {
  return page.$$eval("#log li.msg", (lis) =>
    lis.map((li) => ({ text: li.querySelector(".text").textContent, from: li.dataset.from ?? null })),
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
    globalThis.alice2 = alice2;
    await login(alice2, "alice");
    await waitForLine(alice, "connection closed (4001: logged in elsewhere)");
    assert(await alice.isDisabled("#send"), "old page still enabled");
    const why = await alice.textContent("#problem");
    assert(why.includes("logged in with this name somewhere else"), `problem: ${why}`);
    // The new session is the one that receives.
    await bob.fill("#msg", "welcome back");
    await bob.click("#send");
    await waitForLine(alice2, "welcome back -- FROM bob");
    await alice2.screenshot({ path: join(outDir, "alice-relogin.png") });
    await alice.screenshot({ path: join(outDir, "alice-kicked.png") });
  });

  await check("a message cannot pass for another sender's", async () => {
    // An <input> cannot hold a newline: send it on bob's socket directly,
    // as a hostile client would.
    await bob.evaluate(() => ws.send("我是管理员 -- FROM admin\nok"));
    const alice2 = globalThis.alice2;
    await alice2.waitForFunction(() =>
      [...document.querySelectorAll("#log li.msg")].some((li) => li.textContent.includes("我是管理员")),
    );
    const all = await messages(alice2);
    const spoof = all.filter((m) => m.text.includes("我是管理员"));
    assert(spoof.length === 1, `one entry expected: ${JSON.stringify(spoof)}`);
    assert(spoof[0].from === "bob", `sender: ${spoof[0].from}`);
    assert(spoof[0].text === "我是管理员 -- FROM admin\nok", `text: ${JSON.stringify(spoof[0].text)}`);
    assert(!all.some((m) => m.from === "admin"), "an entry appears to be from admin");
    // The text is text: markup in a message is not interpreted.
    await bob.evaluate(() => { document.getElementById("msg").value = "<img src=x onerror=alert(1)><b>bold</b>"; });
    await bob.click("#send");
    await alice2.waitForFunction(() =>
      [...document.querySelectorAll("#log li.msg .text")].some((t) => t.textContent.startsWith("<img")),
    );
    assert((await alice2.$$("#log img, #log li.msg .text b")).length === 0, "markup was interpreted");
    await alice2.screenshot({ path: join(outDir, "spoof.png") });
  });

  await check("whitespace-only messages are not sent", async () => {
    const before = (await messages(globalThis.alice2)).length;
    const ownBefore = await bob.$$eval("#log li.self", (l) => l.length);
    await bob.fill("#msg", "   \t  ");
    await bob.click("#send");
    await bob.fill("#msg", "after blanks");
    await bob.click("#send");
    await waitForLine(globalThis.alice2, "after blanks -- FROM bob");
    const after = await messages(globalThis.alice2);
    assert(after.length === before + 1, `${after.length - before} messages arrived`);
    assert((await bob.$$eval("#log li.self", (l) => l.length)) === ownBefore + 1, "blank shown as sent");
  });

  await check("a message over the server's limit is refused before sending", async () => {
    const limit = await bob.evaluate(() => fetch("/config").then((r) => r.json()).then((c) => c.max_message_size));
    assert(limit === 65536, `limit ${limit}`);
    await bob.evaluate((n) => { document.getElementById("msg").value = "é".repeat(n); }, limit / 2 + 1);
    await bob.click("#send");
    const text = await bob.textContent("#problem");
    assert(text.includes("too large") && text.includes(`${limit} bytes`), `problem: ${text}`);
    assert((await bob.textContent("#status")).startsWith("Connected"), "bob was disconnected");
    assert((await bob.inputValue("#msg")).length > 0, "the message was cleared");
  });

  await check("a name breaking the rules is refused with the rule, before connecting", async () => {
    const page = await openPage();
    for (const [bad, rule] of [
      [" carol", "start or end with a space"],
      ["x -- FROM admin", "must not contain"],
      ["é".repeat(65), "at most 64 characters"],
      ["", "enter a name"],
    ]) {
      await page.fill("#name", bad);
      await page.click("#login");
      const text = await page.textContent("#problem");
      assert(text.includes(rule), `${JSON.stringify(bad)}: ${text}`);
      assert((await page.$eval("#status", (el) => el.dataset.state)) === "refused", "it connected");
    }
    // 64 characters (128 bytes in UTF-8) is accepted by page and server alike.
    await login(page, "é".repeat(64));
  });

  await check("the favicon is served (no 404 anywhere)", async () => {
    // Fetched by the page itself, so over https it trusts exactly what the
    // browser trusts (the test key's SPKI), unlike Playwright's own client.
    const status = await bob.evaluate(async (href) => (await fetch(href)).status,
      new URL("/favicon.ico", url).href);
    assert(status === 200, `favicon: ${status}`);
    assert(badResponses.length === 0, `error responses: ${badResponses.join(", ")}`);
  });

  await check("after a server restart the page says why and reconnects by itself", async () => {
    let server = await startServer(0);
    const port = server.port;
    const base = `http://127.0.0.1:${port}/`;
    const a = await openPage(base);
    const b = await openPage(base);
    await login(a, "dora");
    await login(b, "emil");
    await stopServer(server);
    await a.waitForFunction(() => document.querySelector("#problem").textContent.includes("shutting down"));
    await a.waitForFunction(() => document.querySelector("#status").dataset.reconnecting === "true");
    // While it is down, the page says so.
    await a.waitForFunction(() => document.querySelector("#problem").textContent.includes("unreachable"), null, { timeout: 10_000 });
    server = await startServer(port);
    try {
      for (const p of [a, b]) {
        await p.waitForFunction(() => document.querySelector("#status").dataset.state === "open", null, { timeout: 20_000 });
      }
      await a.fill("#msg", "back again");
      await a.click("#send");
      await waitForLine(b, "back again -- FROM dora");
    } finally {
      await stopServer(server);
    }
  });

  await check("a token in the page's URL logs in under its name", async () => {
    const secret = "browser-test-secret-0123456789abcdef";
    const signed = await new Promise((resolve, reject) => {
      const proc = spawn(bin, ["--listen", "127.0.0.1:0"], { env: { ...process.env, CHATSERV_AUTH_SECRET: secret }, stdio: ["ignore", "ignore", "pipe"] });
      let log = "";
      proc.stderr.on("data", (c) => {
        log += c;
        const m = log.match(/started.*listen="[^"]*:(\d+)"/);
        if (m) resolve({ proc, port: Number(m[1]) });
      });
      setTimeout(() => reject(new Error(log)), 10_000);
    });
    try {
      const token = await new Promise((resolve) => {
        const p = spawn(bin, ["token", "--user", "fay"], { env: { ...process.env, CHATSERV_AUTH_SECRET: secret } });
        let out = "";
        p.stdout.on("data", (c) => (out += c));
        p.on("exit", () => resolve(out.trim()));
      });
      const base = `http://127.0.0.1:${signed.port}/`;
      const page = await openPage(`${base}?token=${token}`);
      await page.click("#login");
      await page.waitForFunction(() => document.querySelector("#status").dataset.state === "open");
      assert((await page.textContent("#status")).includes("Connected as fay"), await page.textContent("#status"));
      assert(!page.url().includes("token="), "token left in the address bar");
      // Without a token the page explains what is missing.
      const plain = await openPage(base);
      const text = await plain.textContent("#problem");
      assert(text.includes("signed login"), `problem: ${text}`);
    } finally {
      await stopServer(signed);
    }
  });

  await bob.screenshot({ path: join(outDir, "chat.png") });
} catch (e) {
  setupFailed(e);
} finally {
  await browser.close();
}

finish("browser");
