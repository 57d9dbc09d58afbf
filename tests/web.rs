//! The wasm module in a real browser (`wasm-pack test --headless --chrome`): the bundled
//! model loaded from bytes answers tests/golden/replies.json as PyTorch does (tests/golden.rs
//! checks the native side against the same file), and bad input gives an
//! answer or an `Error`, never a panic, after which the module keeps answering.
#![cfg(target_arch = "wasm32")]

use burnchat::Reply;
use burnchat::wasm::{WasmChatbot as Chatbot, load, reply};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../weights/model.safetensors");
const CONFIG: &[u8] = include_bytes!("../weights/config.json");
const VOC: &[u8] = include_bytes!("../weights/voc.json");
const GOLDEN: &str = include_str!("golden/replies.json");

#[path = "golden/check.rs"]
mod check;

/// What `reply()` returns: the CLI's `--json` object plus the milliseconds it took.
#[derive(Deserialize)]
struct Answer {
    #[serde(flatten)]
    said: Reply,
    ms: f64,
}

fn answer(value: JsValue) -> Answer {
    serde_wasm_bindgen::from_value(value)
        .expect("reply() returns {input, reply, tokens, scores, unknown, ms}")
}

fn error_message(error: JsValue) -> String {
    js_sys_message(&error).expect("a JS Error with a message")
}

fn js_sys_message(error: &JsValue) -> Option<String> {
    let message = js_sys::Reflect::get(error, &JsValue::from_str("message")).ok()?;
    message.as_string()
}

#[wasm_bindgen_test]
fn replies_equal_pytorchs_golden_file() {
    load(MODEL.to_vec(), CONFIG, VOC).unwrap();
    let golden = check::golden(GOLDEN);
    assert!(golden.len() >= 10);
    for want in golden {
        let got = answer(reply(&want.input).unwrap());
        check::assert_matches(&got.said, &want);
        assert!(got.ms >= 0.0);
    }
}

#[wasm_bindgen_test]
fn bad_input_gives_an_answer_or_an_error_and_the_module_keeps_answering() {
    let bot = Chatbot::new(MODEL.to_vec(), CONFIG, VOC).unwrap();
    let long = "a".repeat(10_000);
    let many = "hello ".repeat(500);
    let inputs = [
        "",
        "   ",
        "\t\n",
        &long,
        &many,
        "😀🙃🔥",
        "<script>alert('hi')</script> hello",
        "hello\0world\u{7}\u{1b}[31m",
        "مرحبا كيف حالك",
        "שלום hello",
        "\u{202e}olleh",
    ];
    for input in inputs {
        match bot.reply(input) {
            Ok(value) => {
                let got = answer(value);
                assert!(!got.said.tokens.is_empty(), "{input:?}");
            }
            Err(error) => assert!(!error_message(error.into()).is_empty(), "{input:?}"),
        }
        assert!(!answer(bot.reply("hello").unwrap()).said.tokens.is_empty());
    }
    let empty = error_message(bot.reply("").unwrap_err().into());
    assert!(empty.contains("no words"), "{empty}");
}

#[wasm_bindgen_test]
fn a_bad_bundle_is_an_error() {
    let truncated = Chatbot::new(MODEL[..MODEL.len() / 2].to_vec(), CONFIG, VOC);
    assert!(truncated.is_err());
    assert!(Chatbot::new(MODEL.to_vec(), b"{}", VOC).is_err());
    assert!(Chatbot::new(MODEL.to_vec(), CONFIG, b"[]").is_err());
}
