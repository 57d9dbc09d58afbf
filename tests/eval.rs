//! `burnchat eval`'s measures against outside truths: PyTorch's probabilities of its own
//! greedy replies (tests/golden/replies.json) and hand-counted distinct-n.
#![cfg(feature = "train")]

use std::path::Path;

use burnchat::Bundle;
use burnchat::text::normalize_string;
use burnchat::train::eval::{diversity, evaluator, pair_nll};

#[path = "golden/check.rs"]
mod check;

/// The teacher-forced NLL of a reply is minus the sum of the log-probabilities PyTorch's greedy
/// search gave its tokens, EOS included, when that reply is what the search chose.
#[test]
fn teacher_forced_nll_equals_pytorchs_greedy_scores() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = Bundle::load(&root.join("weights"), &burnchat::backend::device()).unwrap();
    let bot = evaluator(bundle);
    let voc = &bot.bundle().voc;
    let golden =
        check::golden(&std::fs::read_to_string(root.join("tests/golden/replies.json")).unwrap());
    // Replies the search ended itself: their tokens are the reply's words, then EOS.
    let words = |ids: &[u32]| {
        ids.iter()
            .filter_map(|&id| voc.word(id))
            .filter(|&w| w != "EOS")
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ended: Vec<_> = golden
        .iter()
        .filter(|r| r.tokens.last() == Some(&2) && r.tokens.len() > 1)
        .collect();
    assert!(
        ended.len() >= 10,
        "{} golden replies end in EOS",
        ended.len()
    );
    let pairs: Vec<(String, String)> = ended
        .iter()
        .map(|r| {
            let message = normalize_string(&r.input)
                .split(' ')
                .filter(|w| !r.unknown.iter().any(|u| u == w))
                .collect::<Vec<_>>()
                .join(" ");
            (message, words(&r.tokens))
        })
        .collect();
    let got = pair_nll(&bot, &pairs);
    for ((nll, tokens), reply) in got.iter().zip(&ended) {
        let want: f64 = reply.scores.iter().map(|&p| -(p as f64).ln()).sum();
        assert_eq!(*tokens, reply.tokens.len(), "{:?}", reply.input);
        assert!(
            (nll - want).abs() <= 1e-4 * *tokens as f64,
            "{:?}: {nll} here, {want} from PyTorch",
            reply.input
        );
    }
}

#[test]
fn distinct_n_and_the_top_reply_are_counted_as_li_et_al_count_them() {
    let replies = ["i am fine", "i am fine", "yes", "i am here"].map(String::from);
    let m = diversity("greedy", &replies);
    // Words: i am fine i am fine yes i am here: 10, of which i am fine yes here are distinct.
    assert_eq!(m.distinct_1, 5.0 / 10.0);
    // Pairs: (i am) (am fine) twice, (i am) (am here): 6, of which 3 are distinct.
    assert_eq!(m.distinct_2, 3.0 / 6.0);
    assert_eq!(m.distinct_replies, 3);
    assert_eq!(m.top_reply, "i am fine");
    assert_eq!(m.top_reply_share, 0.5);
    assert_eq!(m.words_per_reply, 10.0 / 4.0);
}
