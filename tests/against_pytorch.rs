//! burnchat against PyTorch: each fixture in tests/fixtures was written by
//! `tests/fixtures/make_fixtures.py` with the tutorial's own model code. The checkpoint goes
//! through the same import as `burnchat import`, is saved as a bundle and loaded back, and must
//! reproduce PyTorch's greedy tokens exactly and its scores and encoder outputs within 1e-5.
#![cfg(feature = "native")]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burnchat::import::import_checkpoint;
use burnchat::text::normalize_string;
use burnchat::{AttnMethod, Bundle, Chatbot, WeightDtype};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-5;
const FIXTURES: [&str; 6] = [
    "dot_1x1_h16",
    "dot_2x2_h24",
    "general_1x1_h20",
    "general_3x2_h32",
    "concat_2x2_h28",
    "concat_3x2_h12",
];

#[derive(Deserialize)]
struct Expected {
    checkpoint: String,
    hidden_size: usize,
    encoder_n_layers: usize,
    decoder_n_layers: usize,
    attn_model: AttnMethod,
    num_words: usize,
    max_length: usize,
    replies: Vec<ExpectedReply>,
    replies_f16: Vec<ExpectedReply>,
    batches: Vec<ExpectedBatch>,
}

#[derive(Deserialize)]
struct ExpectedReply {
    input: String,
    normalized: String,
    unknown: Vec<String>,
    tokens: Vec<u32>,
    scores: Vec<f32>,
}

#[derive(Deserialize)]
struct ExpectedBatch {
    input_seq: Vec<Vec<i64>>,
    lengths: Vec<usize>,
    outputs: Vec<f32>,
    outputs_shape: Vec<usize>,
    hidden: Vec<f32>,
    hidden_shape: Vec<usize>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected(name: &str) -> Expected {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Imports the checkpoint, writes the bundle, loads it back: `burnchat import`, then `reply`.
fn imported_bot(expected: &Expected, dtype: WeightDtype) -> (Chatbot, tempfile::TempDir) {
    let device = burnchat::backend::device();
    let bundle = import_checkpoint(&fixtures().join(&expected.checkpoint), dtype, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    bundle.save(dir.path()).unwrap();
    (Chatbot::load(dir.path()).unwrap(), dir)
}

fn assert_close(what: &str, found: &[f32], expected: &[f32]) {
    assert_eq!(found.len(), expected.len(), "{what}: length");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= TOLERANCE,
            "{what}[{i}]: burnchat {f}, PyTorch {e}"
        );
    }
}

fn check_replies(name: &str, bot: &Chatbot, replies: &[ExpectedReply]) {
    for want in replies {
        assert_eq!(normalize_string(&want.input), want.normalized);
        let got = bot.reply(&want.input).unwrap();
        let what = format!("{name} {:?}", want.input);
        assert_eq!(got.tokens, want.tokens, "{what}: tokens");
        assert_eq!(got.unknown, want.unknown, "{what}: unknown words");
        assert_close(&format!("{what}: scores"), &got.scores, &want.scores);
    }
}

#[test]
fn imported_checkpoints_infer_the_tutorial_configuration() {
    for name in FIXTURES {
        let want = expected(name);
        let (bot, _dir) = imported_bot(&want, WeightDtype::F32);
        let config = &bot.bundle().config;
        assert_eq!(config.hidden_size, want.hidden_size, "{name}");
        assert_eq!(config.encoder_n_layers, want.encoder_n_layers, "{name}");
        assert_eq!(config.decoder_n_layers, want.decoder_n_layers, "{name}");
        assert_eq!(config.attn_model, want.attn_model, "{name}");
        assert_eq!(config.num_words, want.num_words, "{name}");
        assert_eq!(config.max_length, want.max_length, "{name}");
    }
}

#[test]
fn greedy_replies_equal_pytorch() {
    for name in FIXTURES {
        let want = expected(name);
        let (bot, _dir) = imported_bot(&want, WeightDtype::F32);
        check_replies(name, &bot, &want.replies);
    }
}

/// An f16 bundle computes in f32 from f16-rounded weights; PyTorch did the same.
#[test]
fn f16_bundles_equal_pytorch_with_f16_rounded_weights() {
    for name in FIXTURES {
        let want = expected(name);
        let (bot, dir) = imported_bot(&want, WeightDtype::F16);
        check_replies(&format!("{name} (f16)"), &bot, &want.replies_f16);
        // Half the bytes of the f32 checkpoint's model tensors, give or take the header.
        let (bot32, dir32) = imported_bot(&want, WeightDtype::F32);
        drop(bot32);
        let size = |d: &Path| {
            std::fs::metadata(d.join("model.safetensors"))
                .unwrap()
                .len()
        };
        let (f16, f32) = (size(dir.path()), size(dir32.path()));
        assert!(f16 * 2 < f32 + 8192, "{name}: f16 {f16} bytes, f32 {f32}");
    }
}

#[test]
fn padded_batches_encode_as_pack_padded_sequence() {
    let device = burnchat::backend::device();
    for name in FIXTURES {
        let want = expected(name);
        let bundle: Bundle = import_checkpoint(
            &fixtures().join(&want.checkpoint),
            WeightDtype::F32,
            &device,
        )
        .unwrap();
        for (i, batch) in want.batches.iter().enumerate() {
            let seq = batch.input_seq.len();
            let width = batch.lengths.len();
            let ids: Vec<i64> = batch.input_seq.concat();
            let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [seq, width]), &device);
            let (outputs, hidden) =
                bundle
                    .model
                    .encoder
                    .forward(&bundle.model.embedding, input, &batch.lengths);
            assert_eq!(outputs.dims().to_vec(), batch.outputs_shape);
            assert_eq!(hidden.dims().to_vec(), batch.hidden_shape);
            let what = format!("{name} batch {i} (lengths {:?})", batch.lengths);
            let outputs = outputs.into_data().try_to_vec::<f32>().unwrap();
            let hidden = hidden.into_data().try_to_vec::<f32>().unwrap();
            assert_close(&format!("{what}: outputs"), &outputs, &batch.outputs);
            assert_close(&format!("{what}: hidden"), &hidden, &batch.hidden);
        }
    }
}

#[derive(Deserialize)]
struct NormalizeCase {
    input: String,
    normalized: String,
}

#[test]
fn normalization_equals_the_tutorial_function() {
    let text = std::fs::read_to_string(fixtures().join("normalize.json")).unwrap();
    let cases: Vec<NormalizeCase> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        assert_eq!(
            normalize_string(&case.input),
            case.normalized,
            "input {:?}",
            case.input
        );
    }
}
