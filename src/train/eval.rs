//! How good a model's replies are, measured on held-out pairs so that every model is judged
//! on the same ones: what `burnchat eval` prints and the trainer records at its validation
//! points.
//!
//! - loss and perplexity: the teacher-forced per-token NLL of the true replies (EOS counted),
//!   each pair scored as the searches see it (no padding, see [`pair_nll`]), and its
//!   exponential;
//! - Recall@1 of 20: how often the true reply scores above 19 replies of other pairs, each
//!   scored by its mean per-token log-likelihood given the message;
//! - per search: distinct-1 and distinct-2 (distinct words and word pairs over all of the
//!   replies' words and pairs, Li et al. 2016) and the share of the single most common reply.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::batch::batch_to_train_data;
use super::pairs::Pair;
use super::word_nll;
use crate::Bundle;
use crate::chatbot::Chatbot;
use crate::config::WeightDtype;
use crate::error::Result;
use crate::search::sample::SplitMix64;
use crate::search::{SearchOptions, Strategy};

/// How much of the held-out data each measure uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// Pairs whose loss is measured (the first ones); 0: all.
    pub loss_pairs: usize,
    /// Pairs ranked for Recall@1 (the first ones), each against `candidates - 1` others.
    pub recall_pairs: usize,
    pub candidates: usize,
    /// Messages answered under each search for distinct-n: the first distinct ones.
    pub reply_pairs: usize,
    /// Seeds which replies are drawn as Recall's distractors.
    pub seed: u64,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            loss_pairs: 0,
            recall_pairs: 500,
            candidates: 20,
            reply_pairs: 500,
            seed: 0,
        }
    }
}

/// What one search's replies look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchMetrics {
    pub search: String,
    pub replies: usize,
    pub distinct_1: f64,
    pub distinct_2: f64,
    /// How many of the replies differ from each other.
    pub distinct_replies: usize,
    pub top_reply: String,
    /// The share of replies equal to `top_reply`.
    pub top_reply_share: f64,
    pub words_per_reply: f64,
}

/// One model on one set of held-out pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Pairs and target tokens (EOS included) the loss is over.
    pub pairs: usize,
    pub tokens: usize,
    pub loss: f64,
    pub perplexity: f64,
    pub recall_pairs: usize,
    /// `None` when there are fewer held-out pairs than candidates.
    pub recall_at_1: Option<f64>,
    pub searches: Vec<SearchMetrics>,
}

/// The searches a bundle offers, as the page and CLI set them: the tutorial's greedy search,
/// the page's default (beam 10, no repeated bigram, at least 2 words, reranked with anti-LM
/// 1.2 and, given a `backward` model, MMI 1.0; `www/settings.js`) and the page's sampling
/// (top-p 0.9), seeded.
pub fn offered_searches(backward: bool) -> Vec<(String, SearchOptions)> {
    let (name, mmi) = if backward {
        ("beam 10, anti-LM 1.2, MMI 1.0 (page)", Some(1.0))
    } else {
        ("beam 10, anti-LM 1.2 (page without MMI)", None)
    };
    vec![
        (
            "greedy".into(),
            SearchOptions {
                search: Some(Strategy::Greedy),
                ..Default::default()
            },
        ),
        (
            name.into(),
            SearchOptions {
                search: Some(Strategy::Beam),
                beam_width: Some(10),
                length_penalty: Some(1.0),
                anti_lm: Some(1.2),
                mmi,
                no_repeat_ngram: Some(2),
                min_length: Some(2),
                ..Default::default()
            },
        ),
        (
            "sample, top-p 0.9".into(),
            SearchOptions {
                search: Some(Strategy::Sample),
                temperature: Some(1.0),
                top_p: Some(0.9),
                seed: Some(1),
                ..Default::default()
            },
        ),
    ]
}

/// A chatbot for measuring `bundle`: its weights held in f32 whatever the bundle stores
/// (an f16 value is exactly an f32 one), so the teacher-forced passes can run on them.
pub fn evaluator(mut bundle: Bundle) -> Chatbot {
    bundle.config.dtype = WeightDtype::F32;
    Chatbot::new(bundle, crate::backend::device())
}

/// The held-out pairs every one of `bots` can read: all their words in its vocabulary.
pub fn readable_by_all(pairs: &[Pair], bots: &[&Chatbot]) -> Vec<Pair> {
    pairs
        .iter()
        .filter(|(a, b)| {
            bots.iter().all(|bot| {
                let voc = &bot.bundle().voc;
                a.split(' ')
                    .chain(b.split(' '))
                    .all(|w| voc.index(w).is_some())
            })
        })
        .cloned()
        .collect()
}

