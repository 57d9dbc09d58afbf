// The model lives here, off the page's thread: the page never freezes while the weights
// download or a reply is computed.
import init, { load, reply } from "./pkg/burnchat.js";

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

onmessage = async ({ data }) => {
  if (data.type !== "ask") return;
  await ready;
  try {
    postMessage({ type: "reply", reply: reply(data.text) });
  } catch (e) {
    postMessage({ type: "error", message: String(e.message || e) });
  }
};
