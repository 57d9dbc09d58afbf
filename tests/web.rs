//! The wasm module in a real browser (`wasm-pack test --headless --chrome`): the bundled
//! model (an int8 bundle, with its backward model) loaded from bytes answers
//! tests/golden/replies.json and tests/golden/searches.json as PyTorch does (tests/golden.rs
//! checks the native side against the same files), and bad input and hostile bundles give an
//! answer or an `Error`, never a panic, after which the module keeps answering.
#![cfg(target_arch = "wasm32")]

use burnchat::Reply;
use burnchat::wasm::types::{SearchOptionsArg, TYPES};
use burnchat::wasm::{WasmChatbot as Chatbot, load, reply};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../weights/model.safetensors");
const CONFIG: &[u8] = include_bytes!("../weights/config.json");
const VOC: &[u8] = include_bytes!("../weights/voc.json");
const BACKWARD_MODEL: &[u8] = include_bytes!("../weights/backward/model.safetensors");
const BACKWARD_CONFIG: &[u8] = include_bytes!("../weights/backward/config.json");
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
        let got = answer(reply(&want.input, None).unwrap());
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
        match bot.reply(input, None) {
            Ok(value) => {
                let got = answer(value);
                assert!(!got.said.tokens.is_empty(), "{input:?}");
            }
            Err(error) => assert!(!error_message(error.into()).is_empty(), "{input:?}"),
        }
        assert!(
            !answer(bot.reply("hello", None).unwrap())
                .said
                .tokens
                .is_empty()
        );
    }
    let empty = error_message(bot.reply("", None).unwrap_err().into());
    assert!(empty.contains("no words"), "{empty}");
}

#[wasm_bindgen_test]
fn a_bad_bundle_is_an_error() {
    let truncated = Chatbot::new(MODEL[..MODEL.len() / 2].to_vec(), CONFIG, VOC);
    assert!(truncated.is_err());
    assert!(Chatbot::new(MODEL.to_vec(), b"{}", VOC).is_err());
    assert!(Chatbot::new(MODEL.to_vec(), CONFIG, b"[]").is_err());
}

/// Hostile bundles, as tests/fuzz.rs makes natively, against `new Chatbot(...)`: sizes beyond
/// the README's limits, rewritten safetensors header fields, flipped header bytes and
/// truncations, drawn from a fixed seed. Each ends in an `Error` or a bot that answers; none
/// traps the module, which answers with the good bundle afterwards.
#[wasm_bindgen_test]
fn hostile_bundles_are_refused_or_answer() {
    use burnchat::search::sample::SplitMix64;
    use serde_json::{Value, json};
    let config: Value = serde_json::from_slice(CONFIG).unwrap();
    let n = u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&MODEL[8..8 + n]).unwrap();
    let names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    let with_header = |header: &serde_json::Map<String, Value>| {
        let text = serde_json::to_vec(header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.extend_from_slice(&MODEL[8 + n..]);
        out
    };
    let try_bundle = |model: Vec<u8>, config: &[u8], what: &str| {
        if let Ok(bot) = Chatbot::new(model, config, VOC) {
            if let Err(e) = bot.reply("how are you?", None) {
                assert!(!error_message(e.into()).is_empty(), "{what}");
            }
        }
    };
    let huge = [
        0u64,
        1,
        1001,
        4097,
        1 << 31,
        1 << 32,
        1_000_000_000_000_000,
        u64::MAX,
    ];
    let mut rng = SplitMix64::new(0);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    for field in [
        "num_words",
        "hidden_size",
        "encoder_n_layers",
        "decoder_n_layers",
        "max_length",
        "max_input_words",
    ] {
        for value in huge {
            let mut c = config.clone();
            c[field] = value.into();
            let c = serde_json::to_vec(&c).unwrap();
            let what = format!("{field} {value}");
            let err = Chatbot::new(MODEL.to_vec(), &c, VOC).err();
            // A reply's bounds load anywhere within the limit (1 to 1,000); the model's
            // sizes only at their own value, since the tensors must match.
            let loads = match field {
                "max_length" | "max_input_words" => (1..=1000).contains(&value),
                _ => config[field] == value,
            };
            assert_eq!(err.is_none(), loads, "{what}");
        }
    }
    for case in 0..40 {
        let mut h = header.clone();
        let name = names[pick(names.len())];
        let value = huge[pick(huge.len())];
        let what = format!("case {case}: {name}");
        match case % 4 {
            0 => h[name]["shape"] = json!([value, pick(64)]),
            1 => h[name]["data_offsets"] = json!([pick(1 << 20), value]),
            2 => h[name]["dtype"] = json!(["F32", "BF16", "I64", "U8", "BOOL", "X"][pick(6)]),
            _ => {
                h.remove(name);
            }
        }
        try_bundle(with_header(&h), CONFIG, &what);
        let mut flipped = MODEL.to_vec();
        for _ in 0..4 {
            let at = pick(8 + n);
            flipped[at] ^= pick(256) as u8 | 1;
        }
        try_bundle(flipped, CONFIG, &format!("{what}, flipped header"));
        try_bundle(
            MODEL[..pick(MODEL.len())].to_vec(),
            CONFIG,
            &format!("{what}, cut"),
        );
    }
    let bot = Chatbot::new(MODEL.to_vec(), CONFIG, VOC).unwrap();
    assert!(
        !answer(bot.reply("hello", None).unwrap())
            .said
            .tokens
            .is_empty()
    );
}

