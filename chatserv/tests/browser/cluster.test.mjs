// Browser test of the chat page across two chatserv nodes sharing one
// Redis: page 1 is loaded from node A, page 2 from node B, in one headless
// Chromium (the Debian package, never a downloaded build), each in its own
// browser context. Started by `CLUSTER=1 run.sh`, which starts Redis and the
// two nodes.
//
// Usage: CHAT_URL_A=http://127.0.0.1:PA/ CHAT_URL_B=http://127.0.0.1:PB/ node cluster.test.mjs
// Prints one line per check and a final `browser cluster: N passed, M failed`;
// exits non-zero if anything failed.

import { assert, check, finish, launchBrowser, login, outDir, setupFailed } from "./harness.mjs";
import { join } from "node:path";

const urlA = process.env.CHAT_URL_A;
const urlB = process.env.CHAT_URL_B;
if (!urlA || !urlB) {
  console.error("usage: CHAT_URL_A=http://127.0.0.1:PA/ CHAT_URL_B=http://127.0.0.1:PB/ node cluster.test.mjs");
  process.exit(2);
}
const browser = await launchBrowser();

// Every wait is bounded: 5 s (a line crosses the cluster in milliseconds;
// presence is refreshed every second).
const WAIT_MS = 5000;

async function openPage(at) {
  const context = await browser.newContext({ viewport: { width: 800, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(at);
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  return page;
}


async function send(page, text) {
  await page.fill("#msg", text);
  await page.click("#send");
}

// Wait until an entry of the page's #log reads exactly `text`.
async function waitForLine(page, text) {
  try {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t),
      text,
    );
  } catch (e) {
    const seen = await page.$$eval("#log li", (l) => l.map((li) => li.textContent));
    throw new Error(`not seen within ${WAIT_MS} ms: ${JSON.stringify(text)}; the log has ${JSON.stringify(seen)}`);
  }
}

// The message entries of a page: the text and the sender the page split off.
async function messages(page) {
  return page.$$eval("#log li.msg", (lis) =>
    lis.map((li) => ({ text: li.querySelector(".text").textContent, from: li.dataset.from ?? null })),
  );
}

// `/users` of the node the page was loaded from, fetched by the page.
async function users(page) {
  return page.evaluate(() => fetch("/users", { cache: "no-store" }).then((r) => r.json()));
}

// Poll `/users` through `page` until `ok(json)`, for at most WAIT_MS.
async function waitForUsers(page, ok, what) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  for (;;) {
    last = await users(page);
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: /users says ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let alice, bob;
try {
  await check("page 1 from node A and page 2 from node B log in", async () => {
    assert(new URL(urlA).port !== new URL(urlB).port, "both pages on one port");
    alice = await openPage(urlA);
    bob = await openPage(urlB);
    await login(alice, "alice");
    await login(bob, "bob");
    assert((await alice.textContent("#status")).includes("Connected as alice"), await alice.textContent("#status"));
    assert((await bob.textContent("#status")).includes("Connected as bob"), await bob.textContent("#status"));
    // Each page talks to its own node.
    assert((await users(alice)).node === "a", "page 1 is not served by node a");
    assert((await users(bob)).node === "b", "page 2 is not served by node b");
  });

  await check("a message typed on page A appears on page B, from alice", async () => {
    await send(alice, "hello from node a");
    await waitForLine(bob, "hello from node a -- FROM alice");
    await waitForLine(alice, "you: hello from node a");
    const got = (await messages(bob)).filter((m) => m.text === "hello from node a");
    assert(got.length === 1, `entries on page B: ${JSON.stringify(got)}`);
    assert(got[0].from === "alice", `sender shown on page B: ${got[0].from}`);
  });

  await check("a message typed on page B appears on page A, from bob", async () => {
    await bob.fill("#msg", "hi from node b 👋");
    await bob.press("#msg", "Enter");
    await waitForLine(alice, "hi from node b 👋 -- FROM bob");
    const got = (await messages(alice)).filter((m) => m.text === "hi from node b 👋");
    assert(got.length === 1, `entries on page A: ${JSON.stringify(got)}`);
    assert(got[0].from === "bob", `sender shown on page A: ${got[0].from}`);
    // By now any echo of either page's own line would be in its log.
    assert(!(await messages(alice)).some((m) => m.from === "alice"), "page A got alice's line back");
    assert(!(await messages(bob)).some((m) => m.from === "bob"), "page B got bob's line back");
  });

  // The page shows no user list; /users, fetched by each page from its own
  // node, is where presence shows.
  await check("each node's /users lists both users, alice on a and bob on b", async () => {
    for (const page of [alice, bob]) {
      await waitForUsers(
        page,
        (u) =>
          u.users.includes("alice") && u.users.includes("bob") && u.online === 2 &&
          u.nodes?.a?.includes("alice") && u.nodes?.b?.includes("bob"),
        `node ${page === alice ? "a" : "b"}`,
      );
    }
  });

  await check("a second login of alice on node B kicks page A with 4001", async () => {
    const alice2 = await openPage(urlB);
    await login(alice2, "alice");
    await waitForLine(alice, "connection closed (4001: logged in elsewhere)");
    assert(await alice.isDisabled("#send"), "page A can still send");
    const why = await alice.textContent("#problem");
    assert(why.includes("logged in with this name somewhere else"), `problem on page A: ${why}`);
    assert((await alice.textContent("#status")).includes("Disconnected (4001"), await alice.textContent("#status"));
    // It stays kicked: the page does not log in again by itself.
    await alice.waitForTimeout(1500);
    assert((await alice.$eval("#status", (el) => el.dataset.state)) === "closed", "page A reconnected");
    assert((await alice2.$eval("#status", (el) => el.dataset.state)) === "open", "the new login on node B was closed");
    await alice.screenshot({ path: join(outDir, "cluster-alice-kicked.png") });

    // The new session (node B) is the one that receives, also from node A.
    const carol = await openPage(urlA);
    await login(carol, "carol");
    await send(carol, "after the kick");
    await waitForLine(alice2, "after the kick -- FROM carol");
    await waitForLine(bob, "after the kick -- FROM carol");
    await send(alice2, "alice now on b");
    await waitForLine(carol, "alice now on b -- FROM alice");
    const old = await alice.$$eval("#log li", (l) => l.map((li) => li.textContent));
    assert(!old.some((t) => t.includes("after the kick")), "the kicked page A still receives");
    await waitForUsers(
      carol,
      (u) => !u.nodes?.a?.includes("alice") && u.nodes?.b?.includes("alice") && u.online === 3,
      "alice should be online on node b only",
    );
    await alice2.screenshot({ path: join(outDir, "cluster-alice-relogin.png") });
  });
} catch (e) {
  setupFailed(e);
} finally {
  await browser.close();
}

finish("browser cluster");
