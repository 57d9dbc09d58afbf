// The page end to end: serve dist/ on loopback, drive Debian's Chromium with playwright-core,
// chat, try to inject a script, go offline and chat again. Screenshots go to artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, serveDist } from "./browser.mjs";
import { DEFAULTS, FIELDS } from "../../www/settings.js";

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

// The page's uncaught errors and the browser's complaints about the CSP, collected.
function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => /Content.Security.Policy|Refused to/i.test(m.text()) && errors.push(m.text()));
  return errors;
}

// A new browser context (its own storage) at `viewport`, on the page once the model is ready,
// collecting the page's errors.
async function openPage(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector("burn-chat[data-ready=true]");
  return { context, page, errors };
}

async function ask(page, text) {
  const bots = page.locator("#log li.bot");
  const before = await bots.count();
  await page.locator("#message").fill(text);
  await page.locator("#message").press("Enter");
  await page.waitForFunction((n) => document.querySelector("burn-chat").shadowRoot.querySelectorAll("#log li.bot").length > n, before);
  return (await bots.nth(before).innerText()).trim();
}

test("the page loads the model, answers, resists injection and works offline", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 740 } });
  const page = await context.newPage();
  const errors = watchErrors(page);

  const started = Date.now();
  await page.goto(url);
  await page.waitForSelector("burn-chat[data-ready=true]");
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
  await page.waitForSelector("burn-chat[data-ready=true]");
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
  await page.waitForSelector("burn-chat[data-ready=true]");
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, "rgb(20, 23, 29)");
  await page.screenshot({ path: join(artifacts, "dark.png") });
  await context.close();
});

// PyTorch's replies with the bundled model (and its backward model) under the page's default
// search (tests/golden/searches.json, written by tests/fixtures/make_search_fixtures.py): the
// golden search whose options are www/settings.js's DEFAULTS, field for field.
const searches = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "golden", "searches.json")));
const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
// A field the golden options leave out takes the library's default (length penalty 1).
const resolved = (options, name) => options[snake(name)] ?? { lengthPenalty: 1 }[name];
const pageDefault = searches.find((s) => s.options.search === DEFAULTS.search &&
  Object.keys(s.options).every((key) => key === "search" || FIELDS[DEFAULTS.search].map(snake).includes(key)) &&
  FIELDS[DEFAULTS.search].every((name) => resolved(s.options, name) === DEFAULTS[name]));
assert.ok(pageDefault, "tests/golden/searches.json has the page's default search");
assert.ok(pageDefault.options.mmi > 0, "the page's default reranks with the backward model");
const helloByDefault = pageDefault.replies.find((r) => r.input === "hello");
const goldenGreedy = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "golden", "replies.json"), "utf8")
  .trim().split("\n").map((line) => JSON.parse(line));

// The words of the newest bot bubble, without its time and attention toggle.
async function lastBotWords(page) {
  return (await page.locator("#log li.bot").last().locator("span").first().innerText()).trim();
}

