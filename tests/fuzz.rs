//! Property tests on stable Rust (proptest): hostile bundles and messages end in a typed
//! error or a reply, never in a panic, an abort, or an allocation far beyond the input's size.
//!
//! Every case starts from a small valid bundle (the PyTorch fixture `general_3x2_h32`:
//! general attention, 3 + 2 layers, hidden 32) and damages one part: the weights' bytes, the
//! safetensors header's fields, `config.json`'s values, `voc.json`'s entries, or the message.
//! A bundle that still loads must answer. `BURNCHAT_FUZZ_CASES` sets the cases per property
//! (500 by default, CI's run; `make fuzz` runs 10,000); the generator's seed is fixed
//! (`BURNCHAT_FUZZ_SEED`, default 0), so a run is repeatable. proptest shrinks a failure to a
//! small case and records its seed in `tests/fuzz.proptest-regressions`, which is committed
//! and replayed first on every later run.
//!
//! Memory is measured, not guessed: this test binary counts every allocation (a wrapper
//! around the system allocator), and each case's peak above what was live before it must
//! stay under [`allowance`]. The properties take turns (one lock) so that the count is
//! theirs alone.
#![cfg(feature = "native")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use burnchat::bundle::{CONFIG_FILE, MODEL_FILE, VOC_FILE};
use burnchat::import::import_checkpoint;
use burnchat::{Chatbot, SearchOptions, Strategy as Search, WeightDtype};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};
use serde_json::{Value, json};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Damaged bundles that still loaded (and so were talked to).
static LOADED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What a case may allocate above what was live before it: 32 MiB (the backend's buffers,
/// threads and a reply's tensors, with room) plus 16 times the bundle's bytes (an f16 file
/// becomes f32, and the loader holds the file, its tensors and the model at once). A good
/// fixture bundle, about 0.1 MB, peaks at a few MB.
fn allowance(input_bytes: usize) -> usize {
    (32 << 20) + 16 * input_bytes
}

/// The properties take turns, so each case's allocation count is its own.
static TURN: Mutex<()> = Mutex::new(());

struct Files {
    model: Vec<u8>,
    config: Vec<u8>,
    voc: Vec<u8>,
}

/// The good bundle every case starts from, imported once from the PyTorch fixture.
fn good() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let tar = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/general_3x2_h32.tar");
        let device = burnchat::backend::device();
        let bundle = import_checkpoint(&tar, WeightDtype::F32, &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        bundle.save(dir.path()).unwrap();
        let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
        Files {
            model: read(MODEL_FILE),
            config: read(CONFIG_FILE),
            voc: read(VOC_FILE),
        }
    })
}

/// Loads the bundle and, if it loads, asks it a few things under each search. Returns an
/// error message for a failed property, `Ok` for a typed error or a reply. A panic is
/// caught by proptest and fails the case too.
fn load_and_talk(model: Vec<u8>, config: &[u8], voc: &[u8]) -> Result<(), TestCaseError> {
    let input = model.len() + config.len() + voc.len();
    let used = allocated_by(|| talk_to(model, config, voc));
    prop_assert!(
        used <= allowance(input),
        "allocated {used} bytes for a {input}-byte bundle"
    );
    Ok(())
}

/// The peak bytes `work` allocated above what was live before it.
fn allocated_by(work: impl FnOnce()) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    work();
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

fn talk_to(model: Vec<u8>, config: &[u8], voc: &[u8]) {
    if let Ok(bot) = Chatbot::from_bytes(model, config, voc) {
        LOADED.fetch_add(1, Ordering::Relaxed);
        for search in [Search::Greedy, Search::Beam, Search::Sample] {
            let options = SearchOptions {
                search: Some(search),
                samples: Some(3),
                anti_lm: Some(0.5),
                ..SearchOptions::default()
            };
            for message in ["hello", "how are you?", "where are you from"] {
                let _ = bot.reply_with(message, &options);
            }
        }
    }
}

fn runner() -> TestRunner {
    let cases = std::env::var("BURNCHAT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seed = std::env::var("BURNCHAT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    TestRunner::new(Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        // Failures are saved beside this file, in tests/fuzz.proptest-regressions.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        source_file: Some(file!()),
        ..Config::default()
    })
}

/// Runs one property with its turn held; returns how many of its bundles still loaded, so a
/// property can show that it reached the model rather than only the loader's refusals.
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) -> usize
where
    S::Value: std::fmt::Debug,
{
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    good();
    let loaded = LOADED.load(Ordering::Relaxed);
    if let Err(e) = runner().run(&strategy, test) {
        panic!("{e}");
    }
    LOADED.load(Ordering::Relaxed) - loaded
}

/// The safetensors header of `model` as JSON, and the bytes after it.
fn split_header(model: &[u8]) -> (serde_json::Map<String, Value>, &[u8]) {
    let n = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&model[8..8 + n]).unwrap();
    (header, &model[8 + n..])
}

fn join_header(header: &serde_json::Map<String, Value>, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// Numbers a hostile file would hold: small, edge and enormous.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..4,
        0u64..100_000,
        Just(u32::MAX as u64),
        Just(u32::MAX as u64 + 1),
        Just(1u64 << 53),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

/// A JSON value of any kind, for a field that expects one kind.
fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        number().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::collection::vec(number(), 0..4).prop_map(|v| json!(v)),
    ]
}

#[test]
fn truncated_and_flipped_weights() {
    let len = good().model.len();
    let loaded = check(
        (
            prop::option::of(0..len),
            prop::collection::vec((0..len, any::<u8>()), 0..8),
        ),
        |(cut, flips)| {
            let mut model = good().model.clone();
            for (at, byte) in flips {
                model[at] ^= byte | 1;
            }
            if let Some(cut) = cut {
                model.truncate(cut);
            }
            load_and_talk(model, &good().config, &good().voc)
        },
    );
    // Most flips land in the tensors' data, which any bytes are.
    assert!(loaded > 0, "no damaged bundle loaded");
}

