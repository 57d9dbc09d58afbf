//! The wasm boundary: JavaScript in, JavaScript out. Every call goes to the library's
//! [`Chatbot`]; every failure becomes a JS `Error` with the library's message.

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::bench;
use crate::chatbot::{Chatbot, Reply};
use crate::search::SearchOptions;

mod fetch;
pub mod types;

use types::{LoadOptionsArg, SearchOptionsArg, value_of};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, in a window and in a worker alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// What `reply` returns to JavaScript: the CLI's `--json` object, the words behind its token
/// ids (for the page's attention view), and the time it took.
#[derive(Serialize)]
struct TimedReply {
    #[serde(flatten)]
    reply: Reply,
    /// The word of each entry of `tokens` (`EOS` for the end).
    words: Vec<String>,
    /// The word of each entry of `input_tokens`.
    input_words: Vec<String>,
    /// Milliseconds spent in `Chatbot::reply`.
    ms: f64,
}

fn timed_reply(bot: &Chatbot, text: &str, options: JsValue) -> Result<JsValue, JsError> {
    let options = search_options(options)?;
    let started = performance_now();
    let reply = bot.reply_with(text, &options)?;
    let ms = performance_now() - started;
    let voc = &bot.bundle().voc;
    let words = |ids: &[u32]| {
        ids.iter()
            .map(|&t| voc.word(t).unwrap_or("?").to_string())
            .collect()
    };
    let timed = TimedReply {
        words: words(&reply.tokens),
        input_words: words(&reply.input_tokens),
        reply,
        ms,
    };
    to_js(&timed)
}

/// `undefined`, `null` or a plain object of [`SearchOptions`] fields (camelCase or
/// snake_case), each optional. The object goes through a JSON value first: serde_wasm_bindgen
/// reads only a struct's known fields, and a misspelt option must be an error, not a default.
fn search_options(options: JsValue) -> Result<SearchOptions, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(SearchOptions::default());
    }
    let bad = |e: &dyn std::fmt::Display| JsError::new(&format!("search options: {e}"));
    let value: serde_json::Value = serde_wasm_bindgen::from_value(options).map_err(|e| bad(&e))?;
    serde_json::from_value(value).map_err(|e| bad(&e))
}

/// A plain JS object (not a `Map`, serde_wasm_bindgen's default for a flattened struct).
fn to_js(value: &impl Serialize) -> Result<JsValue, JsError> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// A chatbot loaded from any bundle's three files, for people who bring their own model.
/// Its memory (the model's weights) is the module's until `free()` is called; without it,
/// the browser frees it only when it collects the object, if ever.
#[wasm_bindgen(js_name = Chatbot)]
pub struct WasmChatbot {
    bot: Chatbot,
}

#[wasm_bindgen(js_class = Chatbot)]
impl WasmChatbot {
    /// `new Chatbot(modelSafetensors, configJson, vocJson)`, each a `Uint8Array`.
    #[wasm_bindgen(constructor)]
    pub fn new(model: Vec<u8>, config: &[u8], voc: &[u8]) -> Result<WasmChatbot, JsError> {
        Ok(Self {
            bot: Chatbot::from_bytes(model, config, voc)?,
        })
    }

    /// `await Chatbot.load(baseUrl, { onProgress })`: fetches `model.safetensors`,
    /// `config.json` and `voc.json` from `baseUrl` (a directory, relative to the page or
    /// worker, with or without its final `/`) and loads them. `onProgress`, optional, is
    /// called with `{file, url, loaded, total}` once per file when its headers arrive
    /// (`loaded` 0) and after every chunk of its body; `total` is the file's
    /// `Content-Length`, or `null` without one. Rejects with an `Error` naming the URL on an
    /// HTTP or network failure, and with the bundle's own message on a bad bundle.
    ///
    /// `backward`, optional, is a second bundle's directory: the backward model p(message |
    /// reply) that reranks with the `mmi` search option (`burnchat train --reverse`; it
    /// must share the first bundle's vocabulary). Its three files are fetched alongside,
    /// reported under their own URLs.
    #[allow(non_snake_case)] // JavaScript's spelling, in the TypeScript declaration too
    pub async fn load(
        baseUrl: String,
        options: Option<LoadOptionsArg>,
    ) -> Result<WasmChatbot, JsError> {
        let options = value_of(options);
        let field = |name: &str| -> Result<JsValue, JsError> {
            if options.is_undefined() || options.is_null() {
                return Ok(JsValue::UNDEFINED);
            }
            js_sys::Reflect::get(&options, &JsValue::from_str(name))
                .map_err(|_| JsError::new("load options: not an object"))
        };
        let on_progress = match field("onProgress")?.dyn_into::<js_sys::Function>() {
            Ok(callback) => Some(callback),
            Err(v) if v.is_undefined() || v.is_null() => None,
            Err(_) => return Err(JsError::new("load options: onProgress is not a function")),
        };
        let backward = field("backward")?;
        let backward = match backward.as_string() {
            Some(url) => Some(url),
            None if backward.is_undefined() || backward.is_null() => None,
            None => return Err(JsError::new("load options: backward is not a string")),
        };
        let mut urls = vec![baseUrl.as_str()];
        urls.extend(backward.as_deref());
        let mut bundles = fetch::bundle_files(&urls, on_progress.as_ref())
            .await?
            .into_iter();
        let [model, config, voc] = bundles.next().expect("one per URL");
        let mut chatbot = Self::new(model, &config, &voc)?;
        if let Some([model, config, voc]) = bundles.next() {
            chatbot.set_backward(model, &config, &voc)?;
        }
        Ok(chatbot)
    }

