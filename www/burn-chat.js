// <burn-chat src="weights/">: the chatbot as a custom element. Its conversation, input bar
// and (with the `settings` attribute) search settings live in its shadow DOM; the model
// lives in a Web Worker it starts from worker.js beside this file, which loads the module
// from pkg/ beside it and the bundle from `src`. A site embeds the bot with one module
// script and one element:
//
//   <script type="module" src="burn-chat.js"></script>
//   <burn-chat src="weights/"></burn-chat>
//
// Attributes: `src` (the bundle's directory, relative to the page; default "weights/"),
// `backward` (a backward model's bundle directory, relative to the page: with it the
// replies are reranked by how well they predict the message, the `mmi` search option),
// `settings` (show the search settings panel), `storage-key` (where the conversation is
// kept in localStorage; default "burnchat.conversation"; "" keeps nothing), `greeting`,
// `autofocus` (focus the input once the model is ready).
// While it works the host carries data-ready="true" and counts worker restarts in
// data-restarts. Events (bubbling, composed): "ready", "reply" (detail: the reply object),
// "failed" (detail: {message}) when the model cannot load or the bot cannot recover.
// Everything obeys a strict CSP: the worker and the style sheet are files beside this one
// (no blob: URLs, no inline script or style).
import { attentionView } from "./attention.js";
import { searchSettings, DEFAULTS, FIELDS } from "./settings.js";

const here = import.meta.url;

// Static markup only; user and bot words always go in with textContent.
const MARKUP = `
<link rel="stylesheet" href="${new URL("burn-chat.css", here)}">
<div class="bar"><button type="button" id="clear" class="link" hidden>Clear conversation</button></div>
<div id="loading" role="status" aria-live="polite">
  <label for="progress" id="progress-label">Loading the model…</label>
  <progress id="progress" max="100" value="0"></progress>
  <span id="progress-text"></span>
</div>
<details id="settings" hidden>
  <summary>How the bot chooses its words</summary>
  <form id="search-form" autocomplete="off">
    <label>Search
      <select name="search">
        <option value="beam">Beam search (recommended)</option>
        <option value="greedy">Greedy (the tutorial's)</option>
        <option value="sample">Sampling (varied)</option>
      </select>
    </label>
    <fieldset data-for="beam">
      <legend>Beam search</legend>
      <label>Beam width <input name="beamWidth" type="number" min="1" max="64" step="1"></label>
      <label>Length penalty <input name="lengthPenalty" type="number" min="0" max="3" step="0.1"></label>
    </fieldset>
    <fieldset data-for="sample">
      <legend>Sampling</legend>
      <label>Temperature <input name="temperature" type="number" min="0" max="3" step="0.1"></label>
      <label>Top-k (0: all) <input name="topK" type="number" min="0" step="1"></label>
      <label>Top-p <input name="topP" type="number" min="0.05" max="1" step="0.05"></label>
      <label title="Draw this many replies and keep the best by the anti-stock-reply score">Replies drawn, best kept
        <input name="samples" type="number" min="1" max="64" step="1"></label>
    </fieldset>
    <fieldset data-for="beam sample">
      <legend>Beam search and sampling</legend>
      <label title="Prefer replies that fit this message over stock replies that fit any">Anti-stock-reply weight
        <input name="antiLm" type="number" min="0" max="2" step="0.1"></label>
      <label title="Prefer replies from which the backward model can tell what you said (needs the element's backward model)">Reply-to-message weight
        <input name="mmi" type="number" min="0" max="3" step="0.1"></label>
      <label>No repeated n-gram of (0: off) <input name="noRepeatNgram" type="number" min="0" max="9" step="1"></label>
      <label>Minimum words <input name="minLength" type="number" min="0" max="9" step="1"></label>
    </fieldset>
    <button type="button" id="search-reset">Reset to the defaults</button>
  </form>
</details>
<ol id="log" aria-live="polite" aria-label="Conversation"></ol>
<form id="form" autocomplete="off">
  <label for="message" class="visually-hidden">Your message</label>
  <input id="message" name="message" type="text" maxlength="2000" placeholder="Say hello…" disabled>
  <button id="send" type="submit" disabled>Send</button>
</form>`;

// The most bubbles kept, newest first kept.
const MAX_KEPT = 200;
// Restarts in a row without an answer before the element gives up (a worker that dies while
// loading would otherwise be restarted for ever).
const MAX_RESTARTS = 3;

