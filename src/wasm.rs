//! The wasm boundary: JavaScript in, JavaScript out. Every call goes to the library's
//! [`Chatbot`]; every failure becomes a JS `Error` with the library's message.

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::bench;
use crate::chatbot::{Chatbot, Reply};

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

/// What `reply` returns to JavaScript: the CLI's `--json` object plus the time it took.
#[derive(Serialize)]
struct TimedReply {
    #[serde(flatten)]
    reply: Reply,
    /// Milliseconds spent in `Chatbot::reply`.
    ms: f64,
}

fn timed_reply(bot: &Chatbot, text: &str) -> Result<JsValue, JsError> {
    let started = performance_now();
    let reply = bot.reply(text)?;
    let timed = TimedReply {
        reply,
        ms: performance_now() - started,
    };
    to_js(&timed)
}

/// A plain JS object (not a `Map`, serde_wasm_bindgen's default for a flattened struct).
fn to_js(value: &impl Serialize) -> Result<JsValue, JsError> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// A chatbot loaded from any bundle's three files, for people who bring their own model.
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

    /// `{input, reply, tokens, scores, unknown, ms}`, or throws an `Error`.
    pub fn reply(&self, text: &str) -> Result<JsValue, JsError> {
        timed_reply(&self.bot, text)
    }
}

thread_local! {
    static BUNDLED: RefCell<Option<Chatbot>> = const { RefCell::new(None) };
}

/// Loads the bundled model (the page fetches `weights/` and hands over the bytes, so it can
/// show the download's progress). Replaces any model loaded before.
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

/// Answers from the bundled model: `{input, reply, tokens, scores, unknown, ms}`, or throws
/// an `Error` (no model loaded yet, empty message, no known word, too long).
#[wasm_bindgen]
pub fn reply(text: &str) -> Result<JsValue, JsError> {
    with_bundled(|bot| timed_reply(bot, text))
}

/// `burnchat bench` in the browser, on the bundled model: one warm-up pass over the
/// benchmark's prompts, then `rounds` timed passes with `performance.now()`.
/// Returns `{replies, median_ms, p90_ms, mean_ms, mean_tokens, ms_per_token}`.
#[wasm_bindgen]
pub fn bench(rounds: usize) -> Result<JsValue, JsError> {
    with_bundled(|bot| to_js(&bench::measure(bot, rounds, performance_now)?))
}

/// `replies` replies in a row on the bundled model, sampling the wasm memory's size:
/// `{replies, baseline_bytes, max_bytes, final_bytes}`.
#[wasm_bindgen]
pub fn soak(replies: usize) -> Result<JsValue, JsError> {
    with_bundled(|bot| {
        let soak = bench::soak(bot, replies, || {
            (core::arch::wasm32::memory_size(0) * 65536) as u64
        })?;
        to_js(&soak)
    })
}
