//! The bundled model natively against PyTorch: tests/golden/make_golden.py ran the tutorial's
//! model code on weights/ for tests/golden/inputs.txt (tests/golden/replies.json), and the
//! library must give the same replies. tests/web.rs checks the wasm module against the same file.
//! The bundle is int8: PyTorch computes its products in integers as Rust does (bench/int8.py).
#![cfg(feature = "native")]

use std::path::Path;

use burnchat::{Bundle, Chatbot};

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
    // With the bundled backward model, for the page's default (MMI).
    let backward =
        Bundle::load(&root.join("weights/backward"), &burnchat::backend::device()).unwrap();
    let bot = Chatbot::load(&root.join("weights"))
        .unwrap()
        .with_backward(backward)
        .unwrap();
    let text = std::fs::read_to_string(root.join("tests/golden/searches.json")).unwrap();
    let searches = check::golden_searches(&text);
    assert_eq!(searches.len(), 5);
    assert!(searches.iter().any(|s| s.options.mmi > Some(0.0)));
    for search in &searches {
        for want in &search.replies {
            let got = bot.reply_with(&want.input, &search.options).unwrap();
            check::assert_search_matches(&got, want, &search.options);
        }
    }
}