function quoted(words) {
  return words.map((w) => `'${w}'`).join(", ");
}

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

// The options of the page's default search, without the settings panel.
function defaultOptions() {
  const options = { search: DEFAULTS.search };
  for (const name of FIELDS[DEFAULTS.search]) options[name] = DEFAULTS[name];
  return options;
}

export class BurnChat extends HTMLElement {
  #el = {};
  #drawn = false;
  #settings = null;
  #worker = null;
  #kept = [];
  #restarts = 0;
  #failuresInARow = 0;
  // A message sent and not yet answered, and whether the last restart lost one.
  #pending = false;
  #lost = false;
  // Whether the visitor has sent something: only then may a new bubble scroll the page.
  #engaged = false;
  // Whether the worker holds a backward model (the `mmi` option needs one).
  #backward = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = MARKUP;
    for (const id of ["log", "form", "message", "send", "loading", "progress", "progress-text", "progress-label", "clear", "settings"]) {
      this.#el[id] = root.getElementById(id);
    }
    this.#el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(this.#el.message.value);
    });
    this.#el.clear.addEventListener("click", () => this.clear());
  }

  connectedCallback() {
    if (this.#worker) return;
    // The first time: the settings panel and the kept conversation. Taken out of the document
    // and put back, the element keeps both and only starts a new worker.
    if (!this.#drawn) {
      this.#drawn = true;
      if (this.hasAttribute("settings")) {
        this.#el.settings.hidden = false;
        this.#settings = searchSettings(this.shadowRoot.getElementById("search-form"));
      }
      this.#kept = this.#load();
      for (const entry of this.#kept) this.#draw(entry);
      this.#el.clear.hidden = this.#kept.length === 0;
    }
    this.#setBusy(true);
    this.#startWorker();
  }

  disconnectedCallback() {
    // Moved within the document, it is connected again in the same task: keep the worker.
    queueMicrotask(() => {
      if (!this.isConnected && this.#worker) {
        this.#worker.terminate();
        this.#worker = null;
        this.#pending = false;
        this.#restarts = 0;
        this.dataset.ready = "false";
      }
    });
  }

  /// Sends `text` as the visitor's message; false if the bot is busy or the text is blank.
  send(text) {
    if (!text.trim() || this.#el.message.disabled) return false;
    this.#engaged = true;
    this.#say("me", text);
    this.#el.message.value = "";
    this.#setBusy(true);
    this.#pending = true;
    const options = this.#settings ? this.#settings.options() : defaultOptions();
    // Without a backward model there is nothing to rerank by.
    if (!this.#backward) delete options.mmi;
    this.#worker.postMessage({ type: "ask", text, options });
    return true;
  }

  /// Empties the conversation, here and in localStorage.
  clear() {
    this.#kept = [];
    if (this.#storageKey) localStorage.removeItem(this.#storageKey);
    this.#el.log.replaceChildren();
    this.#el.clear.hidden = true;
    this.#el.message.focus();
  }

  get #storageKey() {
    return this.getAttribute("storage-key") ?? "burnchat.conversation";
  }

  // The kept conversation: your messages, the bot's replies (with what the attention view
  // needs) and unknown-word notices; never sent anywhere.
  #load() {
    if (!this.#storageKey) return [];
    try {
      const kept = JSON.parse(localStorage.getItem(this.#storageKey) || "[]");
      return Array.isArray(kept) ? kept : [];
    } catch {
      return [];
    }
  }

  // Text only, never HTML: user and bot words go in with textContent.
  #bubble(kind, text, detail, extra) {
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
    const log = this.#el.log;
    log.append(li);
    // The newest bubble in view: inside the log when it scrolls by itself (the element has a
    // height), else in the page, but only once the visitor talks (an embed must not pull the
    // page to itself as it loads).
    if (log.scrollHeight > log.clientHeight + 1) log.scrollTop = log.scrollHeight;
    if (this.#engaged) li.scrollIntoView({ block: "end" });
    return li;
  }

  #draw(entry) {
    const extra = entry.reply ? attentionView(entry.reply) : undefined;
    this.#bubble(entry.kind, entry.text, entry.detail, extra);
  }

  // Draws a bubble of the conversation and keeps it.
  #say(kind, text, detail, reply) {
    const entry = { kind, text, detail, reply };
    this.#draw(entry);
    this.#kept = [...this.#kept, entry].slice(-MAX_KEPT);
    if (this.#storageKey) {
      try {
        localStorage.setItem(this.#storageKey, JSON.stringify(this.#kept));
      } catch (e) {
        console.warn("the conversation could not be kept:", e);
      }
    }
    this.#el.clear.hidden = false;
  }

  #setBusy(busy) {
    this.#el.message.disabled = busy;
    this.#el.send.disabled = busy;
    // Focus moves to the input once the visitor talks, or on load with `autofocus`.
    if (!busy && (this.#engaged || this.hasAttribute("autofocus"))) this.#el.message.focus();
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  // The worker holds the model. If it dies (a trap in the module, out of memory), the element
  // says so, starts another from the same files (the browser's caches have them) and keeps
  // the conversation; the message that was being answered is not sent again, in case it is
  // what killed the worker.
  #startWorker() {
    const worker = new Worker(new URL("worker.js", here), { type: "module" });
    worker.onmessage = ({ data }) => this.#onWorkerMessage(data);
    // An error the worker did not catch: it may be alive, but its module is not to be trusted.
    worker.onerror = (event) => {
      event.preventDefault();
      this.#restart(event.message || "the worker failed");
    };
    const src = new URL(this.getAttribute("src") || "weights/", document.baseURI).href;
    const backward = this.getAttribute("backward");
    worker.postMessage({ type: "load", src, backward: backward ? new URL(backward, document.baseURI).href : undefined });
    this.#worker = worker;
  }

  #restart(reason) {
    this.#worker.terminate();
    this.#failuresInARow += 1;
    if (this.#failuresInARow > MAX_RESTARTS) {
      this.#setBusy(true);
      const message = `The bot stopped working (${reason}) and did not recover. Reload the page to try again.`;
      this.#bubble("notice", message);
      this.#emit("failed", { message });
      return;
    }
    this.#restarts += 1;
    this.#lost = this.#pending;
    this.#pending = false;
    this.dataset.ready = "false";
    this.dataset.restarts = String(this.#restarts);
    this.#setBusy(true);
    this.#bubble("notice", `The bot stopped working (${reason}). Restarting it; your conversation is kept.`);
    this.#startWorker();
  }

  #onWorkerMessage(data) {
    const el = this.#el;
    switch (data.type) {
      case "progress": {
        const percent = data.total ? Math.round((100 * data.loaded) / data.total) : 0;
        el.progress.value = percent;
        el["progress-text"].textContent = `${megabytes(data.loaded)} of ${megabytes(data.total)} MB (${percent}%)`;
        break;
      }
      case "ready":
        console.debug("burnchat worker, ms since it started:", JSON.stringify(data.timings));
        el.loading.hidden = true;
        this.dataset.ready = "true";
        this.#backward = data.backward;
        this.#settings?.offerMmi(data.backward);
        // Greetings and restarts are said, not kept.
        if (this.#restarts) this.#bubble("bot", this.#lost ? "I'm back. Please send that again." : "I'm back.");
        else if (!this.#kept.length) this.#bubble("bot", this.getAttribute("greeting") ?? "Hello! Ask me anything.");
        this.#setBusy(false);
        this.#emit("ready");
        break;
      case "reply": {
        const { reply } = data;
        reply.unknown = [...new Set(reply.unknown)];
        if (reply.unknown.length === 1) {
          this.#say("notice", `I don't know the word ${quoted(reply.unknown)} yet.`);
        } else if (reply.unknown.length > 1) {
          this.#say("notice", `I don't know the words ${quoted(reply.unknown)} yet.`);
        }
        this.#say("bot", reply.text || "…", `${reply.ms.toFixed(0)} ms`, reply);
        this.#failuresInARow = 0;
        this.#pending = false;
        this.#setBusy(false);
        this.#emit("reply", reply);
        break;
      }
      case "crashed":
        this.#restart(data.message);
        break;
      case "error":
        if (data.fatal) {
          el.loading.hidden = false;
          el["progress-label"].textContent = "The model could not load:";
          el["progress-text"].textContent = data.message;
          this.#emit("failed", { message: data.message });
        } else {
          this.#bubble("notice", data.message);
          this.#pending = false;
          this.#setBusy(false);
        }
        break;
    }
  }
}

if (!customElements.get("burn-chat")) customElements.define("burn-chat", BurnChat);
