//! The bundled model natively against PyTorch: tests/golden/make_golden.py ran the tutorial's
//! model code on weights/ for tests/golden/inputs.txt (tests/golden/replies.json), and the
//! library must give the same replies. tests/web.rs checks the wasm module against the same file.
#![cfg(feature = "native")]

use std::path::Path;

use burnchat::{Chatbot, SearchOptions, Strategy};

#[path = "golden/check.rs"]
mod check;

#[test]
fn the_bundled_model_gives_pytorchs_replies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bot = Chatbot::load(&root.join("weights")).unwrap();
    let golden =
        check::golden(&std::fs::read_to_string(root.join("tests/golden/replies.json")).unwrap());
    let inputs = std::fs::read_to_string(root.join("tests/golden/inputs.txt")).unwrap();
    assert_eq!(golden.len(), inputs.lines().count());
    for (want, input) in golden.iter().zip(inputs.lines()) {
        assert_eq!(want.input, input);
        check::assert_matches(&bot.reply(input).unwrap(), want);
    }
}

#[test]
fn the_bundled_model_searches_as_pytorch_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bot = Chatbot::load(&root.join("weights")).unwrap();
    let text = std::fs::read_to_string(root.join("tests/golden/searches.json")).unwrap();
    let searches = check::golden_searches(&text);
    assert_eq!(searches.len(), 4);
    for search in &searches {
        for want in &search.replies {
            let got = bot.reply_with(&want.input, &search.options).unwrap();
            check::assert_search_matches(&got, want, &search.options);
        }
    }
}

/// Beam search keeps the best partial replies, so without a length penalty its reply is at
/// least as likely as greedy's: on every golden message here, with no exception.
#[test]
fn beam_search_scores_at_least_greedys_without_a_length_penalty() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bot = Chatbot::load(&root.join("weights")).unwrap();
    let beam = SearchOptions {
        search: Some(Strategy::Beam),
        beam_width: Some(5),
        length_penalty: Some(0.0),
        ..SearchOptions::default()
    };
    let inputs = std::fs::read_to_string(root.join("tests/golden/inputs.txt")).unwrap();
    for input in inputs.lines() {
        let greedy = bot.reply(input).unwrap();
        let beamed = bot.reply_with(input, &beam).unwrap();
        assert!(
            beamed.score >= greedy.score - 1e-5,
            "{input:?}: beam {} ({:?}) below greedy {} ({:?})",
            beamed.score,
            beamed.reply,
            greedy.score,
            greedy.reply
        );
    }
}
