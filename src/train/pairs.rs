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
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    /// Pairs dropped because they used a word seen fewer than `min_count` times.
    pub trimmed: usize,
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

/// Consecutive utterances of each conversation become pairs, normalised, kept when both sides
/// have fewer than `max_length` words (the tutorial's `filterPairs`). Words seen fewer than
/// `min_count` times in the training pairs are trimmed and every pair using one is dropped
/// (`trimRareWords`); validation pairs with words outside the vocabulary are dropped too.
pub fn prepare(
    conversations: &[Vec<String>],
    max_length: usize,
    min_count: usize,
    valid_fraction: f64,
    seed: u64,
) -> Dataset {
    let keep = |s: &str| !s.is_empty() && s.split(' ').count() < max_length;
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for (c, conversation) in conversations.iter().enumerate() {
        let normalized: Vec<String> = conversation.iter().map(|s| normalize_string(s)).collect();
        let split = if is_validation(c, seed, valid_fraction) {
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
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (a, b) in &train {
        for w in a.split(' ').chain(b.split(' ')) {
            *counts.entry(w).or_default() += 1;
        }
    }
    // Words in order of first appearance, as the tutorial's Voc adds them.
    let mut words: Vec<String> = ["PAD", "SOS", "EOS"].map(String::from).to_vec();
    let mut seen = std::collections::HashSet::new();
    for (a, b) in &train {
        for w in a.split(' ').chain(b.split(' ')) {
            if counts[w] >= min_count && seen.insert(w) {
                words.push(w.to_string());
            }
        }
    }
    let voc = Voc::new(words).expect("normalised words are non-empty, unique and space-free");
    let known = |s: &str| s.split(' ').all(|w| voc.index(w).is_some());
    let before = train.len();
    train.retain(|(a, b)| known(a) && known(b));
    let trimmed = before - train.len();
    valid.retain(|(a, b)| known(a) && known(b));
    Dataset {
        voc,
        train,
        valid,
        trimmed,
    }
}
