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
  return Promise.all(responses.map(async (response) => {
    const reader = response.body.getReader();
    const chunks = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      postMessage({ type: "progress", loaded, total: Math.max(total, loaded) });
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

const ready = (async () => {
  const [[model, config, voc]] = await Promise.all([fetchAll(), init()]);
  load(model, config, voc);
  postMessage({ type: "ready" });
})().catch((e) => {
  postMessage({ type: "error", fatal: true, message: String(e.message || e) });
  throw e;
});

// "ask" is the page's; "bench" is tests/e2e/bench.mjs's (the benchmark, run by hand).
const handlers = {
  ask: (data) => ({ type: "reply", reply: reply(data.text) }),
  bench: (data) => ({ type: "bench", latency: bench(data.rounds), soak: data.soak ? soak(data.soak) : null }),
};

onmessage = async ({ data }) => {
  const handle = handlers[data.type];
  if (!handle) return;
  await ready;
  try {
    postMessage(handle(data));
  } catch (e) {
    postMessage({ type: "error", message: String(e.message || e) });
  }
};
