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
//! (log p(T|S) − λ · log p(T|∅)) / length(T)^A
//! ```

use super::{Decoded, Search};

/// The best of `finished` by [`Decoded::reranked_score`] (`λ = search.anti_lm`, the prior
/// summed by the search in [`Decoded::prior`]); the first on ties. `finished` is never
/// empty.
pub fn best(finished: Vec<Decoded>, search: &Search) -> Decoded {
    let rank = |d: &Decoded| d.reranked_score(search.anti_lm, search.length_penalty);
    let mut best = 0;
    for i in 1..finished.len() {
        if rank(&finished[i]) > rank(&finished[best]) {
            best = i;
        }
    }
    finished.into_iter().nth(best).unwrap_or_default()
}
