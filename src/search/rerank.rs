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

use burn::prelude::*;

use super::{Decoded, Decoding, Search, log_sum_exp};
use crate::model::Seq2Seq;
use crate::voc::EOS_TOKEN;

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
/// (its words then EOS), teacher-forced. One candidate at a time, so no padding reaches the
/// attention, which the tutorial's model does not mask.
pub fn backward(
    backward: &Seq2Seq,
    input_ids: &[u32],
    mut candidates: Vec<Decoded>,
    device: &Device,
) -> Vec<Decoded> {
    for candidate in &mut candidates {
        let mut reply: Vec<u32> = candidate
            .tokens
            .iter()
            .copied()
            .take_while(|&t| t != EOS_TOKEN)
            .collect();
        reply.push(EOS_TOKEN);
        let decoding = Decoding::new(backward, &reply, device);
        let (mut last, mut hidden) = decoding.start();
        let mut sum = 0.0;
        for &token in input_ids {
            let step = decoding.step(&last, hidden);
            sum += step.logits[token as usize] - log_sum_exp(&step.logits);
            hidden = step.hidden;
            last = vec![token];
        }
        candidate.backward = sum / input_ids.len().max(1) as f32;
    }
    candidates
}
