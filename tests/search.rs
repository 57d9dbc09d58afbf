//! The searches against PyTorch: tests/fixtures/make_search_fixtures.py ran beam search,
//! sampling (SplitMix64, the same draw) and constrained greedy search on the tutorial's model
//! with the fixture checkpoints, then teacher-forced each reply through it for its score and
//! attention. burnchat must choose the same tokens, and report the score within 1e-4 and the
//! attention within 1e-5. The bundled model's beam and sampled replies are checked in
//! tests/golden.rs and, in the browser, in tests/web.rs.
#![cfg(feature = "native")]

use std::path::{Path, PathBuf};

use burnchat::import::import_checkpoint;
use burnchat::{Chatbot, SearchOptions, Strategy, WeightDtype};
use serde::Deserialize;

const SCORE_TOLERANCE: f32 = 1e-4;
const ATTENTION_TOLERANCE: f32 = 1e-5;
const FIXTURES: [&str; 3] = ["dot_2x2_h24", "general_3x2_h32", "concat_2x2_h28"];
const ALL_FIXTURES: [&str; 6] = [
    "dot_1x1_h16",
    "dot_2x2_h24",
    "general_1x1_h20",
    "general_3x2_h32",
    "concat_2x2_h28",
    "concat_3x2_h12",
];

#[derive(Deserialize)]
struct SearchFixture {
    checkpoint: String,
    searches: Vec<SearchCase>,
    first_step: FirstStep,
}

#[derive(Deserialize)]
struct SearchCase {
    options: SearchOptions,
    replies: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    input: String,
    reply: String,
    tokens: Vec<u32>,
    score: f32,
    attention: Vec<Vec<f32>>,
    input_tokens: Vec<u32>,
}

#[derive(Deserialize)]
struct FirstStep {
    input: String,
    probs: Vec<f64>,
}

#[derive(Deserialize)]
struct GreedyFixture {
    checkpoint: String,
    replies: Vec<GreedyReply>,
}

#[derive(Deserialize)]
struct GreedyReply {
    input: String,
    tokens: Vec<u32>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(file)).unwrap()).unwrap()
}