    /// `setBackward(modelSafetensors, configJson, vocJson)`: the backward model for the
    /// `mmi` search option from its three files' bytes, as `load`'s `backward` fetches them.
    /// Throws when it is not a bundle or its vocabulary is not this chatbot's.
    #[wasm_bindgen(js_name = setBackward)]
    pub fn set_backward(
        &mut self,
        model: Vec<u8>,
        config: &[u8],
        voc: &[u8],
    ) -> Result<(), JsError> {
        let device = crate::backend::device();
        let bundle = crate::bundle::Bundle::from_bytes(model, config, voc, &device)?;
        self.bot.set_backward(bundle)?;
        Ok(())
    }

    /// `reply(text, options?)`: `{input, reply, text, tokens, scores, score, input_tokens,
    /// attention, unknown, ms}`, or throws an `Error`. `options` as for the module's `reply`.
    #[wasm_bindgen(unchecked_return_type = "Reply")]
    pub fn reply(&self, text: &str, options: Option<SearchOptionsArg>) -> Result<JsValue, JsError> {
        timed_reply(&self.bot, text, value_of(options))
    }

    /// The module's `bench`, on this chatbot.
    #[wasm_bindgen(unchecked_return_type = "BenchResult")]
    pub fn bench(
        &self,
        rounds: usize,
        options: Option<SearchOptionsArg>,
    ) -> Result<JsValue, JsError> {
        bench_of(&self.bot, rounds, value_of(options))
    }

    /// The module's `soak`, on this chatbot.
    #[wasm_bindgen(unchecked_return_type = "SoakResult")]
    pub fn soak(
        &self,
        replies: usize,
        options: Option<SearchOptionsArg>,
    ) -> Result<JsValue, JsError> {
        soak_of(&self.bot, replies, value_of(options))
    }
}

thread_local! {
    static BUNDLED: RefCell<Option<Chatbot>> = const { RefCell::new(None) };
}

/// Loads a model into the module from its three files' bytes, for the module-level `reply`,
/// `bench` and `soak`; replaces any model loaded before. (`Chatbot.load` fetches the files
/// itself and gives a `Chatbot` of its own.)
#[wasm_bindgen]
pub fn load(model: Vec<u8>, config: &[u8], voc: &[u8]) -> Result<(), JsError> {
    let bot = Chatbot::from_bytes(model, config, voc)?;
    BUNDLED.with(|b| *b.borrow_mut() = Some(bot));
    Ok(())
}

fn with_bundled<T>(f: impl FnOnce(&Chatbot) -> Result<T, JsError>) -> Result<T, JsError> {
    BUNDLED.with(|b| match b.borrow().as_ref() {
        Some(bot) => f(bot),
        None => Err(JsError::new("no model loaded: call load() first")),
    })
}

/// `reply(text, options?)` from the bundled model: `{input, reply, text, tokens, scores,
/// score, input_tokens, attention, unknown, ms}`, or throws an `Error` (no model loaded
/// yet, empty message, no known word, too long, bad options). `options` is an optional
/// plain object: `{search: "greedy"|"beam"|"sample", beamWidth, lengthPenalty,
/// noRepeatNgram, minLength, temperature, topK, topP, seed, antiLm}`, every field optional;
/// those left out take the bundle's defaults.
#[wasm_bindgen(unchecked_return_type = "Reply")]
pub fn reply(text: &str, options: Option<SearchOptionsArg>) -> Result<JsValue, JsError> {
    with_bundled(|bot| timed_reply(bot, text, value_of(options)))
}

/// `burnchat bench` in the browser, on the bundled model: one warm-up pass over the
/// benchmark's prompts, then `rounds` timed passes with `performance.now()`.
/// `options` as for `reply`. Returns `{replies, median_ms, p90_ms, mean_ms, mean_tokens,
/// ms_per_token}`.
#[wasm_bindgen(unchecked_return_type = "BenchResult")]
pub fn bench(rounds: usize, options: Option<SearchOptionsArg>) -> Result<JsValue, JsError> {
    with_bundled(|bot| bench_of(bot, rounds, value_of(options)))
}

fn bench_of(bot: &Chatbot, rounds: usize, options: JsValue) -> Result<JsValue, JsError> {
    let options = search_options(options)?;
    to_js(&bench::measure(bot, &options, rounds, performance_now)?)
}

/// `replies` replies in a row on the bundled model (`options` as for `reply`), sampling the
/// wasm memory's size: `{replies, baseline_bytes, max_bytes, final_bytes}`.
#[wasm_bindgen(unchecked_return_type = "SoakResult")]
pub fn soak(replies: usize, options: Option<SearchOptionsArg>) -> Result<JsValue, JsError> {
    with_bundled(|bot| soak_of(bot, replies, value_of(options)))
}

fn soak_of(bot: &Chatbot, replies: usize, options: JsValue) -> Result<JsValue, JsError> {
    let options = search_options(options)?;
    let soak = bench::soak(bot, &options, replies, memory_bytes)?;
    to_js(&soak)
}

/// The wasm memory's size in bytes.
fn memory_bytes() -> u64 {
    (core::arch::wasm32::memory_size(0) * 65536) as u64
}

/// The module's memory in bytes, for a page or test to see that loading and freeing
/// chatbots leaves it flat.
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes_js() -> f64 {
    memory_bytes() as f64
}