test("replies read as text, search settings persist, and the attention view opens", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector("burn-chat[data-ready=true]");

  // The default search is the page's recommended one: beam search reranked, PyTorch's reply.
  assert.equal(await page.locator("#search-form select[name=search]").inputValue(), "beam");
  await ask(page, "hello");
  assert.equal(helloByDefault.reply, "hi !");
  assert.equal(await lastBotWords(page), "Hi!", `PyTorch's words: ${helloByDefault.reply}`);

  // "how are you?" greedily is "i am doing well ." for PyTorch: the page writes it as a
  // person would.
  await page.locator("#settings summary").click();
  await page.locator("#search-form select[name=search]").selectOption("greedy");
  await page.screenshot({ path: join(artifacts, "settings.png") });
  await ask(page, "how are you?");
  const howAreYou = goldenGreedy.find((r) => r.input === "how are you?");
  assert.equal(howAreYou.reply, "i am doing well .");
  assert.equal(await lastBotWords(page), "I am doing well.");

  // The attention view: a row per reply token, a column per input token, rows summing to 1.
  const bot = page.locator("#log li.bot").last();
  await bot.getByRole("button", { name: "Show attention" }).click();
  const table = bot.locator("table");
  await table.waitFor();
  const header = await table.locator("tr").first().locator("th").allInnerTexts();
  assert.deepEqual(header.slice(1), ["how", "are", "you", "?", "EOS"]);
  const rows = await table.locator("tr").evaluateAll((trs) =>
    trs.slice(1).map((tr) => ({
      word: tr.querySelector("th").textContent,
      weights: [...tr.querySelectorAll("td")].map((td) => Number(td.textContent)),
    })));
  assert.deepEqual(rows.map((r) => r.word), ["i", "am", "doing", "well", ".", "EOS"]);
  for (const row of rows) {
    const sum = row.weights.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 0.03, `${row.word}: ${row.weights} sum to ${sum}`);
  }
  assert.equal(await bot.getByRole("button", { name: "Hide attention" }).getAttribute("aria-expanded"), "true");
  await page.screenshot({ path: join(artifacts, "attention.png") });

  // A long conversation: the newest reply ends above the sticky input bar, not under it.
  for (let i = 0; i < 8; i++) await ask(page, "how are you?");
  const last = await page.locator("#log li.bot").last().boundingBox();
  const bar = await page.locator("#form").boundingBox();
  assert.ok(last.y + last.height <= bar.y, `newest reply ends at ${last.y + last.height}, the bar starts at ${bar.y}`);

  // The choice survives a reload.
  await page.reload();
  await page.waitForSelector("burn-chat[data-ready=true]");
  assert.equal(await page.locator("#search-form select[name=search]").inputValue(), "greedy");
  await ask(page, "hello");
  assert.equal(goldenGreedy.find((r) => r.input === "hello").reply, "how are you doing ?");
  assert.equal(await lastBotWords(page), "How are you doing?");
  await page.locator("#settings summary").click();
  await page.locator("#search-reset").click();
  assert.equal(await page.locator("#search-form select[name=search]").inputValue(), "beam");

  // Sampling: a reply, and the settings the page sends are the sampling ones.
  await page.locator("#search-form select[name=search]").selectOption("sample");
  assert.ok(await page.locator("fieldset[data-for=sample]").isVisible());
  assert.ok(!(await page.locator("fieldset[data-for=beam]").isVisible()));
  await ask(page, "how are you?");
  assert.ok((await lastBotWords(page)).length > 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the page recovers when its worker dies, and keeps the conversation", async () => {
  const { context, page, errors } = await openPage({ width: 390, height: 740 });
  await ask(page, "hello");
  const before = await page.locator("#log li").allInnerTexts();

  // Kill the worker as a trap would: an error it does not catch.
  const worker = page.workers().find((w) => w.url().endsWith("/worker.js"));
  assert.ok(worker, `workers: ${page.workers().map((w) => w.url())}`);
  await worker.evaluate(() => {
    setTimeout(() => {
      throw new WebAssembly.RuntimeError("unreachable");
    });
  });
  await page.waitForSelector("burn-chat[data-restarts='1'][data-ready=true]");
  const notice = await page.locator("#log li.notice").last().innerText();
  assert.match(notice, /stopped working .*unreachable.*conversation is kept/);
  const after = await page.locator("#log li").allInnerTexts();
  assert.deepEqual(after.slice(0, before.length), before);
  // Nothing was being answered, so nothing is asked again.
  assert.equal(await lastBotWords(page), "I'm back.");

  // The new worker answers the next message.
  const reply = await ask(page, "how are you?");
  assert.ok(reply.length > 0 && reply !== "…", `reply: ${reply}`);
  await page.screenshot({ path: join(artifacts, "recovered.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test("the conversation survives a reload, offline too, and can be cleared", async () => {
  const { context, page, errors } = await openPage({ width: 390, height: 740 });
  await ask(page, "hello");
  await ask(page, "hello zorblaxian");
  // The greeting is said, not kept: the conversation is the messages, replies and notices.
  const said = (await page.locator("#log li").allInnerTexts()).slice(1);

  await page.evaluate(() => navigator.serviceWorker.ready);
  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector("burn-chat[data-ready=true]");
  assert.deepEqual(await page.locator("#log li").allInnerTexts(), said);
  // A kept reply's attention view still opens.
  await page.locator("#log li.bot").first().getByRole("button", { name: "Show attention" }).click();
  await page.locator("#log li.bot table").first().waitFor();
  await page.screenshot({ path: join(artifacts, "kept.png"), fullPage: true });

  await page.getByRole("button", { name: "Clear conversation" }).click();
  assert.equal(await page.locator("#log li").count(), 0);
  assert.ok(!(await page.locator("#clear").isVisible()));
  await page.reload();
  await page.waitForSelector("burn-chat[data-ready=true]");
  assert.deepEqual(await page.locator("#log li").allInnerTexts(), ["Hello! Ask me anything."]);
  assert.deepEqual(errors, []);
  await context.close();
});

test("after 15 messages the newest reply is fully visible above the input bar, narrow and wide", async () => {
  for (const viewport of [{ width: 390, height: 740 }, { width: 1280, height: 800 }]) {
    const { context, page, errors } = await openPage(viewport);
    for (let i = 0; i < 15; i++) await ask(page, i % 2 ? "how are you?" : "hello");
    const newest = page.locator("#log li.bot").last();
    const box = await newest.boundingBox();
    const bar = await page.locator("#form").boundingBox();
    const size = `${viewport.width}x${viewport.height}`;
    assert.ok(box.y >= 0 && box.y + box.height <= bar.y, `${size}: reply ${box.y}..${box.y + box.height}, bar at ${bar.y}`);
    // Nothing covers it: the element at its centre is the bubble or inside it.
    const covered = await newest.evaluate((li) => {
      const r = li.getBoundingClientRect();
      const hit = li.getRootNode().elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
      return !li.contains(hit);
    });
    assert.ok(!covered, `${size}: the newest reply is covered`);
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test("Chatbot.load fetches a bundle with progress, names a missing file, frees its memory, and takes a backward model", async () => {
  const { context, page, errors } = await openPage({ width: 1280, height: 800 });
  const result = await page.evaluate(async () => {
    const { default: init, Chatbot, memoryBytes } = await import("./pkg/burnchat.js");
    await init();
    // Progress, from the page's own thread (the worker's loads cover a worker's).
    const events = [];
    const bot = await Chatbot.load("weights", { onProgress: (p) => events.push(p) });
    const reply = bot.reply("hello").text;
    bot.free();
    let missing = null;
    try {
      (await Chatbot.load("nowhere/")).free();
    } catch (e) {
      missing = String(e.message);
    }
    // Loaded and freed 100 times: the memory grows while the loads settle the allocator, once
    // or twice, then not at all (with the int8 bundle it grew once, at the 13th load in one
    // build and at the 59th in another, then stayed flat through the 300th); a leaked bundle
    // would grow it at nearly every load. Kept instead of freed, 5 more would add their weights.
    const sizes = [];
    for (let i = 0; i < 100; i++) {
      (await Chatbot.load("weights/")).free();
      sizes.push(memoryBytes());
    }
    const kept = [];
    for (let i = 0; i < 5; i++) kept.push(await Chatbot.load("weights/"));
    const afterKept = memoryBytes();
    kept.forEach((b) => b.free());
    return { events, reply, missing, sizes, afterKept };
  });
  const byFile = {};
  for (const e of result.events) (byFile[e.file] ??= []).push(e);
  assert.deepEqual(Object.keys(byFile).sort(), ["config.json", "model.safetensors", "voc.json"]);
  for (const [file, events] of Object.entries(byFile)) {
    const [first, last] = [events[0], events.at(-1)];
    assert.equal(first.loaded, 0, file);
    assert.ok(first.total > 0 && last.loaded === first.total && last.total === first.total, JSON.stringify({ file, first, last }));
    assert.ok(events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded), file);
    assert.match(first.url, new RegExp(`^weights/${file.replace(".", "\\.")}$`));
  }
  assert.ok(result.reply.length > 0, "a reply");
  assert.match(result.missing, /nowhere\/model\.safetensors: HTTP 404/);
  const [settled, last] = [result.sizes.at(-25), result.sizes.at(-1)];
  const growths = result.sizes.filter((s, i) => i > 0 && s > result.sizes[i - 1]).length;
  console.log(`wasm memory: after load 1 ${result.sizes[0]}, 76 ${settled}, 100 ${last} (${growths} growths); 5 kept ${result.afterKept}`);
  assert.ok(growths <= 2, `100 loads and frees grew the memory ${growths} times`);
  assert.equal(last, settled, "100 loads and frees leave the memory flat over the last 25");
  assert.ok(result.afterKept > last + 4 * 1e6, "5 bots kept take their weights' memory: the measure sees it");

  // The bundled backward model for MMI-bidi, fetched alongside, its files reported under
  // their own URLs; without one, `mmi` is an Error, and a backward that is not a URL is
  // refused.
  const mmi = await page.evaluate(async () => {
    const { default: init, Chatbot } = await import("./pkg/burnchat.js");
    await init();
    const urls = new Set();
    const bot = await Chatbot.load("weights/", { backward: "weights/backward/", onProgress: (p) => urls.add(p.url) });
    const options = { search: "beam", beamWidth: 5, mmi: 1 };
    const reply = bot.reply("hello", options).text;
    bot.free();
    const plain = await Chatbot.load("weights/");
    let without = null;
    try {
      plain.reply("hello", options);
    } catch (e) {
      without = String(e.message);
    }
    plain.free();
    let notUrl = null;
    try {
      (await Chatbot.load("weights/", { backward: 3 })).free();
    } catch (e) {
      notUrl = String(e.message);
    }
    return { urls: [...urls].sort(), reply, without, notUrl };
  });
  assert.deepEqual(mmi.urls, ["weights/backward/config.json", "weights/backward/model.safetensors",
    "weights/backward/voc.json", "weights/config.json", "weights/model.safetensors", "weights/voc.json"]);
  assert.ok(mmi.reply.length > 0, "a reply reranked with the backward model");
  assert.match(mmi.without, /needs a backward model/);
  assert.match(mmi.notUrl, /backward is not a string/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("examples/embed: one script and one element on a page of its own, under a strict CSP", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 740 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  // The element's events, as the embedding page would listen for them.
  await context.addInitScript(() => {
    window.__events = [];
    document.addEventListener("ready", () => window.__events.push("ready"));
    document.addEventListener("reply", (e) => window.__events.push(`reply: ${e.detail.text}`));
  });
  await page.goto(new URL("embed/", url).href);
  await page.waitForSelector("burn-chat[data-ready=true]");

  // Its files came from one directory up: the element's, the worker's and the bundle's.
  const worker = page.workers().find((w) => w.url().endsWith("/worker.js"));
  assert.equal(worker?.url(), new URL("worker.js", url).href);
  // The page's own greeting and theme; the input is found by its accessible name.
  assert.deepEqual(await page.locator("#log li").allInnerTexts(), ["Hi! I'm a small chatbot. Say something."]);
  assert.ok(!(await page.locator("#settings").isVisible()), "no settings panel without the attribute");
  const textbox = page.getByRole("textbox", { name: "Your message" });
  assert.ok(await textbox.isEnabled());

  // The page's default search without the panel, with the backward model: PyTorch's reply,
  // as on the demo page.
  await ask(page, "hello");
  assert.equal(await lastBotWords(page), "Hi!");
  assert.equal(await page.locator("#log li.me").evaluate((li) => getComputedStyle(li).backgroundColor), "rgb(15, 123, 95)");
  assert.deepEqual(await page.evaluate(() => window.__events), ["ready", "reply: Hi!"]);

  // The chat keeps to its box: after 12 messages the element is as high as the site made
  // it, and the newest reply is visible inside it, above the input bar.
  const height = (await page.locator("burn-chat").boundingBox()).height;
  for (let i = 0; i < 12; i++) await ask(page, i % 2 ? "how are you?" : "hello");
  const host = await page.locator("burn-chat").boundingBox();
  assert.equal(host.height, height);
  const newest = page.locator("#log li.bot").last();
  const box = await newest.boundingBox();
  const bar = await page.locator("#form").boundingBox();
  assert.ok(box.y >= host.y && box.y + box.height <= bar.y, `reply ${box.y}..${box.y + box.height}, box from ${host.y}, bar at ${bar.y}`);
  assert.ok(await newest.evaluate((li) => {
    const r = li.getBoundingClientRect();
    return li.contains(li.getRootNode().elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
  }), "the newest reply is not covered");
  await page.screenshot({ path: join(artifacts, "embed.png"), fullPage: true });

  // Taken out of the page and put back, it keeps its conversation and answers again.
  const bubbles = await page.locator("#log li").count();
  await page.evaluate(() => {
    const chat = document.querySelector("burn-chat");
    const parent = chat.parentNode;
    chat.remove();
    return new Promise((resolve) => setTimeout(() => resolve(parent.append(chat)), 100));
  });
  await page.waitForSelector("burn-chat[data-ready=true]");
  assert.equal(await page.locator("#log li").count(), bubbles);
  await ask(page, "hello");
  assert.equal(await lastBotWords(page), "Hi!");

  // Its conversation is kept under its own key, apart from the demo page's.
  const keys = await page.evaluate(() => Object.keys(localStorage));
  assert.deepEqual(keys, ["embed.conversation"]);

  // Without the backward model the element answers too: it does not ask for MMI reranking.
  const plain = await page.evaluate(() => new Promise((resolve, reject) => {
    const chat = document.createElement("burn-chat");
    chat.setAttribute("src", "../weights/");
    chat.setAttribute("storage-key", "");
    chat.addEventListener("ready", () => chat.send("hello"));
    chat.addEventListener("reply", (e) => resolve({
      text: e.detail.text,
      notices: [...chat.shadowRoot.querySelectorAll("#log li.notice")].map((li) => li.textContent),
    }));
    chat.addEventListener("failed", (e) => reject(new Error(e.detail.message)));
    document.body.append(chat);
  }));
  assert.ok(plain.text.length > 0, "a reply without the backward model");
  assert.deepEqual(plain.notices, []);
  assert.deepEqual(errors, []);
  await context.close();
});
