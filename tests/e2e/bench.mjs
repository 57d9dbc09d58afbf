// The browser benchmark (run by hand: `make bench-browser`; a benchmark, not a test): the
// wasm build in headless Chromium, in a Web Worker started from worker.js as the page starts
// it. Prints page load to first reply, milliseconds per reply (timed inside the worker, and
// as the page sees them, message round trips included) and the wasm memory over many replies.
//
//   node tests/e2e/bench.mjs [--rounds 5] [--soak 10000] [--loads 3] [--dist DIR] [--options JSON]
//
// --options: the search options every reply gets, as the page sends them, e.g.
// '{"search":"beam","beamWidth":10,"noRepeatNgram":2,"antiLm":1.2,"mmi":1,"minLength":2}' (the page's
// default; without --options: none, greedy).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { dist, launch, serveDist } from "./browser.mjs";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    soak: { type: "string", default: "10000" },
    loads: { type: "string", default: "3" },
    dist: { type: "string" },
    options: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const soakReplies = Number(values.soak);
const options = values.options ? JSON.parse(values.options) : undefined;
const prompts = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bench", "prompts.txt"), "utf8")
  .split("\n")
  .filter((line) => line.trim());

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = (s.length - 1) / 2;
  return (s[Math.floor(mid)] + s[Math.ceil(mid)]) / 2;
};

const server = await serveDist(values.dist);
// A dist without weights/backward/ (a tutorial-size bundle copied in) loads no backward model.
const backward = existsSync(join(values.dist ?? dist, "weights", "backward", "config.json")) ? "weights/backward/" : undefined;
const browser = await launch();
try {
  console.log(`${await browser.version()}, ${prompts.length} prompts`);

  // Page load to first reply: a fresh profile each time (nothing cached); "hello" is typed
  // as soon as the page is ready. The page's own clock (0 at navigation start) stamps the
  // moments, so the harness's polling delays are not counted: first reply = ready + the
  // time from the question's bubble to the reply's.
  const loads = [];
  for (let i = 0; i < Number(values.loads); i++) {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      // <burn-chat>'s events (composed, so they reach the document) and the Enter key.
      const s = (window.__stamps = {});
      document.addEventListener("ready", () => (s.ready ??= performance.now()));
      document.addEventListener("keydown", (e) => e.key === "Enter" && (s.asked ??= performance.now()), true);
      document.addEventListener("reply", () => (s.replied ??= performance.now()));
    });
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForSelector("burn-chat[data-ready=true]");
    await page.locator("#message").fill("hello");
    await page.locator("#message").press("Enter");
    await page.waitForFunction(() => window.__stamps.replied !== undefined);
    const s = await page.evaluate(() => window.__stamps);
    loads.push(Math.round(s.ready + s.replied - s.asked));
    console.log(
      `load ${i + 1}: ready at ${Math.round(s.ready)} ms, reply ${Math.round(s.replied - s.asked)} ms after the question: ${loads.at(-1)} ms`,
    );
    await context.close();
  }
  if (loads.length > 0) {
    console.log(`page load to first reply: median ${median(loads)} ms over ${loads.length} cold loads`);
  }

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.url);
  const result = await page.evaluate(
    async ({ prompts, rounds, soakReplies, options, backward }) => {
      const worker = new Worker("worker.js", { type: "module" });
      // The bundle and its backward model, as the page loads them.
      worker.postMessage({ type: "load", src: "weights/", backward });
      const next = (type) =>
        new Promise((resolve, reject) => {
          worker.onmessage = ({ data }) => {
            if (data.type === type) resolve(data);
            else if (data.type === "error") reject(new Error(data.message));
          };
        });
      const { timings } = await next("ready");
      // Round trips as the page sees them: post "ask", wait for "reply".
      const ask = async (text) => {
        const reply = next("reply");
        worker.postMessage({ type: "ask", text, options });
        return reply;
      };
      for (const p of prompts) await ask(p);
      const trips = [];
      for (let r = 0; r < rounds; r++) {
        for (const p of prompts) {
          const started = performance.now();
          await ask(p);
          trips.push(performance.now() - started);
        }
      }
      const bench = next("bench");
      worker.postMessage({ type: "bench", rounds, soak: soakReplies, options });
      const { latency, soak } = await bench;
      worker.terminate();
      return { timings, trips, latency, soak };
    },
    { prompts, rounds, soakReplies, options, backward },
  );
  const t = result.timings;
  console.log(
    `worker start to: wasm compiled ${t.compiled} ms, weights downloaded and model loaded ${t.loaded} ms`,
  );
  const l = result.latency;
  console.log(
    `in the worker: ${l.replies} replies, median ${l.median_ms.toFixed(2)} ms, p90 ${l.p90_ms.toFixed(2)} ms, ` +
      `mean ${l.mean_ms.toFixed(2)} ms; ${l.mean_tokens.toFixed(1)} tokens per reply, ${l.ms_per_token.toFixed(3)} ms per token`,
  );
  console.log(`as the page sees it (postMessage round trip): median ${median(result.trips).toFixed(2)} ms`);
  if (result.soak) {
    const s = result.soak;
    const mib = (b) => (b / 2 ** 20).toFixed(1);
    console.log(
      `${s.replies} replies in a row: wasm memory ${mib(s.baseline_bytes)} MiB after 100, ` +
        `at most ${mib(s.max_bytes)} MiB after (growth ${s.max_bytes - s.baseline_bytes} bytes), ${mib(s.final_bytes)} MiB at the end`,
    );
  }
  console.log(`JSON ${JSON.stringify({ loads, ...result, trips: undefined, trips_median_ms: median(result.trips) })}`);
  await context.close();
} finally {
  await browser.close();
  server.stop();
}