/// `burnchat import` of a fixture checkpoint, written and loaded back.
fn bot(checkpoint: &str) -> (Chatbot, tempfile::TempDir) {
    let device = burnchat::backend::device();
    let bundle =
        import_checkpoint(&fixtures().join(checkpoint), WeightDtype::F32, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    bundle.save(dir.path()).unwrap();
    (Chatbot::load(dir.path()).unwrap(), dir)
}

fn options(search: Strategy) -> SearchOptions {
    SearchOptions {
        search: Some(search),
        ..SearchOptions::default()
    }
}

#[test]
fn searches_choose_pytorchs_tokens_with_its_score_and_attention() {
    for name in FIXTURES {
        let fixture: SearchFixture = read(&format!("{name}.search.json"));
        let (bot, _dir) = bot(&fixture.checkpoint);
        assert_eq!(fixture.searches.len(), 11);
        for case in &fixture.searches {
            for want in &case.replies {
                let what = format!("{name} {:?} {:?}", case.options, want.input);
                let got = bot.reply_with(&want.input, &case.options).unwrap();
                assert_eq!(got.tokens, want.tokens, "{what}: tokens");
                assert_eq!(got.reply, want.reply, "{what}: words");
                assert_eq!(got.input_tokens, want.input_tokens, "{what}: input tokens");
                assert!(
                    (got.score - want.score).abs() <= SCORE_TOLERANCE,
                    "{what}: score {} vs PyTorch {}",
                    got.score,
                    want.score
                );
                let summed: f32 = got.scores.iter().map(|p| p.ln()).sum();
                assert!((summed - got.score).abs() <= SCORE_TOLERANCE, "{what}");
                assert_eq!(got.attention.len(), want.attention.len(), "{what}: rows");
                for (row, want_row) in got.attention.iter().zip(&want.attention) {
                    assert_eq!(row.len(), got.input_tokens.len(), "{what}: columns");
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{what}: a row sums to {sum}");
                    for (a, w) in row.iter().zip(want_row) {
                        assert!(
                            (a - w).abs() <= ATTENTION_TOLERANCE,
                            "{what}: attention {a} vs PyTorch {w}"
                        );
                    }
                }
            }
        }
    }
}

/// Width 1 keeps the single best word at each step: greedy search, token for token.
#[test]
fn beam_width_one_gives_greedys_tokens() {
    let width_one = SearchOptions {
        beam_width: Some(1),
        ..options(Strategy::Beam)
    };
    for name in ALL_FIXTURES {
        let fixture: GreedyFixture = read(&format!("{name}.json"));
        let (bot, _dir) = bot(&fixture.checkpoint);
        for want in &fixture.replies {
            let got = bot.reply_with(&want.input, &width_one).unwrap();
            assert_eq!(got.tokens, want.tokens, "{name} {:?}", want.input);
        }
    }
}

/// Towards temperature 0, sampling concentrates on the most likely word: greedy's reply.
#[test]
fn sampling_at_a_low_temperature_is_greedy() {
    for name in ALL_FIXTURES {
        let fixture: GreedyFixture = read(&format!("{name}.json"));
        let (bot, _dir) = bot(&fixture.checkpoint);
        for (seed, want) in fixture.replies.iter().enumerate() {
            let cold = SearchOptions {
                temperature: Some(1e-3),
                seed: Some(seed as u64),
                ..options(Strategy::Sample)
            };
            let got = bot.reply_with(&want.input, &cold).unwrap();
            assert_eq!(got.tokens, want.tokens, "{name} {:?}", want.input);
        }
    }
}

/// 2,000 seeds draw the first word of the reply; their frequencies must fit PyTorch's
/// softmax of the first step: Pearson's chi-square over the words expected at least 5 times
/// (the rest pooled), below its 99.99% quantile (Wilson–Hilferty).
#[test]
fn sampled_first_words_follow_pytorchs_softmax() {
    const DRAWS: usize = 2000;
    for name in FIXTURES {
        let fixture: SearchFixture = read(&format!("{name}.search.json"));
        let (bot, _dir) = bot(&fixture.checkpoint);
        let probs = &fixture.first_step.probs;
        let mut counts = vec![0usize; probs.len()];
        for seed in 0..DRAWS as u64 {
            let o = SearchOptions {
                seed: Some(seed),
                ..options(Strategy::Sample)
            };
            let reply = bot.reply_with(&fixture.first_step.input, &o).unwrap();
            counts[reply.tokens[0] as usize] += 1;
        }
        let (mut chi2, mut bins) = (0.0, 0usize);
        let (mut rest_observed, mut rest_expected) = (0.0, 0.0);
        for (count, p) in counts.iter().zip(probs) {
            let expected = p * DRAWS as f64;
            if expected >= 5.0 {
                chi2 += (*count as f64 - expected).powi(2) / expected;
                bins += 1;
            } else {
                rest_observed += *count as f64;
                rest_expected += expected;
            }
        }
        if rest_expected > 0.0 {
            chi2 += (rest_observed - rest_expected).powi(2) / rest_expected;
            bins += 1;
        }
        assert!(bins >= 3, "{name}: only {bins} bins");
        let df = (bins - 1) as f64;
        let z = 3.719; // the standard normal's 99.99% quantile
        let limit = df * (1.0 - 2.0 / (9.0 * df) + z * (2.0 / (9.0 * df)).sqrt()).powi(3);
        assert!(
            chi2 < limit,
            "{name}: chi-square {chi2:.1} over {bins} bins, limit {limit:.1}"
        );
    }
}

#[test]
fn unusable_options_are_refused_with_a_reason() {
    let fixture: GreedyFixture = read("dot_1x1_h16.json");
    let (bot, _dir) = bot(&fixture.checkpoint);
    let cases = [
        (
            SearchOptions {
                beam_width: Some(0),
                ..options(Strategy::Beam)
            },
            "beam width",
        ),
        (
            SearchOptions {
                min_length: Some(10),
                ..SearchOptions::default()
            },
            "min length",
        ),
        (
            SearchOptions {
                top_p: Some(0.0),
                ..options(Strategy::Sample)
            },
            "top-p",
        ),
        (
            SearchOptions {
                temperature: Some(-1.0),
                ..options(Strategy::Sample)
            },
            "temperature",
        ),
        (
            SearchOptions {
                anti_lm: Some(f32::NAN),
                ..options(Strategy::Beam)
            },
            "anti-LM",
        ),
        (
            SearchOptions {
                samples: Some(0),
                ..options(Strategy::Sample)
            },
            "samples",
        ),
        (
            SearchOptions {
                samples: Some(65),
                ..options(Strategy::Sample)
            },
            "samples",
        ),
    ];
    for (o, says) in cases {
        let error = bot.reply_with("hello", &o).unwrap_err().to_string();
        assert!(error.contains(says), "{o:?}: {error}");
    }
}

/// `no_repeat_ngram` 1 forbids any word twice, `min_length` forbids an early EOS, in every
/// search.
#[test]
fn constraints_hold_in_every_search() {
    let fixture: GreedyFixture = read("general_3x2_h32.json");
    let (bot, _dir) = bot(&fixture.checkpoint);
    for search in [Strategy::Greedy, Strategy::Beam, Strategy::Sample] {
        let o = SearchOptions {
            no_repeat_ngram: Some(1),
            min_length: Some(4),
            ..options(search)
        };
        for want in &fixture.replies {
            let got = bot.reply_with(&want.input, &o).unwrap();
            let words: Vec<u32> = got.tokens.iter().copied().filter(|&t| t != 2).collect();
            let mut unique = words.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                words.len(),
                "{search:?} {:?}: {:?}",
                want.input,
                got.tokens
            );
            assert!(
                words.len() >= 4,
                "{search:?} {:?}: {:?}",
                want.input,
                got.tokens
            );
        }
    }
}

