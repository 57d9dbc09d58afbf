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

/// tests/golden/searches.json (tests/fixtures/make_search_fixtures.py): PyTorch's replies
/// with the bundled model under beam search, reranking and seeded sampling.
#[derive(serde::Deserialize)]
pub struct GoldenSearch {
    pub options: burnchat::SearchOptions,
    pub replies: Vec<GoldenSearchReply>,
}

#[derive(serde::Deserialize)]
pub struct GoldenSearchReply {
    pub input: String,
    pub reply: String,
    pub tokens: Vec<u32>,
    pub score: f32,
    pub input_tokens: Vec<u32>,
}

pub fn golden_searches(text: &str) -> Vec<GoldenSearch> {
    serde_json::from_str(text).unwrap()
}

/// Same tokens, words and input ids; the score within [`SCORE_TOLERANCE`].
pub fn assert_search_matches(
    got: &Reply,
    want: &GoldenSearchReply,
    options: &burnchat::SearchOptions,
) {
    let what = format!("{options:?} {:?}", want.input);
    assert_eq!(got.tokens, want.tokens, "{what}");
    assert_eq!(got.reply, want.reply, "{what}");
    assert_eq!(got.input_tokens, want.input_tokens, "{what}");
    assert!(
        (got.score - want.score).abs() <= SCORE_TOLERANCE,
        "{what}: score {} vs {}",
        got.score,
        want.score
    );
}
