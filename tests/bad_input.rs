//! Bad bundles and bad messages end in typed errors that name what is wrong, never in a panic
//! or a silent answer. The bundles are made from a PyTorch fixture checkpoint
//! (tests/fixtures/make_fixtures.py) and then damaged.
#![cfg(feature = "native")]

use std::path::{Path, PathBuf};

use burnchat::bundle::{CONFIG_FILE, MODEL_FILE, VOC_FILE};
use burnchat::import::import_checkpoint;
use burnchat::{Chatbot, Error, WeightDtype};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The three files of a good bundle (general attention, 3+2 layers, hidden 32).
fn good_bundle() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let device = burnchat::backend::device();
    let bundle =
        import_checkpoint(&fixture("general_3x2_h32.tar"), WeightDtype::F32, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    bundle.save(dir.path()).unwrap();
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    (read(MODEL_FILE), read(CONFIG_FILE), read(VOC_FILE))
}

fn load(model: Vec<u8>, config: &[u8], voc: &[u8]) -> Result<Chatbot, Error> {
    Chatbot::from_bytes(model, config, voc)
}

/// Rewrites one tensor's entry in a safetensors header (keeping the header's length), so
/// the file still parses but no longer matches the configuration.
fn edit_header(model: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let n = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&model[8..8 + n]).unwrap();
    assert!(header.contains(from), "{from} not in header");
    let mut out = model[..8].to_vec();
    out.extend_from_slice(header.replacen(from, to, 1).as_bytes());
    out.extend_from_slice(&model[8 + n..]);
    out
}

#[test]
fn a_good_bundle_loads_from_bytes() {
    let (model, config, voc) = good_bundle();
    let bot = load(model, &config, &voc).unwrap();
    assert!(!bot.reply("hello").unwrap().tokens.is_empty());
}

#[test]
fn truncated_or_corrupt_weights_are_errors() {
    let (model, config, voc) = good_bundle();
    for cut in [0, 7, 8, 100, model.len() / 2, model.len() - 1] {
        let err = load(model[..cut].to_vec(), &config, &voc).unwrap_err();
        assert!(
            matches!(err, Error::BadBundle { ref file, .. } if file == MODEL_FILE),
            "cut at {cut}: {err}"
        );
    }
    let mut garbage = model.clone();
    garbage[8..40].fill(b'#');
    assert!(load(garbage, &config, &voc).is_err());
}

#[test]
fn a_missing_tensor_is_named() {
    let (model, config, voc) = good_bundle();
    // Renaming a tensor leaves its real name missing (and adds one the model lacks).
    let model = edit_header(
        &model,
        "\"decoder.attn.attn.bias\"",
        "\"decoder.attn.attn.bXas\"",
    );
    let err = load(model, &config, &voc).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::UnexpectedTensor { .. } | Error::MissingTensor { .. }
        ),
        "{text}"
    );
    assert!(text.contains("decoder.attn.attn.b"), "{text}");
}

#[test]
fn a_misshapen_tensor_is_named_with_both_shapes() {
    let (model, config, voc) = good_bundle();
    // A bundle of hidden 32 whose config says 31 fails on the first tensor it checks.
    let config31 = String::from_utf8(config.clone())
        .unwrap()
        .replace("\"hidden_size\": 32", "\"hidden_size\": 31");
    let err = load(model.clone(), config31.as_bytes(), &voc).unwrap_err();
    match &err {
        Error::BadTensor {
            name,
            expected,
            found,
        } => {
            assert!(!name.is_empty());
            assert_ne!(expected, found);
            let text = err.to_string();
            assert!(
                text.contains(name) && text.contains(&format!("{found:?}")),
                "{text}"
            );
        }
        other => panic!("expected BadTensor, got {other}"),
    }
}

#[test]
fn a_vocabulary_that_disagrees_with_the_config_is_refused() {
    let (model, config, voc) = good_bundle();
    let voc_text = String::from_utf8(voc).unwrap();
    let shorter = voc_text
        .replacen("\"PAD\",", "", 1)
        .replace("\"num_words\":", "\"num_words_was\":");
    let err = load(model.clone(), &config, shorter.as_bytes()).unwrap_err();
    assert!(
        matches!(err, Error::BadBundle { ref file, .. } if file == VOC_FILE),
        "{err}"
    );
    let err = load(model, &config, b"not json").unwrap_err();
    assert!(
        matches!(err, Error::BadBundle { ref file, .. } if file == VOC_FILE),
        "{err}"
    );
}

