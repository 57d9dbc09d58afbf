//! Choosing among beam search's finished replies, or several sampled ones, optionally against
//! the model's own prior.
//!
//! Maximum-likelihood chatbots favour stock replies ("i don t know .") because they are
//! likely after any message. Li et al. 2016 ("A Diversity-Promoting Objective Function for
//! Neural Conversation Models", MMI-antiLM) subtract a language model's log-probability of
//! the reply; here the language model is the same seq2seq model answering an empty message
//! (the encoder sees only EOS), so no second model is downloaded:
//!
//! ```text
//! (log p(T|S) − λ · log p(T|∅)) / length(T)^A  +  μ · log p(S|T) / length(S)
//! ```
//!
//! The last term is Li et al.'s MMI-bidi: a second model, trained on the same pairs the
//! other way round (`burnchat train --reverse`), scores how well each candidate reply
//! predicts the message; a stock reply ("what about you ?") predicts no message in
//! particular. It is computed for the candidates only, teacher-forced, after the search.

use std::collections::BTreeMap;

use burn::prelude::*;

use super::{Decoded, Decoding, Search, log_sum_exp};
use crate::model::Seq2Seq;
use crate::voc::{EOS_TOKEN, SOS_TOKEN};

/// The best of `finished` by [`Decoded::reranked_score`] (`λ = search.anti_lm`, the prior
/// summed by the search in [`Decoded::prior`], `μ = search.mmi` and [`Decoded::backward`]);
/// the first on ties. `finished` is never empty.
pub fn best(finished: Vec<Decoded>, search: &Search) -> Decoded {
    let rank = |d: &Decoded| d.reranked_score(search);
    let mut best = 0;
    for i in 1..finished.len() {
        if rank(&finished[i]) > rank(&finished[best]) {
            best = i;
        }
    }
    finished.into_iter().nth(best).unwrap_or_default()
}

/// `candidates` with [`Decoded::backward`] set: the mean log-likelihood of the message
/// `input_ids` (its words then EOS) under `backward` when the encoder reads the candidate
/// (its words then EOS), teacher-forced. Candidates of the same length are scored together,
/// one batch per length, so no padding reaches the attention, which the tutorial's model
/// does not mask.
pub fn backward(
    backward: &Seq2Seq,
    input_ids: &[u32],
    mut candidates: Vec<Decoded>,
    device: &Device,
) -> Vec<Decoded> {
    let replies: Vec<Vec<u32>> = candidates
        .iter()
        .map(|candidate| {
            let words = candidate.tokens.iter().take_while(|&&t| t != EOS_TOKEN);
            words.copied().chain([EOS_TOKEN]).collect()
        })
        .collect();
    let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, reply) in replies.iter().enumerate() {
        by_length.entry(reply.len()).or_default().push(i);
    }
    for group in by_length.values() {
        let inputs: Vec<&[u32]> = group.iter().map(|&i| &replies[i][..]).collect();
        let decoding = Decoding::batch(backward, &inputs, device);
        let words = decoding.num_words();
        let mut hidden = decoding.initial_hidden();
        let mut last = vec![SOS_TOKEN; group.len()];
        let mut sums = vec![0.0f32; group.len()];
        for &token in input_ids {
            let step = decoding.step(&last, hidden);
            for (sum, logits) in sums.iter_mut().zip(step.logits.chunks_exact(words)) {
                *sum += logits[token as usize] - log_sum_exp(logits);
            }
            hidden = step.hidden;
            last.fill(token);
        }
        for (&i, sum) in group.iter().zip(sums) {
            candidates[i].backward = sum / input_ids.len().max(1) as f32;
        }
    }
    candidates
}