/// Measures `bot` (weights in f32, see [`evaluator`]) on `pairs`, whose words must all be in
/// its vocabulary ([`readable_by_all`]).
pub fn evaluate(
    bot: &Chatbot,
    pairs: &[Pair],
    searches: &[(String, SearchOptions)],
    settings: &EvalSettings,
) -> Result<Metrics> {
    let loss_pairs = match settings.loss_pairs {
        0 => pairs,
        n => &pairs[..n.min(pairs.len())],
    };
    let nll = pair_nll(bot, loss_pairs);
    let tokens: usize = nll.iter().map(|(_, t)| t).sum();
    let loss = nll.iter().map(|(s, _)| s).sum::<f64>() / tokens.max(1) as f64;
    let recall_pairs = &pairs[..settings.recall_pairs.min(pairs.len())];
    let recall_at_1 = recall_at_1(bot, recall_pairs, settings.candidates, settings.seed);
    // Distinct messages: the same message twice would count its reply twice.
    let mut seen = HashSet::new();
    let messages: Vec<&str> = pairs
        .iter()
        .map(|(a, _)| a.as_str())
        .filter(|a| seen.insert(*a))
        .take(settings.reply_pairs)
        .collect();
    let searches = searches
        .iter()
        .map(|(name, options)| {
            let replies = messages
                .iter()
                .map(|m| bot.reply_with(m, options).map(|r| r.reply))
                .collect::<Result<Vec<_>>>()?;
            Ok(diversity(name, &replies))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Metrics {
        pairs: loss_pairs.len(),
        tokens,
        loss,
        perplexity: loss.exp(),
        recall_pairs: recall_pairs.len(),
        recall_at_1,
        searches,
    })
}

/// Pairs per teacher-forced pass, at most: enough rows to keep the products wide.
const EVAL_BATCH: usize = 256;

/// For each pair: the summed `-log p` of its reply's tokens (EOS included) given its message,
/// teacher-forced, and how many tokens that is.
///
/// Each pass holds messages of one length only: the tutorial's attention also weighs the
/// padding of shorter messages in a batch (as its training does), which would make a pair's
/// score depend on its neighbours; unpadded, it is what the model's searches compute.
pub fn pair_nll(bot: &Chatbot, pairs: &[Pair]) -> Vec<(f64, usize)> {
    let Bundle { voc, model, .. } = bot.bundle();
    let device = crate::backend::device();
    let mut out = vec![(0.0, 0); pairs.len()];
    let mut by_length: Vec<(usize, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (message, _))| (message.split(' ').count(), i))
        .collect();
    by_length.sort();
    for group in by_length.chunk_by(|a, b| a.0 == b.0) {
        for chunk in group.chunks(EVAL_BATCH) {
            let refs: Vec<&Pair> = chunk.iter().map(|&(_, i)| &pairs[i]).collect();
            let batch = batch_to_train_data(voc, &refs, &device);
            let width = batch.order.len();
            let nll = word_nll(model, &batch, true)
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 values");
            let words = batch
                .words
                .into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .expect("i64 indices");
            for (&index, &value) in words.iter().zip(&nll) {
                let (_, pair) = chunk[batch.order[index as usize % width]];
                out[pair].0 += value as f64;
                out[pair].1 += 1;
            }
        }
    }
    out
}

/// Recall@1 of `candidates`: for each pair, its reply and `candidates - 1` replies of other
/// pairs (drawn with `seed`; none with the same text as the true one) are scored by their
/// mean per-token log-likelihood given the message; a hit is the true reply strictly first.
pub fn recall_at_1(bot: &Chatbot, pairs: &[Pair], candidates: usize, seed: u64) -> Option<f64> {
    let replies: Vec<&str> = pairs.iter().map(|(_, b)| b.as_str()).collect();
    let distinct: HashSet<&str> = replies.iter().copied().collect();
    if candidates < 2 || distinct.len() < candidates {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut scored = Vec::with_capacity(pairs.len() * candidates);
    for (message, reply) in pairs {
        scored.push((message.clone(), reply.clone()));
        let mut chosen: HashSet<&str> = HashSet::from([reply.as_str()]);
        while chosen.len() < candidates {
            let other = replies[(rng.next_u64() % replies.len() as u64) as usize];
            if chosen.insert(other) {
                scored.push((message.clone(), other.to_string()));
            }
        }
    }
    let nll = pair_nll(bot, &scored);
    let mean_log_likelihood = |(sum, tokens): (f64, usize)| -sum / tokens as f64;
    let hits = nll
        .chunks(candidates)
        .filter(|group| {
            let truth = mean_log_likelihood(group[0]);
            group[1..]
                .iter()
                .all(|&other| mean_log_likelihood(other) < truth)
        })
        .count();
    Some(hits as f64 / pairs.len() as f64)
}

/// distinct-1, distinct-2, distinct replies and the most common reply's share.
pub fn diversity(search: &str, replies: &[String]) -> SearchMetrics {
    let words: Vec<Vec<&str>> = replies
        .iter()
        .map(|r| r.split_whitespace().collect())
        .collect();
    let distinct_n = |n: usize| {
        let grams: Vec<&[&str]> = words.iter().flat_map(|w| w.windows(n)).collect();
        let unique: HashSet<&[&str]> = grams.iter().copied().collect();
        unique.len() as f64 / grams.len().max(1) as f64
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for reply in replies {
        *counts.entry(reply).or_default() += 1;
    }
    // The most common reply; of equally common ones, the first in order of text.
    let (top_reply, top) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(("", 0), |(r, c)| (*r, *c));
    SearchMetrics {
        search: search.to_string(),
        replies: replies.len(),
        distinct_1: distinct_n(1),
        distinct_2: distinct_n(2),
        distinct_replies: counts.len(),
        top_reply: top_reply.to_string(),
        top_reply_share: top as f64 / replies.len().max(1) as f64,
        words_per_reply: words.iter().map(Vec::len).sum::<usize>() as f64
            / replies.len().max(1) as f64,
    }
}
