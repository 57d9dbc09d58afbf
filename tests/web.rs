//! The wasm module in a real browser (`wasm-pack test --headless --chrome`): the bundled
//! model loaded from bytes answers tests/golden/replies.json as PyTorch does (tests/golden.rs
//! checks the native side against the same file), and bad input gives an
//! answer or an `Error`, never a panic, after which the module keeps answering.
#![cfg(target_arch = "wasm32")]

use burnchat::Reply;
use burnchat::wasm::{WasmChatbot as Chatbot, load, reply};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../weights/model.safetensors");
const CONFIG: &[u8] = include_bytes!("../weights/config.json");
const VOC: &[u8] = include_bytes!("../weights/voc.json");
const GOLDEN: &str = include_str!("golden/replies.json");
const SEARCHES: &str = include_str!("golden/searches.json");

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
        let got = answer(reply(&want.input, JsValue::UNDEFINED).unwrap());
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
        match bot.reply(input, JsValue::UNDEFINED) {
            Ok(value) => {
                let got = answer(value);
                assert!(!got.said.tokens.is_empty(), "{input:?}");
            }
            Err(error) => assert!(!error_message(error.into()).is_empty(), "{input:?}"),
        }
        assert!(
            !answer(bot.reply("hello", JsValue::UNDEFINED).unwrap())
                .said
                .tokens
                .is_empty()
        );
    }
    let empty = error_message(bot.reply("", JsValue::UNDEFINED).unwrap_err().into());
    assert!(empty.contains("no words"), "{empty}");
}

#[wasm_bindgen_test]
fn a_bad_bundle_is_an_error() {
    let truncated = Chatbot::new(MODEL[..MODEL.len() / 2].to_vec(), CONFIG, VOC);
    assert!(truncated.is_err());
    assert!(Chatbot::new(MODEL.to_vec(), b"{}", VOC).is_err());
    assert!(Chatbot::new(MODEL.to_vec(), CONFIG, b"[]").is_err());
}

/// The options as a page passes them: a plain object with camelCase names.
fn js_options(options: &burnchat::SearchOptions) -> JsValue {
    let object = js_sys::Object::new();
    let value = serde_json::to_value(options).unwrap();
    for (name, field) in value.as_object().unwrap() {
        let mut camel = String::new();
        let mut upper = false;
        for c in name.chars() {
            match (c, upper) {
                ('_', _) => upper = true,
                (c, true) => {
                    camel.extend(c.to_uppercase());
                    upper = false;
                }
                (c, false) => camel.push(c),
            }
        }
        let field = field
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .unwrap();
        js_sys::Reflect::set(&object, &JsValue::from_str(&camel), &field).unwrap();
    }
    object.into()
}

/// Beam search, reranking and seeded sampling give PyTorch's replies in the browser too:
/// the same seed, the same reply as natively (tests/golden.rs) and as PyTorch.
#[wasm_bindgen_test]
fn searches_equal_pytorchs_golden_file() {
    let bot = Chatbot::new(MODEL.to_vec(), CONFIG, VOC).unwrap();
    let searches = check::golden_searches(SEARCHES);
    assert_eq!(searches.len(), 4);
    for search in &searches {
        for want in &search.replies {
            let got = answer(bot.reply(&want.input, js_options(&search.options)).unwrap());
            check::assert_search_matches(&got.said, want, &search.options);
            assert_eq!(got.said.attention.len(), got.said.tokens.len());
        }
    }
    let bad = js_sys::JSON::parse(r#"{"beamWidth": 0, "search": "beam"}"#).unwrap();
    let error = error_message(bot.reply("hello", bad).unwrap_err().into());
    assert!(error.contains("beam width"), "{error}");
    let typo = js_sys::JSON::parse(r#"{"beamwidth": 3}"#).unwrap();
    assert!(bot.reply("hello", typo).is_err());
}
