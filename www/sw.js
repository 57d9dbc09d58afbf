// Offline: precache the page, the wasm and the weights under a cache named for this build,
// serve them from the cache first, and drop every other build's cache once this one is
// active. `make dist` writes the build's version in place of __VERSION__.
const VERSION = "__VERSION__";
const CACHE = `burnchat-${VERSION}`;
const FILES = [
  "./",
  "index.html",
  "style.css",
  "app.js",
  "burn-chat.js",
  "burn-chat.css",
  "worker.js",
  "attention.js",
  "settings.js",
  "pkg/burnchat.js",
  "pkg/burnchat_bg.wasm",
  "weights/model.safetensors",
  "weights/config.json",
  "weights/voc.json",
  "weights/backward/model.safetensors",
  "weights/backward/config.json",
  "weights/backward/voc.json",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith(
    caches.open(CACHE)
      .then((cache) => cache.match(event.request, { ignoreSearch: true }))
      .then((hit) => hit || fetch(event.request)),
  );
});
