//! The tutorial's `GreedySearchDecoder`: the most likely word at every step.

use super::{Decoded, Decoding, Search, argmax, log_sum_exp};
use crate::voc::EOS_TOKEN;

/// Reproduces the tutorial's `GreedySearchDecoder.forward` for one sentence, with one
/// deliberate difference: it stops once EOS is chosen (EOS included) instead of always
/// running `max_length` steps; the tokens before that are the same. `min_length` and
/// `no_repeat_ngram` apply (both off by default, which is the tutorial's search).
pub fn greedy(decoding: &Decoding, search: &Search, max_length: usize) -> Decoded {
    let (mut last, mut hidden) = decoding.start();
    let mut decoded = Decoded::default();
    for _ in 0..max_length {
        let step = decoding.step(&last, hidden);
        hidden = step.hidden;
        let token = argmax(&step.logits, &search.banned(&decoded.tokens));
        let log_prob = step.logits[token] - log_sum_exp(&step.logits);
        let token = token as u32;
        decoded.push(token, log_prob, &step.attention);
        if token == EOS_TOKEN {
            break;
        }
        last = vec![token];
    }
    decoded
}
