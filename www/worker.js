// The model lives here, off the page's thread: the page never freezes while the weights
// download or a reply is computed.
import init, { bench, load, reply, soak } from "./pkg/burnchat.js";

const FILES = ["weights/model.safetensors", "weights/config.json", "weights/voc.json"];

// Downloads the bundle, reporting bytes as they arrive.
async function fetchAll() {
  const responses = await Promise.all(FILES.map((f) => fetch(f)));
  for (const [i, r] of responses.entries()) {
    if (!r.ok) throw new Error(`${FILES[i]}: HTTP ${r.status}`);
  }
  const total = responses.reduce((sum, r) => sum + Number(r.headers.get("Content-Length") || 0), 0);
  let loaded = 0;
  let reported = -1;
  return Promise.all(responses.map(async (response) => {
    const reader = response.body.getReader();
    const chunks = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      // At most one message per percent: each one costs the page a repaint.
      const percent = Math.floor((100 * loaded) / Math.max(total, loaded));
      if (percent !== reported) {
        reported = percent;
        postMessage({ type: "progress", loaded, total: Math.max(total, loaded) });
      }
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const c of chunks) {
      bytes.set(c, offset);
      offset += c.length;
    }
    return bytes;
  }));
}

// Milliseconds since the worker started, at each stage (the benchmark prints them).
const since = () => Math.round(performance.now());
const ready = (async () => {
  const timings = {};
  const [[model, config, voc]] = await Promise.all([
    fetchAll().then((files) => ((timings.downloaded = since()), files)),
    init().then(() => (timings.compiled = since())),
  ]);
  load(model, config, voc);
  timings.loaded = since();
  postMessage({ type: "ready", timings });
})().then(
  () => true,
  (e) => {
    postMessage({ type: "error", fatal: true, message: String(e.message || e) });
    return false;
  },
);

// "ask" is the page's; "bench" is tests/e2e/bench.mjs's (the benchmark, run by hand).
const handlers = {
  ask: (data) => ({ type: "reply", reply: reply(data.text, data.options) }),
  bench: (data) => ({ type: "bench", latency: bench(data.rounds, data.options), soak: data.soak ? soak(data.soak, data.options) : null }),
};

onmessage = async ({ data }) => {
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
