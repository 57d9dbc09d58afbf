//! The comparison shared by the native (tests/golden.rs) and browser (tests/web.rs) checks
//! against tests/golden/replies.json, which PyTorch wrote (tests/golden/make_golden.py).

use burnchat::Reply;

/// Score tolerance against PyTorch: up to 10 steps of a 4,874-word softmax computed in another
/// order; measured differences reach 3.2e-5 (flex, native and wasm).
pub const SCORE_TOLERANCE: f32 = 1e-4;

/// The golden file, one reply a line.
pub fn golden(text: &str) -> Vec<Reply> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Same input, tokens, words and unknown words; scores within [`SCORE_TOLERANCE`].
pub fn assert_matches(got: &Reply, want: &Reply) {
    assert_eq!(got.input, want.input);
    assert_eq!(got.tokens, want.tokens, "{:?}", want.input);
    assert_eq!(got.reply, want.reply, "{:?}", want.input);
    assert_eq!(got.unknown, want.unknown, "{:?}", want.input);
    assert_eq!(got.scores.len(), want.scores.len(), "{:?}", want.input);
    for (g, w) in got.scores.iter().zip(&want.scores) {
        assert!(
            (g - w).abs() <= SCORE_TOLERANCE,
            "{:?}: {g} vs {w}",
            want.input
        );
    }
}