#[test]
fn rewritten_header_fields() {
    let (header, _) = split_header(&good().model);
    let names: Vec<String> = header.keys().cloned().collect();
    let field = prop_oneof![
        Just("shape"),
        Just("data_offsets"),
        Just("dtype"),
        Just("remove"),
        Just("rename"),
    ];
    let dtype = prop_oneof![
        Just("F32"),
        Just("F16"),
        Just("BF16"),
        Just("F64"),
        Just("I64"),
        Just("U8"),
        Just("BOOL"),
        Just("F8_E4M3"),
        Just("XYZ"),
    ];
    check(
        (
            prop::collection::vec(
                (
                    0..names.len(),
                    field,
                    prop::collection::vec(number(), 0..4),
                    dtype,
                ),
                1..4,
            ),
            any_json(),
        ),
        |(edits, value)| {
            let (mut header, data) = split_header(&good().model);
            for (i, field, numbers, dtype) in edits {
                let name = &names[i];
                match field {
                    "remove" => {
                        header.remove(name);
                    }
                    "rename" => {
                        if let Some(t) = header.remove(name) {
                            header.insert(format!("{name}x"), t);
                        }
                    }
                    field => {
                        // A tensor an earlier edit removed or renamed stays so.
                        let Some(tensor) = header.get_mut(name) else {
                            continue;
                        };
                        tensor[field] = match field {
                            "dtype" => dtype.into(),
                            "data_offsets" if numbers.is_empty() => value.clone(),
                            _ => json!(numbers),
                        };
                    }
                }
            }
            load_and_talk(join_header(&header, data), &good().config, &good().voc)
        },
    );
}

#[test]
fn random_config_values() {
    let fields = prop_oneof![
        Just("num_words"),
        Just("hidden_size"),
        Just("encoder_n_layers"),
        Just("decoder_n_layers"),
        Just("attn_model"),
        Just("max_length"),
        Just("max_input_words"),
        Just("dropout"),
        Just("dtype"),
        Just("search"),
    ];
    let search = (
        prop_oneof![Just("greedy"), Just("beam"), Just("sample"), Just("other")],
        number(),
        number(),
        any::<f32>(),
    )
        .prop_map(|(s, width, samples, f)| {
            json!({"search": s, "beam_width": width, "samples": samples, "min_length": width,
                   "temperature": f, "top_p": f, "anti_lm": f, "length_penalty": f})
        });
    let loaded = check(
        prop::collection::vec((fields, any_json(), search), 1..5),
        |edits| {
            let mut config: Value = serde_json::from_slice(&good().config).unwrap();
            for (field, value, search) in edits {
                config[field] = if field == "search" { search } else { value };
            }
            let config = serde_json::to_vec(&config).unwrap();
            load_and_talk(good().model.clone(), &config, &good().voc)
        },
    );
    // Some edits keep a usable configuration (a field set to its own value, a search).
    assert!(loaded > 0, "no edited configuration loaded");
}

#[test]
fn random_vocabulary_entries() {
    let words: Value = serde_json::from_slice(&good().voc).unwrap();
    let n = words["index2word"].as_array().unwrap().len();
    let loaded = check(
        (
            prop::collection::vec((0..n + 2, "\\PC{0,8}|.{0,3}|"), 0..6),
            prop::option::of(number()),
        ),
        |(edits, num_words)| {
            let mut voc: Value = serde_json::from_slice(&good().voc).unwrap();
            let list = voc["index2word"].as_array_mut().unwrap();
            for (i, word) in edits {
                if i < list.len() {
                    list[i] = word.into();
                } else {
                    list.push(word.into());
                }
            }
            if let Some(n) = num_words {
                voc["num_words"] = n.into();
            }
            let voc = serde_json::to_vec(&voc).unwrap();
            load_and_talk(good().model.clone(), &good().config, &voc)
        },
    );
    // Renamed words keep the count, so the bundle loads with them.
    assert!(loaded > 0, "no edited vocabulary loaded");
}

#[test]
fn random_messages() {
    let bot = Chatbot::from_bytes(good().model.clone(), &good().config, &good().voc).unwrap();
    let message = prop_oneof![
        // Any characters, control characters and combining marks included.
        prop::collection::vec(any::<char>(), 0..200).prop_map(|c| c.into_iter().collect()),
        "(\\PC|\\p{M}|[\\x00-\\x1f]){0,80}",
        // Known words, separators and marks, so that some messages reach the model.
        prop::collection::vec(
            prop_oneof![
                Just("hello "),
                Just("how "),
                Just("are "),
                Just("you"),
                Just("?"),
                Just("\u{301}"),
                Just("\u{0}"),
                Just("  "),
            ],
            0..150
        )
        .prop_map(|w| w.concat()),
        // One very long word.
        (1usize..20_000).prop_map(|n| "a".repeat(n)),
    ];
    check(message, |text: String| {
        let mut answers = Vec::new();
        let used = allocated_by(|| {
            for search in [Search::Greedy, Search::Beam] {
                let options = SearchOptions {
                    search: Some(search),
                    ..SearchOptions::default()
                };
                answers.push(bot.reply_with(&text, &options));
            }
        });
        for answer in answers {
            match answer {
                Ok(reply) => prop_assert!(reply.tokens.len() <= 10),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        prop_assert!(used <= allowance(text.len()), "allocated {used} bytes");
        Ok(())
    });
}
