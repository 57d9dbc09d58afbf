//! Sampling: each word drawn from the decoder's distribution, sharpened or flattened by the
//! temperature and cut to the top-k words or the top-p nucleus (Holtzman et al. 2020).
//! Several replies drawn at once and the best kept by [`super::rerank`] is Meena's
//! sample-and-rank (Adiwardana et al. 2020).

use super::{Decoded, Decoding, Search, argmax, log_sum_exp, repeat_rows, select_rows};
use crate::voc::EOS_TOKEN;

/// `search.samples` replies drawn word by word from `search.seed`, in one batch: the same
/// seed gives the same replies on every platform (the generator is [`SplitMix64`], the draw
/// [`draw`]). At each step the replies still running draw in order, so a single sample
/// draws exactly as it would alone.
///
/// With `prior` (the same model after an empty message), every reply also runs through it
/// and sums its log-likelihood there ([`Decoded::prior`]) for reranking, as in beam search.
pub fn sample(
    decoding: &Decoding,
    prior: Option<&Decoding>,
    search: &Search,
    max_length: usize,
) -> Vec<Decoded> {
    let mut rng = SplitMix64::new(search.seed);
    let words = decoding.num_words();
    let n = search.samples.max(1);
    let (first, start) = decoding.start();
    let mut hidden = repeat_rows(start, n); // [decoder_n_layers, n, hidden]
    let mut prior_hidden = prior.map(|p| repeat_rows(p.initial_hidden(), n));
    let mut last = vec![first[0]; n];
    let mut replies = vec![Decoded::default(); n];
    // The replies still drawing, in order.
    let mut running: Vec<usize> = (0..n).collect();
    for _ in 0..max_length {
        let rows = running.len();
        let step = decoding.step(&last, hidden);
        let prior_step = prior.zip(prior_hidden).map(|(p, h)| p.step(&last, h));
        let seq = step.attention.len() / rows;
        let mut kept = Vec::with_capacity(rows);
        for (r, &i) in running.iter().enumerate() {
            let logits = &step.logits[r * words..(r + 1) * words];
            let reply = &mut replies[i];
            let token = draw(logits, &search.banned(&reply.tokens), search, &mut rng) as u32;
            let log_prob = logits[token as usize] - log_sum_exp(logits);
            reply.push(token, log_prob, &step.attention[r * seq..(r + 1) * seq]);
            if let Some(p) = &prior_step {
                let prior_logits = &p.logits[r * words..(r + 1) * words];
                reply.prior += prior_logits[token as usize] - log_sum_exp(prior_logits);
            }
            if token != EOS_TOKEN {
                kept.push(r);
            }
        }
        if kept.is_empty() {
            break;
        }
        last = kept
            .iter()
            .map(|&r| *replies[running[r]].tokens.last().unwrap_or(&EOS_TOKEN))
            .collect();
        running = kept.iter().map(|&r| running[r]).collect();
        (hidden, prior_hidden) = match kept.len() < rows {
            true => select_rows(step.hidden, prior_step.map(|p| p.hidden), &kept),
            false => (step.hidden, prior_step.map(|p| p.hidden)),
        };
    }
    replies
}

/// Draws one token from `softmax(logits / T)`, banned tokens left out. With top-k or top-p
/// set, the candidates are ranked by logit (lower id first on ties) and cut to the `k`
/// best, then to the shortest prefix whose probability reaches `p`; otherwise they stay in
/// id order. Weights are computed and summed in f64, and `u ∈ [0, 1)` from the generator
/// picks the first candidate whose running sum of weights exceeds `u` times their total.
/// Temperature 0 is greedy.
pub fn draw(logits: &[f32], banned: &[u32], search: &Search, rng: &mut SplitMix64) -> usize {
    if search.temperature == 0.0 {
        return argmax(logits, banned);
    }
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| !banned.contains(&(i as u32)))
        .collect();
    let ranked = search.top_k > 0 || search.top_p < 1.0;
    if ranked {
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    }
    if search.top_k > 0 {
        order.truncate(search.top_k);
    }
    let Some(max) = order.iter().map(|&i| logits[i]).reduce(f32::max) else {
        return argmax(logits, banned);
    };
    let t = search.temperature as f64;
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((logits[i] as f64 - max as f64) / t).exp())
        .collect();
    let mut keep = weights.len();
    if search.top_p < 1.0 {
        let total: f64 = weights.iter().sum();
        let mut mass = 0.0;
        for (j, w) in weights.iter().enumerate() {
            mass += w / total;
            if mass >= search.top_p as f64 {
                keep = j + 1;
                break;
            }
        }
    }
    let kept: f64 = weights[..keep].iter().sum();
    let u = rng.next_f64() * kept;
    let mut sum = 0.0;
    for (j, w) in weights[..keep].iter().enumerate() {
        sum += w;
        if u < sum {
            return order[j];
        }
    }
    order[keep - 1]
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny generator whose output is the same in
/// every language, so a seeded reply can be checked against PyTorch and in the browser.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference sequence for seed 1234567 from the authors' C code (splitmix64.c).
    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        let mut rng = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits = [0.3, 2.0, -1.0, 1.9];
        let mut rng = SplitMix64::new(7);
        for options in [
            Search {
                top_k: 1,
                ..Search::default()
            },
            Search {
                top_p: 1e-6,
                ..Search::default()
            },
            Search {
                temperature: 0.0,
                ..Search::default()
            },
        ] {
            for _ in 0..50 {
                assert_eq!(draw(&logits, &[], &options, &mut rng), 1);
            }
        }
        let no_best = Search {
            top_k: 1,
            ..Search::default()
        };
        assert_eq!(draw(&logits, &[1], &no_best, &mut rng), 3);
    }
}
