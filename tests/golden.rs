//! The bundled model natively: `burnchat reply --json` on tests/golden/inputs.txt wrote
//! tests/golden/replies.json (`make golden`), and the browser test (tests/web.rs) checks the
//! wasm module against the same file. This side checks that the bundle in weights/ still
//! gives those replies through the library.
#![cfg(feature = "native")]

use std::path::Path;

use burnchat::Chatbot;

#[path = "golden/record.rs"]
mod record;
use record::Golden;

#[test]
fn the_bundled_model_gives_the_golden_replies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bot = Chatbot::load(&root.join("weights")).unwrap();
    // One JSON object a line, as `burnchat reply --json` prints them.
    let golden: Vec<Golden> = std::fs::read_to_string(root.join("tests/golden/replies.json"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let inputs = std::fs::read_to_string(root.join("tests/golden/inputs.txt")).unwrap();
    assert_eq!(golden.len(), inputs.lines().count());
    for (want, input) in golden.iter().zip(inputs.lines()) {
        assert_eq!(want.input, input);
        let got = bot.reply(input).unwrap();
        assert_eq!(got.tokens, want.tokens, "{input:?}");
        assert_eq!(got.reply, want.reply, "{input:?}");
        assert_eq!(got.unknown, want.unknown, "{input:?}");
        for (g, w) in got.scores.iter().zip(&want.scores) {
            assert!((g - w).abs() <= 1e-5, "{input:?}: {g} vs {w}");
        }
    }
}
