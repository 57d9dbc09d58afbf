//! From conversations to training pairs and a vocabulary, as the tutorial prepares its data.

use std::collections::HashMap;

use crate::text::normalize_string;
use crate::voc::Voc;

/// A message and its reply, both normalised.
pub type Pair = (String, String);

/// Training and validation pairs with the vocabulary they are written in.
#[derive(Debug)]
pub struct Dataset {
    pub voc: Voc,
    /// The training pairs of every corpus, one corpus after the other.
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    /// Pairs dropped because they used a word seen fewer than `min_count` times.
    pub trimmed: usize,
    /// Per corpus, in order: how many of `train` are its pairs, and its sampling weight.
    pub sources: Vec<(usize, f64)>,
}

impl Dataset {
    /// The same pairs the other way round, reply first, in the same vocabulary: the data of
    /// a backward model p(message | reply), which reranks the forward model's candidates by
    /// how well they predict the message (Li et al. 2016, MMI-bidi). The vocabulary is built
    /// before the swap, so the two models share it word for word.
    pub fn reversed(self) -> Dataset {
        let swap = |pairs: Vec<Pair>| pairs.into_iter().map(|(a, b)| (b, a)).collect();
        Dataset {
            train: swap(self.train),
            valid: swap(self.valid),
            ..self
        }
    }
}

/// Which conversations are held out: every one whose seeded hash falls in the validation
/// fraction, so the split does not depend on the corpus order or on the other conversations.
pub fn is_validation(conversation: usize, seed: u64, fraction: f64) -> bool {
    // SplitMix64 of (seed, index): a fixed, well-mixed function.
    let mut z = seed ^ (conversation as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z as f64 / u64::MAX as f64) < fraction
}

/// Consecutive utterances of each conversation as pairs, normalised, kept when both sides
/// have fewer than `max_length` words (the tutorial's `filterPairs`): (training, held out),
/// the held-out ones from the conversations [`is_validation`] picks.
pub fn split_pairs(
    conversations: &[Vec<String>],
    max_length: usize,
    valid_fraction: f64,
    split_seed: u64,
) -> (Vec<Pair>, Vec<Pair>) {
    let keep = |s: &str| !s.is_empty() && s.split(' ').count() < max_length;
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for (c, conversation) in conversations.iter().enumerate() {
        let normalized: Vec<String> = conversation.iter().map(|s| normalize_string(s)).collect();
        let split = if is_validation(c, split_seed, valid_fraction) {
            &mut valid
        } else {
            &mut train
        };
        for window in normalized.windows(2) {
            if keep(&window[0]) && keep(&window[1]) {
                split.push((window[0].clone(), window[1].clone()));
            }
        }
    }
    (train, valid)
}

/// [`prepare_weighted`] for one corpus.
pub fn prepare(
    conversations: &[Vec<String>],
    max_length: usize,
    min_count: usize,
    valid_fraction: f64,
    split_seed: u64,
) -> Dataset {
    prepare_weighted(
        &[(conversations, 1.0)],
        max_length,
        min_count,
        valid_fraction,
        split_seed,
    )
}

/// Training and held-out pairs of several corpora, each with a sampling weight, as the
/// tutorial prepares its data: pairs from [`split_pairs`] (each corpus split on its own, so
/// adding a corpus leaves another's split as it was), then words seen fewer than `min_count`
/// times in the training pairs trimmed and every pair using one dropped (`trimRareWords`).
/// A word's count is weighted like its corpus, since it is drawn that many times more often;
/// held-out pairs with words outside the vocabulary are dropped too.
pub fn prepare_weighted(
    corpora: &[(&[Vec<String>], f64)],
    max_length: usize,
    min_count: usize,
    valid_fraction: f64,
    split_seed: u64,
) -> Dataset {
    let mut train: Vec<(Pair, usize)> = Vec::new();
    let mut valid = Vec::new();
    for (k, (conversations, _)) in corpora.iter().enumerate() {
        let (t, v) = split_pairs(conversations, max_length, valid_fraction, split_seed);
        train.extend(t.into_iter().map(|pair| (pair, k)));
        valid.extend(v);
    }
    let mut counts: HashMap<&str, f64> = HashMap::new();
    for ((a, b), k) in &train {
        for w in a.split(' ').chain(b.split(' ')) {
            *counts.entry(w).or_default() += corpora[*k].1;
        }
    }
    // Words in order of first appearance, as the tutorial's Voc adds them.
    let mut words: Vec<String> = ["PAD", "SOS", "EOS"].map(String::from).to_vec();
    let mut seen = std::collections::HashSet::new();
    for ((a, b), _) in &train {
        for w in a.split(' ').chain(b.split(' ')) {
            if counts[w] >= min_count as f64 && seen.insert(w) {
                words.push(w.to_string());
            }
        }
    }
    let voc = Voc::new(words).expect("normalised words are non-empty, unique and space-free");
    let known = |s: &str| s.split(' ').all(|w| voc.index(w).is_some());
    let before = train.len();
    train.retain(|((a, b), _)| known(a) && known(b));
    let trimmed = before - train.len();
    valid.retain(|(a, b)| known(a) && known(b));
    let sources = corpora
        .iter()
        .enumerate()
        .map(|(k, (_, weight))| (train.iter().filter(|(_, c)| *c == k).count(), *weight))
        .collect();
    Dataset {
        voc,
        train: train.into_iter().map(|(pair, _)| pair).collect(),
        valid,
        trimmed,
        sources,
    }
}
