//! The decoding flags shared by `reply`, `chat` and `bench`: each one a field of
//! [`SearchOptions`]; flags left out take the bundle's default search.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burnchat::{Bundle, Chatbot, SearchOptions, Strategy};
use clap::{Args, ValueEnum};

#[derive(Args, Debug, Clone, Default)]
pub struct SearchArgs {
    /// How to choose the reply's words (default: the bundle's, else greedy).
    #[arg(long, value_enum)]
    search: Option<SearchKind>,
    /// Beam search: hypotheses kept at each step (default 5).
    #[arg(long)]
    beam_width: Option<usize>,
    /// Beam search: A in score / length^A, length in tokens with EOS (default 1).
    #[arg(long, allow_hyphen_values = true)]
    length_penalty: Option<f32>,
    /// No n-gram of N tokens appears twice in a reply (0: off, the default).
    #[arg(long)]
    no_repeat_ngram: Option<usize>,
    /// The reply has at least N words before it may end (default 0).
    #[arg(long)]
    min_length: Option<usize>,
    /// Sampling: logits are divided by T; 0 is greedy (default 1).
    #[arg(long)]
    temperature: Option<f32>,
    /// Sampling: draw from the K most likely words only (0: all, the default).
    #[arg(long)]
    top_k: Option<usize>,
    /// Sampling: draw from the most likely words whose probabilities add up to P (default 1).
    #[arg(long)]
    top_p: Option<f32>,
    /// Sampling: the random seed; the same seed gives the same reply (default: a new one
    /// for each message in `chat`, 0 elsewhere).
    #[arg(long)]
    seed: Option<u64>,
    /// Beam search and sampling: rerank the finished replies by log p(T|S) − λ·log p(T|empty
    /// message), preferring specific replies over stock ones (0: off, the default).
    #[arg(long)]
    anti_lm: Option<f32>,
    /// Sampling: draw N replies and keep the best by the reranked score (1, the default:
    /// the one drawn).
    #[arg(long)]
    samples: Option<usize>,
    /// Beam search and sampling: rerank by + μ·log p(message | reply) per message word under
    /// the --backward model (MMI-bidi; 0: off, the default).
    #[arg(long)]
    mmi: Option<f32>,
    /// A backward model's bundle (`burnchat train --reverse`, the same vocabulary), for --mmi.
    #[arg(long, value_name = "DIR")]
    backward: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SearchKind {
    Greedy,
    Beam,
    Sample,
}

impl SearchArgs {
    /// `bot` with the --backward model, if one was given.
    pub fn with_backward(&self, bot: Chatbot) -> Result<Chatbot> {
        let Some(dir) = &self.backward else {
            return Ok(bot);
        };
        let bundle = Bundle::load(dir, &burnchat::backend::device())
            .with_context(|| format!("loading the backward bundle {}", dir.display()))?;
        Ok(bot.with_backward(bundle)?)
    }

    /// Whether a --backward model was given (the page's MMI default can then be measured).
    pub fn has_backward(&self) -> bool {
        self.backward.is_some()
    }

    pub fn options(&self) -> SearchOptions {
        SearchOptions {
            search: self.search.map(|s| match s {
                SearchKind::Greedy => Strategy::Greedy,
                SearchKind::Beam => Strategy::Beam,
                SearchKind::Sample => Strategy::Sample,
            }),
            beam_width: self.beam_width,
            length_penalty: self.length_penalty,
            no_repeat_ngram: self.no_repeat_ngram,
            min_length: self.min_length,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            anti_lm: self.anti_lm,
            samples: self.samples,
            mmi: self.mmi,
        }
    }
}
