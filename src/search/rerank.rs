//! Choosing among beam search's finished replies, optionally against the model's own prior.
//!
//! Maximum-likelihood chatbots favour stock replies ("i don t know .") because they are
//! likely after any message. Li et al. 2016 ("A Diversity-Promoting Objective Function for
//! Neural Conversation Models", MMI-antiLM) subtract a language model's log-probability of
//! the reply; here the language model is the same seq2seq model answering an empty message
//! (the encoder sees only EOS), so no second model is downloaded:
//!
//! ```text
//! (log p(T|S) − λ · log p(T|∅)) / length(T)^A
//! ```

use burn::prelude::*;

use super::{Decoded, Decoding, Search, log_sum_exp};
use crate::model::Seq2Seq;
use crate::voc::{EOS_TOKEN, SOS_TOKEN};

/// The best of `finished` by the score above (`λ = search.anti_lm`; with λ = 0, by
/// [`Decoded::normalized_score`] alone); the first on ties. `finished` is never empty.
pub fn best(model: &Seq2Seq, finished: Vec<Decoded>, search: &Search, device: &Device) -> Decoded {
    let priors = if search.anti_lm > 0.0 && finished.len() > 1 {
        prior_log_likelihoods(model, &finished, device)
    } else {
        vec![0.0; finished.len()]
    };
    let rank = |d: &Decoded, prior: f32| {
        let len = d.tokens.len().max(1) as f32;
        (d.score() - search.anti_lm * prior) / len.powf(search.length_penalty)
    };
    let mut best = 0;
    for i in 1..finished.len() {
        if rank(&finished[i], priors[i]) > rank(&finished[best], priors[best]) {
            best = i;
        }
    }
    finished.into_iter().nth(best).unwrap_or_default()
}

/// `log p(T|∅)` of each reply: the replies teacher-forced through the decoder as one batch,
/// after the encoder has read an empty message (EOS alone).
pub fn prior_log_likelihoods(model: &Seq2Seq, replies: &[Decoded], device: &Device) -> Vec<f32> {
    let decoding = Decoding::new(model, &[EOS_TOKEN], device);
    let rows = replies.len();
    let steps = replies.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
    let words = decoding.num_words();
    let mut hidden = decoding.initial_hidden().repeat_dim(1, rows); // [layers, rows, hidden]
    let mut prior = vec![0.0f32; rows];
    for t in 0..steps {
        let last: Vec<u32> = replies
            .iter()
            .map(|r| match t {
                0 => SOS_TOKEN,
                _ => *r.tokens.get(t - 1).unwrap_or(&EOS_TOKEN),
            })
            .collect();
        let step = decoding.step(&last, hidden);
        hidden = step.hidden;
        for (i, reply) in replies.iter().enumerate() {
            if let Some(&token) = reply.tokens.get(t) {
                let logits = &step.logits[i * words..(i + 1) * words];
                prior[i] += logits[token as usize] - log_sum_exp(logits);
            }
        }
    }
    prior
}
