// The page end to end: serve dist/ on loopback, drive Debian's Chromium with playwright-core,
// chat, try to inject a script, go offline and chat again. Screenshots go to artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, serveDist } from "./browser.mjs";

const artifacts = join(dirname(fileURLToPath(import.meta.url)), "artifacts");

let server;
let url;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await serveDist();
  url = server.url;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

async function ask(page, text) {
  const bots = page.locator("#log li.bot");
  const before = await bots.count();
  await page.locator("#message").fill(text);
  await page.locator("#message").press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll("#log li.bot").length > n, before);
  return (await bots.nth(before).innerText()).trim();
}

test("the page loads the model, answers, resists injection and works offline", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 740 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  const started = Date.now();
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  const loadMs = Date.now() - started;
  assert.ok(await page.locator("#message").isEnabled());

  // The greeting is the first bot bubble; "hello" gets a non-empty reply of its own.
  const reply = await ask(page, "hello");
  assert.ok(reply.length > 0 && reply !== "…", `reply: ${reply}`);
  console.log(`loaded in ${loadMs} ms; "hello" -> ${JSON.stringify(reply)}`);

  // A message is text, never markup: no new element, no script run.
  await ask(page, "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script> hello");
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.locator("#log img, #log script").count(), 0);
  const mine = await page.locator("#log li.me").last().innerText();
  assert.ok(mine.includes("<script>"), mine);

  // An unknown word is pointed out politely.
  await ask(page, "hello zorblaxian");
  const notice = await page.locator("#log li.notice").last().innerText();
  assert.match(notice, /don't know the word 'zorblaxian'/);

  await page.screenshot({ path: join(artifacts, "chat.png"), fullPage: true });

  // Offline: the service worker serves everything from its cache.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  const offline = await ask(page, "how are you?");
  assert.ok(offline.length > 0, "offline reply");
  await page.screenshot({ path: join(artifacts, "offline.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test("the page follows the dark colour scheme", async () => {
  const context = await browser.newContext({ colorScheme: "dark", viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, "rgb(20, 23, 29)");
  await page.screenshot({ path: join(artifacts, "dark.png") });
  await context.close();
});
