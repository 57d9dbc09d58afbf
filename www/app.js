// The page: draws the conversation and talks to the worker, which holds the model.
// Messages from the worker: progress, ready, reply, error, crashed.
import { attentionView } from "./attention.js";
import { searchSettings } from "./settings.js";

const log = document.getElementById("log");
const form = document.getElementById("form");
const input = document.getElementById("message");
const send = document.getElementById("send");
const loading = document.getElementById("loading");
const progress = document.getElementById("progress");
const progressText = document.getElementById("progress-text");

const settings = searchSettings(document.getElementById("search-form"));

// Text only, never HTML: user and bot words go in with textContent.
function bubble(kind, text, detail, extra) {
  const li = document.createElement("li");
  li.className = kind;
  const words = document.createElement("span");
  words.textContent = text;
  li.append(words);
  if (detail) {
    const small = document.createElement("span");
    small.className = "time";
    small.textContent = detail;
    li.append(small);
  }
  if (extra) li.append(extra);
  log.append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

// The conversation, kept in this browser's localStorage so that it is there after a reload
// or offline (never sent anywhere): your messages, the bot's replies (with what the
// attention view needs) and unknown-word notices; the newest MAX_KEPT of them.
const KEPT = "burnchat.conversation";
const MAX_KEPT = 200;
const clear = document.getElementById("clear");
let kept = [];
try {
  kept = JSON.parse(localStorage.getItem(KEPT) || "[]");
  if (!Array.isArray(kept)) kept = [];
} catch {
  kept = [];
}

function draw(entry) {
  const extra = entry.reply ? attentionView(entry.reply) : undefined;
  bubble(entry.kind, entry.text, entry.detail, extra);
}

// Draws a bubble of the conversation and keeps it.
function say(kind, text, detail, reply) {
  const entry = { kind, text, detail, reply };
  draw(entry);
  kept = [...kept, entry].slice(-MAX_KEPT);
  try {
    localStorage.setItem(KEPT, JSON.stringify(kept));
  } catch (e) {
    console.warn("the conversation could not be kept:", e);
  }
  clear.hidden = false;
}

for (const entry of kept) draw(entry);
clear.hidden = kept.length === 0;
clear.addEventListener("click", () => {
  kept = [];
  localStorage.removeItem(KEPT);
  log.replaceChildren();
  clear.hidden = true;
  input.focus();
});

function quoted(words) {
  return words.map((w) => `'${w}'`).join(", ");
}

function setBusy(busy) {
  input.disabled = busy;
  send.disabled = busy;
  if (!busy) input.focus();
}

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("no offline cache:", e));
}

// The worker holds the model. If it dies (a trap in the module, out of memory), the page
// says so, starts another from the same files (the browser's and the service worker's
// caches have them) and keeps the conversation; the message that was being answered is
// not sent again, in case it is what killed the worker.
let worker;
let restarts = 0;
// A message sent and not yet answered, and whether the last restart lost one.
let pending = false;
let lost = false;

function startWorker() {
  worker = new Worker("worker.js", { type: "module" });
  worker.onmessage = ({ data }) => onWorkerMessage(data);
  // An error the worker did not catch: it may be alive, but its module is not to be trusted.
  worker.onerror = (event) => {
    event.preventDefault();
    restart(event.message || "the worker failed");
  };
}

// Restarts in a row without an answer before the page gives up (a worker that dies while
// loading would otherwise be restarted for ever).
const MAX_RESTARTS = 3;
let failuresInARow = 0;

function restart(reason) {
  worker.terminate();
  failuresInARow += 1;
  if (failuresInARow > MAX_RESTARTS) {
    setBusy(true);
    bubble("notice", `The bot stopped working (${reason}) and did not recover. Reload the page to try again.`);
    return;
  }
  restarts += 1;
  lost = pending;
  pending = false;
  document.body.dataset.ready = "false";
  document.body.dataset.restarts = String(restarts);
  setBusy(true);
  bubble("notice", `The bot stopped working (${reason}). Restarting it; your conversation is kept.`);
  startWorker();
}

function onWorkerMessage(data) {
  switch (data.type) {
    case "progress": {
      const percent = data.total ? Math.round((100 * data.loaded) / data.total) : 0;
      progress.value = percent;
      progressText.textContent =
        `${megabytes(data.loaded)} of ${megabytes(data.total)} MB (${percent}%)`;
      break;
    }
    case "ready":
      console.debug("burnchat worker, ms since it started:", JSON.stringify(data.timings));
      loading.hidden = true;
      document.body.dataset.ready = "true";
      // Greetings and restarts are said, not kept.
      if (restarts) bubble("bot", lost ? "I'm back. Please send that again." : "I'm back.");
      else if (!kept.length) bubble("bot", "Hello! Ask me anything.");
      setBusy(false);
      break;
    case "reply": {
      const { reply } = data;
      reply.unknown = [...new Set(reply.unknown)];
      if (reply.unknown.length === 1) {
        say("notice", `I don't know the word ${quoted(reply.unknown)} yet.`);
      } else if (reply.unknown.length > 1) {
        say("notice", `I don't know the words ${quoted(reply.unknown)} yet.`);
      }
      say("bot", reply.text || "…", `${reply.ms.toFixed(0)} ms`, reply);
      failuresInARow = 0;
      pending = false;
      setBusy(false);
      break;
    }
    case "crashed":
      restart(data.message);
      break;
    case "error":
      if (data.fatal) {
        loading.hidden = false;
        document.getElementById("progress-label").textContent = "The model could not load:";
        progressText.textContent = data.message;
      } else {
        bubble("notice", data.message);
        pending = false;
        setBusy(false);
      }
      break;
  }
}

startWorker();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text.trim() || input.disabled) return;
  say("me", text);
  input.value = "";
  setBusy(true);
  pending = true;
  worker.postMessage({ type: "ask", text, options: settings.options() });
});
