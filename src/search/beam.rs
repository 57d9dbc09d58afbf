//! Beam search: the `beam_width` most likely partial replies at every step, run through the
//! decoder as one batch.

use super::{Decoded, Decoding, Search, log_sum_exp, select_rows};
use crate::voc::EOS_TOKEN;

/// The finished replies of a beam search of width `K`, in the order they finished; which is
/// best is for [`super::rerank`] to decide.
///
/// At each step every live hypothesis proposes its `2K` best next tokens (banned ones
/// left out, [`Search::banned`]); of all proposals, ranked by the sum of log-probabilities
/// (ties: earlier hypothesis, then lower token id), one ending in EOS within the first `K`
/// ranks is finished, and the first `K` not ending in EOS live on. The search stops once `K`
/// replies are finished (Hugging Face's `early_stopping=True`) or after `max_length` steps;
/// if none finished by then, the live hypotheses are returned, unended as greedy's are.
/// With `K = 1` this is greedy search, token for token.
///
/// With `prior` (the same model after an empty message), every hypothesis also runs through
/// it, in the same batch order, and sums its log-likelihood there ([`Decoded::prior`]) for
/// reranking: one more decoder step per step, rather than a second pass over the finished
/// replies.
pub fn beam(
    decoding: &Decoding,
    prior: Option<&Decoding>,
    search: &Search,
    max_length: usize,
) -> Vec<Decoded> {
    let k = search.beam_width;
    let words = decoding.num_words();
    let (mut last, mut hidden) = decoding.start();
    let mut prior_hidden = prior.map(Decoding::initial_hidden);
    let mut live = vec![Decoded::default()];
    let mut finished = Vec::new();
    for _ in 0..max_length {
        let rows = live.len();
        let step = decoding.step(&last, hidden);
        let prior_step = prior.zip(prior_hidden).map(|(p, h)| p.step(&last, h));
        let seq = step.attention.len() / rows;
        // (sum of log-probabilities, hypothesis, token, its log-probability, and after an
        // empty message)
        let mut proposals = Vec::with_capacity(rows * 2 * k);
        for (r, hyp) in live.iter().enumerate() {
            let row = r * words..(r + 1) * words;
            let logits = &step.logits[row.clone()];
            let lse = log_sum_exp(logits);
            let prior_logits = prior_step.as_ref().map(|s| &s.logits[row]);
            let prior_lse = prior_logits.map_or(0.0, log_sum_exp);
            let base = hyp.score();
            for token in top_n(logits, 2 * k, &search.banned(&hyp.tokens)) {
                let lp = logits[token] - lse;
                let prior_lp = prior_logits.map_or(0.0, |p| p[token] - prior_lse);
                proposals.push((base + lp, r, token as u32, lp, prior_lp));
            }
        }
        proposals.sort_by(|a, b| b.0.total_cmp(&a.0)); // stable: ties keep (row, rank) order
        let mut next = Vec::with_capacity(k);
        let mut parents = Vec::with_capacity(k);
        for (rank, &(_, r, token, lp, prior_lp)) in proposals.iter().take(2 * k).enumerate() {
            let attention = &step.attention[r * seq..(r + 1) * seq];
            if token == EOS_TOKEN {
                if rank < k {
                    finished.push(live[r].extended(token, lp, prior_lp, attention));
                }
            } else {
                next.push(live[r].extended(token, lp, prior_lp, attention));
                parents.push(r);
                if next.len() == k {
                    break;
                }
            }
        }
        if finished.len() >= k || next.is_empty() {
            break;
        }
        // [decoder_n_layers, next, hidden]
        (hidden, prior_hidden) = select_rows(step.hidden, prior_step.map(|s| s.hidden), &parents);
        last = next
            .iter()
            .map(|h| *h.tokens.last().unwrap_or(&EOS_TOKEN))
            .collect();
        live = next;
    }
    if finished.is_empty() { live } else { finished }
}

/// The indices of the `n` largest values, largest first (lower index first on ties),
/// skipping `banned`.
pub fn top_n(values: &[f32], n: usize, banned: &[u32]) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(n + 1);
    for (i, &v) in values.iter().enumerate() {
        if top.len() == n && v <= values[top[n - 1]] {
            continue;
        }
        if banned.contains(&(i as u32)) {
            continue;
        }
        let at = top.partition_point(|&j| values[j] >= v);
        top.insert(at, i);
        top.truncate(n);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::top_n;

    #[test]
    fn top_n_ranks_values_and_skips_banned_ones() {
        let values = [0.1, 0.5, 0.3, 0.5, 0.9, -1.0];
        assert_eq!(top_n(&values, 3, &[]), vec![4, 1, 3]);
        assert_eq!(top_n(&values, 3, &[4]), vec![1, 3, 2]);
        assert_eq!(top_n(&values, 10, &[]), vec![4, 1, 3, 2, 0, 5]);
    }
}