/// A bundle's `config.json` may name its default search: `reply` then gives PyTorch's beam
/// replies, options still override it field by field, and a bad default is refused at load.
#[test]
fn a_bundles_default_search_applies_and_options_override_it() {
    let name = "dot_2x2_h24";
    let fixture: SearchFixture = read(&format!("{name}.search.json"));
    let greedy: GreedyFixture = read(&format!("{name}.json"));
    let (_, dir) = bot(&fixture.checkpoint);
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["search"] = serde_json::json!({"search": "beam", "beam_width": 5});
    std::fs::write(&config_path, config.to_string()).unwrap();
    let bot = Chatbot::load(dir.path()).unwrap();
    let beam5 = fixture
        .searches
        .iter()
        .find(|c| {
            c.options
                == SearchOptions {
                    beam_width: Some(5),
                    ..options(Strategy::Beam)
                }
        })
        .unwrap();
    for (want, want_greedy) in beam5.replies.iter().zip(&greedy.replies) {
        assert_eq!(
            bot.reply(&want.input).unwrap().tokens,
            want.tokens,
            "{:?}",
            want.input
        );
        let overridden = bot
            .reply_with(&want.input, &options(Strategy::Greedy))
            .unwrap();
        assert_eq!(overridden.tokens, want_greedy.tokens, "{:?}", want.input);
    }

    config["search"] = serde_json::json!({"search": "beam", "beam_width": 0});
    std::fs::write(&config_path, config.to_string()).unwrap();
    let error = Chatbot::load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("config.json") && error.contains("beam width"),
        "{error}"
    );
    config["search"] = serde_json::json!({"serach": "beam"});
    std::fs::write(&config_path, config.to_string()).unwrap();
    assert!(Chatbot::load(dir.path()).is_err());
}

#[derive(Deserialize)]
struct MmiFixture {
    checkpoint: String,
    backward: String,
    searches: Vec<SearchCase>,
}

/// MMI-bidi against PyTorch: each fixture checkpoint's candidates reranked by a second
/// fixture as the backward model p(message | reply), the two sharing the fixture vocabulary.
/// The same tokens and score as PyTorch, and some replies other than without the backward
/// model, so the test fails if its scores are ignored.
#[test]
fn mmi_reranks_with_the_backward_model_as_pytorch_does() {
    let device = burnchat::backend::device();
    for name in FIXTURES {
        let fixture: MmiFixture = read(&format!("{name}.mmi.json"));
        let (plain, _dir) = bot(&fixture.checkpoint);
        let backward = import_checkpoint(
            &fixtures().join(&fixture.backward),
            WeightDtype::F32,
            &device,
        )
        .unwrap();
        let (bot, _dir) = bot(&fixture.checkpoint);
        let bot = bot.with_backward(backward).unwrap();
        let mut changed = 0;
        for case in &fixture.searches {
            let without = SearchOptions {
                mmi: Some(0.0),
                ..case.options.clone()
            };
            for want in &case.replies {
                let what = format!("{name} {:?} {:?}", case.options, want.input);
                let got = bot.reply_with(&want.input, &case.options).unwrap();
                assert_eq!(got.tokens, want.tokens, "{what}: tokens");
                assert!(
                    (got.score - want.score).abs() <= SCORE_TOLERANCE,
                    "{what}: score {} vs PyTorch {}",
                    got.score,
                    want.score
                );
                let plain = plain.reply_with(&want.input, &without).unwrap();
                changed += usize::from(plain.tokens != got.tokens);
            }
        }
        assert!(changed >= 5, "{name}: MMI changed only {changed} replies");
    }
}

/// The `mmi` option needs a backward model, and a backward model needs the same vocabulary.
#[test]
fn mmi_without_a_backward_model_or_with_another_vocabulary_is_refused() {
    let (bot, _dir) = bot("dot_2x2_h24.tar");
    let mmi = SearchOptions {
        mmi: Some(1.0),
        ..options(Strategy::Beam)
    };
    let err = bot.reply_with("hello", &mmi).unwrap_err();
    assert!(err.to_string().contains("backward model"), "{err}");
    let device = burnchat::backend::device();
    let mut other = import_checkpoint(
        &fixtures().join("general_3x2_h32.tar"),
        WeightDtype::F32,
        &device,
    )
    .unwrap();
    let mut words: Vec<String> = (0..other.voc.num_words())
        .filter_map(|i| other.voc.word(i as u32).map(String::from))
        .collect();
    words.swap(5, 6);
    other.voc = burnchat::voc::Voc::new(words).unwrap();
    let err = bot.with_backward(other).unwrap_err();
    assert!(err.to_string().contains("vocabulary"), "{err}");
}