/// The options as a page passes them: a plain object with camelCase names.
fn js_options(options: &burnchat::SearchOptions) -> Option<SearchOptionsArg> {
    let object = js_sys::Object::new();
    let value = serde_json::to_value(options).unwrap();
    for (name, field) in value.as_object().unwrap() {
        let field = field
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .unwrap();
        js_sys::Reflect::set(&object, &JsValue::from_str(&camel(name)), &field).unwrap();
    }
    Some(object.unchecked_into())
}

/// `beam_width` as JavaScript spells it: `beamWidth`.
fn camel(name: &str) -> String {
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
    camel
}

/// The field names of `interface NAME { ... }` in the module's TypeScript declarations.
fn ts_fields(name: &str) -> Vec<String> {
    let start = TYPES
        .find(&format!("export interface {name} {{"))
        .unwrap_or_else(|| panic!("interface {name} declared"));
    let body = &TYPES[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    let mut fields: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("/**") && line.contains(':'))
        .map(|line| {
            line[..line.find(':').unwrap()]
                .trim_end_matches('?')
                .to_string()
        })
        .collect();
    fields.sort();
    fields
}

/// The TypeScript declarations name exactly the fields the module reads and returns: every
/// `SearchOptions` field (camelCase) and every key of a reply object.
#[wasm_bindgen_test]
fn typescript_declarations_match_the_rust_structs() {
    let all = burnchat::SearchOptions {
        search: Some(burnchat::search::Strategy::Beam),
        beam_width: Some(1),
        length_penalty: Some(0.0),
        no_repeat_ngram: Some(0),
        min_length: Some(0),
        temperature: Some(1.0),
        top_k: Some(0),
        top_p: Some(1.0),
        seed: Some(0),
        anti_lm: Some(0.0),
        samples: Some(1),
        mmi: Some(0.0),
    };
    let mut options: Vec<String> = serde_json::to_value(&all)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .map(|k| camel(k))
        .collect();
    options.sort();
    assert_eq!(ts_fields("SearchOptions"), options);
    let bot = Chatbot::new(MODEL.to_vec(), CONFIG, VOC).unwrap();
    let reply = bot.reply("hello", None).unwrap();
    let mut keys: Vec<String> = js_sys::Object::keys(reply.unchecked_ref::<js_sys::Object>())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    keys.sort();
    assert_eq!(ts_fields("Reply"), keys);
}

/// Beam search, reranking and seeded sampling give PyTorch's replies in the browser too:
/// the same seed, the same reply as natively (tests/golden.rs) and as PyTorch.
#[wasm_bindgen_test]
fn searches_equal_pytorchs_golden_file() {
    let mut bot = Chatbot::new(MODEL.to_vec(), CONFIG, VOC).unwrap();
    // The page's default reranks with the backward model (MMI); it shares the vocabulary.
    bot.set_backward(BACKWARD_MODEL.to_vec(), BACKWARD_CONFIG, VOC)
        .unwrap();
    let searches = check::golden_searches(SEARCHES);
    assert_eq!(searches.len(), 5);
    assert!(searches.iter().any(|s| s.options.mmi > Some(0.0)));
    for search in &searches {
        for want in &search.replies {
            let got = answer(bot.reply(&want.input, js_options(&search.options)).unwrap());
            check::assert_search_matches(&got.said, want, &search.options);
            assert_eq!(got.said.attention.len(), got.said.tokens.len());
        }
    }
    let bad = js_sys::JSON::parse(r#"{"beamWidth": 0, "search": "beam"}"#).unwrap();
    let error = error_message(
        bot.reply("hello", Some(bad.unchecked_into()))
            .unwrap_err()
            .into(),
    );
    assert!(error.contains("beam width"), "{error}");
    let typo = js_sys::JSON::parse(r#"{"beamwidth": 3}"#).unwrap();
    assert!(bot.reply("hello", Some(typo.unchecked_into())).is_err());
}