#[test]
fn a_bad_config_is_refused() {
    let (model, config, voc) = good_bundle();
    let text = String::from_utf8(config).unwrap();
    for (from, to) in [
        ("\"attn_model\": \"general\"", "\"attn_model\": \"concat\""),
        (
            "\"attn_model\": \"general\"",
            "\"attn_model\": \"bilinear\"",
        ),
        ("\"decoder_n_layers\": 2", "\"decoder_n_layers\": 7"),
        ("\"dtype\": \"f32\"", "\"dtype\": \"f16\""),
    ] {
        assert!(text.contains(from), "{from}");
        let err = load(model.clone(), text.replace(from, to).as_bytes(), &voc).unwrap_err();
        assert!(!err.to_string().is_empty(), "{to}");
    }
}

/// Sizes beyond the README's limits are refused when the bundle loads: before this check,
/// `max_length` 10^15 let a reply run on without end and a billion layers hung the loader.
#[test]
fn sizes_beyond_the_limits_are_refused_before_any_work() {
    let (model, config, voc) = good_bundle();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let with = |field: &str, value: u64| {
        let mut c = config.clone();
        c[field] = value.into();
        serde_json::to_vec(&c).unwrap()
    };
    for (field, value, says) in [
        ("max_length", 1_000_000_000_000_000, "max_length"),
        ("max_length", 1001, "max_length"),
        ("max_input_words", 100_000, "max_input_words"),
        ("encoder_n_layers", 1_000_000_000, "encoder_n_layers"),
        ("decoder_n_layers", 1_000_000_000, "decoder_n_layers"),
        ("hidden_size", 4097, "hidden_size"),
        ("num_words", 1_000_001, "num_words"),
        // Within every limit, but far more parameters than the file holds.
        ("hidden_size", 4096, "parameters"),
    ] {
        let err = load(model.clone(), &with(field, value), &voc).unwrap_err();
        assert!(err.to_string().contains(says), "{field} {value}: {err}");
    }
    // At the limit a bundle whose file agrees still loads and answers.
    let bot = load(model, &with("max_length", 1000), &voc).unwrap();
    assert!(bot.reply("hello").is_ok());
}

/// The parameter count that bounds the loader's work is the one PyTorch's file holds: every
/// tensor's elements in the safetensors header of a bundle imported from a PyTorch fixture.
#[test]
fn the_parameter_count_is_the_files() {
    for name in [
        "general_3x2_h32.tar",
        "concat_2x2_h28.tar",
        "dot_1x1_h16.tar",
    ] {
        let device = burnchat::backend::device();
        let bundle = import_checkpoint(&fixture(name), WeightDtype::F32, &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        bundle.save(dir.path()).unwrap();
        let model = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
        let n = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&model[8..8 + n]).unwrap();
        let elements: u64 = header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(_, t)| {
                t["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .product::<u64>()
            })
            .sum();
        assert_eq!(
            bundle.config.parameters(),
            Some(elements as usize),
            "{name}"
        );
        assert_eq!(model.len() - 8 - n, elements as usize * 4, "{name}");
    }
}

#[test]
fn bad_messages_get_typed_errors_and_the_bot_keeps_answering() {
    let (model, config, voc) = good_bundle();
    let bot = load(model, &config, &voc).unwrap();
    for blank in ["", "   ", "\t\n", "12345 %%% ---", "😀😀", "\0\u{7}"] {
        assert!(
            matches!(bot.reply(blank), Err(Error::EmptyInput)),
            "{blank:?}"
        );
    }
    match bot.reply("zorblax quux") {
        Err(Error::NoKnownWords(words)) => assert_eq!(words, ["zorblax", "quux"]),
        other => panic!("{other:?}"),
    }
    let long = "hello ".repeat(101);
    assert!(matches!(
        bot.reply(&long),
        Err(Error::TooLong {
            words: 101,
            limit: 100
        })
    ));
    assert!(bot.reply(&"hello ".repeat(100)).is_ok());
    // 10,000 characters in one word, HTML, right-to-left text: an answer or an error.
    let _ = bot.reply(&"a".repeat(10_000));
    let html = bot.reply("<script>alert('hello')</script>").unwrap();
    assert!(html.unknown.contains(&"script".to_string()));
    let _ = bot.reply("مرحبا hello");
    assert!(!bot.reply("hello").unwrap().tokens.is_empty());
}
