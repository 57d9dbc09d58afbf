// The model lives here, off the page's thread (<burn-chat> starts it): the page never
// freezes while the weights download or a reply is computed.
import init, { Chatbot } from "./pkg/burnchat.js";

// Milliseconds since the worker started, at each stage (the benchmark prints them).
const since = () => Math.round(performance.now());

// Bytes so far and expected of each file (by URL: a backward model's files have the same
// names), as Chatbot.load reports them; the page sees their
// sums, at most once per percent: each message costs it a repaint.
const files = new Map();
let reported = -1;
function onProgress({ url, loaded, total }) {
  files.set(url, { loaded, total: total ?? loaded });
  let sum = 0;
  let expected = 0;
  for (const f of files.values()) {
    sum += f.loaded;
    expected += f.total;
  }
  const percent = Math.floor((100 * sum) / Math.max(expected, sum, 1));
  if (percent !== reported) {
    reported = percent;
    postMessage({ type: "progress", loaded: sum, total: Math.max(expected, sum) });
  }
}

// The module compiles, then fetches the bundle itself (Chatbot.load, over web-sys) from the
// directory the first message names, with the backward model's if it names one:
// {type: "load", src, backward}.
let bot = null;
let loadFrom;
const source = new Promise((resolve) => (loadFrom = resolve));
const ready = (async () => {
  const timings = {};
  await init();
  timings.compiled = since();
  const { src, backward } = await source;
  bot = await Chatbot.load(src, { onProgress, backward });
  timings.loaded = since();
  postMessage({ type: "ready", timings, backward: Boolean(backward) });
})().then(
  () => true,
  (e) => {
    postMessage({ type: "error", fatal: true, message: String(e.message || e) });
    return false;
  },
);

// "ask" is the page's; "bench" is tests/e2e/bench.mjs's (the benchmark, run by hand).
const handlers = {
  ask: (data) => ({ type: "reply", reply: bot.reply(data.text, data.options) }),
  bench: (data) => ({ type: "bench", latency: bot.bench(data.rounds, data.options), soak: data.soak ? bot.soak(data.soak, data.options) : null }),
};

onmessage = async ({ data }) => {
  if (data.type === "load") return loadFrom(data);
  const handle = handlers[data.type];
  if (!handle || !(await ready)) return;
  try {
    postMessage(handle(data));
  } catch (e) {
    // A trap (a Rust panic, out of memory) leaves the module unusable: the page starts a new
    // worker. Anything else is a typed error from the library, for the conversation.
    if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
      postMessage({ type: "crashed", message: String(e.message || e) });
      close();
    } else {
      postMessage({ type: "error", message: String(e.message || e) });
    }
  }
};
