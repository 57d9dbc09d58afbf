//! Decoding: how a reply is chosen from the decoder's step-by-step distributions. One file per
//! strategy: [`greedy`] (the tutorial's `GreedySearchDecoder`), [`beam`] and [`sample`]; beam
//! search's finished replies and several sampled ones are ranked against the model's own
//! prior in [`rerank`].
//!
//! Every strategy runs the decoder through [`Decoding::step`], which hands back each row's
//! logits and attention weights on the host, and applies the same constraints
//! ([`Search::banned`]: `min_length`, `no_repeat_ngram`).

pub mod beam;
pub mod greedy;
pub mod rerank;
pub mod sample;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Seq2Seq;
use crate::voc::{EOS_TOKEN, SOS_TOKEN};

/// The decoding strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The most likely word at every step, as the tutorial does.
    Greedy,
    /// The `beam_width` most likely partial replies at every step.
    Beam,
    /// A word drawn at random at every step (temperature, top-k, top-p), from `seed`.
    Sample,
}

/// How to decode, every field optional: `config.json`'s `search`, the CLI's flags and the
/// wasm `options` object. A field left out takes the bundle's value, then the default
/// ([`Search::default`]). JavaScript may spell the names in camelCase (`beamWidth`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Strategy>,
    #[serde(alias = "beamWidth", skip_serializing_if = "Option::is_none")]
    pub beam_width: Option<usize>,
    #[serde(alias = "lengthPenalty", skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<f32>,
    #[serde(alias = "noRepeatNgram", skip_serializing_if = "Option::is_none")]
    pub no_repeat_ngram: Option<usize>,
    #[serde(alias = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(alias = "topK", skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    #[serde(alias = "topP", skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(alias = "antiLm", skip_serializing_if = "Option::is_none")]
    pub anti_lm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmi: Option<f32>,
}

impl SearchOptions {
    /// These options, with every field left out taken from `fallback`.
    pub fn or(&self, fallback: &SearchOptions) -> SearchOptions {
        SearchOptions {
            search: self.search.or(fallback.search),
            beam_width: self.beam_width.or(fallback.beam_width),
            length_penalty: self.length_penalty.or(fallback.length_penalty),
            no_repeat_ngram: self.no_repeat_ngram.or(fallback.no_repeat_ngram),
            min_length: self.min_length.or(fallback.min_length),
            temperature: self.temperature.or(fallback.temperature),
            top_k: self.top_k.or(fallback.top_k),
            top_p: self.top_p.or(fallback.top_p),
            seed: self.seed.or(fallback.seed),
            anti_lm: self.anti_lm.or(fallback.anti_lm),
            samples: self.samples.or(fallback.samples),
            mmi: self.mmi.or(fallback.mmi),
        }
    }

    /// The settings these options give over the defaults, checked against `max_length`.
    pub fn resolve(&self, max_length: usize) -> Result<Search> {
        let d = Search::default();
        let search = Search {
            strategy: self.search.unwrap_or(d.strategy),
            beam_width: self.beam_width.unwrap_or(d.beam_width),
            length_penalty: self.length_penalty.unwrap_or(d.length_penalty),
            no_repeat_ngram: self.no_repeat_ngram.unwrap_or(d.no_repeat_ngram),
            min_length: self.min_length.unwrap_or(d.min_length),
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            seed: self.seed.unwrap_or(d.seed),
            anti_lm: self.anti_lm.unwrap_or(d.anti_lm),
            samples: self.samples.unwrap_or(d.samples),
            mmi: self.mmi.unwrap_or(d.mmi),
        };
        search.check(max_length)?;
        Ok(search)
    }
}

/// Limits on the options, so that a reply's work stays bounded.
pub const MAX_BEAM_WIDTH: usize = 64;
pub const MAX_SAMPLES: usize = 64;

/// Decoding settings, all resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Search {
    /// Default greedy. Serialised as `search`, the option's name.
    #[serde(rename = "search")]
    pub strategy: Strategy,
    /// Hypotheses kept at each step of beam search; default 5 (fairseq's, OpenNMT's).
    pub beam_width: usize,
    /// `A` in score / length^A, length in tokens with EOS: how beam search compares replies
    /// of different lengths (0: raw sum, which favours short replies); default 1.
    pub length_penalty: f32,
    /// No n-gram of this many tokens appears twice in a reply; default 0 (off).
    pub no_repeat_ngram: usize,
    /// EOS is not chosen before the reply has this many words; default 0.
    pub min_length: usize,
    /// Sampling: the logits are divided by it; towards 0 sampling approaches greedy (0 is
    /// greedy); default 1.
    pub temperature: f32,
    /// Sampling: only the k most likely words are drawn (0: all); default 0.
    pub top_k: usize,
    /// Sampling: only the most likely words whose probabilities add up to p are drawn
    /// (nucleus sampling; 1: all); default 1.
    pub top_p: f32,
    /// Sampling: the random generator's seed; the same seed gives the same reply, natively
    /// and in wasm; default 0.
    pub seed: u64,
    /// Beam search and sampling: λ in `log p(T|S) − λ·log p(T|∅)`, which reranks the
    /// finished or drawn replies against the same model's reply to an empty message,
    /// preferring specific replies over stock ones ([`rerank`]); default 0 (off).
    pub anti_lm: f32,
    /// Sampling: replies drawn (in one batch), of which the best by [`rerank`] is kept
    /// (sample-and-rank, Adiwardana et al. 2020); default 1.
    pub samples: usize,
    /// Beam search and sampling: μ in `+ μ·log p(S|T) / length(S)`, which reranks the
    /// finished or drawn replies by how well each predicts the message under a backward
    /// model (MMI-bidi, [`rerank`]); needs a chatbot with one; default 0 (off).
    pub mmi: f32,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            strategy: Strategy::Greedy,
            beam_width: 5,
            length_penalty: 1.0,
            no_repeat_ngram: 0,
            min_length: 0,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            anti_lm: 0.0,
            samples: 1,
            mmi: 0.0,
        }
    }
}

impl Search {
    fn check(&self, max_length: usize) -> Result<()> {
        let fail = |m: String| Err(Error::BadSearch(m));
        if !(1..=MAX_BEAM_WIDTH).contains(&self.beam_width) {
            return fail(format!(
                "beam width must be between 1 and {MAX_BEAM_WIDTH}, not {}",
                self.beam_width
            ));
        }
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            return fail(format!(
                "samples must be between 1 and {MAX_SAMPLES}, not {}",
                self.samples
            ));
        }
        if !self.length_penalty.is_finite() {
            return fail("length penalty must be a finite number".into());
        }
        if self.min_length >= max_length {
            return fail(format!(
                "min length must be below the bundle's max_length ({max_length}), not {}",
                self.min_length
            ));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return fail("temperature must be 0 or more".into());
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return fail("top-p must be in (0, 1]".into());
        }
        if !(self.anti_lm.is_finite() && self.anti_lm >= 0.0) {
            return fail("the anti-LM weight must be 0 or more".into());
        }
        if !(self.mmi.is_finite() && self.mmi >= 0.0) {
            return fail("the MMI weight must be 0 or more".into());
        }
        Ok(())
    }

    /// Tokens that may not follow `tokens` (a hypothesis without its EOS): EOS before
    /// `min_length` words, and any token that would repeat an n-gram of `no_repeat_ngram`.
    pub fn banned(&self, tokens: &[u32]) -> Vec<u32> {
        let mut banned = Vec::new();
        if tokens.len() < self.min_length {
            banned.push(EOS_TOKEN);
        }
        let n = self.no_repeat_ngram;
        if n > 0 && tokens.len() + 1 >= n {
            let prefix = &tokens[tokens.len() + 1 - n..];
            for gram in tokens.windows(n) {
                if &gram[..n - 1] == prefix {
                    banned.push(gram[n - 1]);
                }
            }
        }
        banned
    }
}

/// A decoded reply: its tokens (EOS included when it came within `max_length` steps), the
/// natural-log probability of each, and the attention weights of each step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    pub tokens: Vec<u32>,
    pub log_probs: Vec<f32>,
    /// One row per token, one column per input token.
    pub attention: Vec<Vec<f32>>,
    /// `log p(T|∅)`: the tokens' log-likelihood after an empty message, which beam search
    /// and sampling sum alongside when they rerank ([`rerank`]); 0 otherwise.
    pub prior: f32,
    /// `log p(S|T) / length(S)`: the message's mean log-likelihood after this reply under a
    /// backward model, when the search reranks with one ([`rerank::backward`]); 0 otherwise.
    pub backward: f32,
}

impl Decoded {
    /// The sum of the log-probabilities: the reply's log-likelihood.
    pub fn score(&self) -> f32 {
        self.log_probs.iter().sum()
    }

    /// What beam search ranks finished replies, and sampling its drawn ones, by:
    /// `(score − λ·prior) / length^A + μ·backward`, length counting EOS ([`rerank`]); with
    /// λ = μ = 0 the length-normalised score.
    pub fn reranked_score(&self, search: &Search) -> f32 {
        let len = self.tokens.len().max(1) as f32;
        (self.score() - search.anti_lm * self.prior) / len.powf(search.length_penalty)
            + search.mmi * self.backward
    }

    /// Appends one token, its log-probability and the step's attention row.
    fn push(&mut self, token: u32, log_prob: f32, attention: &[f32]) {
        self.tokens.push(token);
        self.log_probs.push(log_prob);
        self.attention.push(attention.to_vec());
    }

    /// This hypothesis extended by one token, whose log-probability after an empty message
    /// is `prior_log_prob`.
    fn extended(&self, token: u32, log_prob: f32, prior_log_prob: f32, attention: &[f32]) -> Self {
        let mut next = self.clone();
        next.push(token, log_prob, attention);
        next.prior += prior_log_prob;
        next
    }
}

/// Decodes the reply to `input_ids` (known words then EOS) with `search`; `backward`, the
/// model of p(message | reply), reranks the candidates when `search.mmi` is above 0.
pub fn decode(
    model: &Seq2Seq,
    backward: Option<&Seq2Seq>,
    input_ids: &[u32],
    search: &Search,
    max_length: usize,
    device: &Device,
) -> Decoded {
    let decoding = Decoding::new(model, input_ids, device);
    // The same model after an empty message (the encoder sees only EOS): the prior that
    // reranking subtracts.
    let prior = || (search.anti_lm > 0.0).then(|| Decoding::new(model, &[EOS_TOKEN], device));
    let candidates = match search.strategy {
        Strategy::Greedy => return greedy::greedy(&decoding, search, max_length),
        Strategy::Beam => beam::beam(&decoding, prior().as_ref(), search, max_length),
        Strategy::Sample => sample::sample(
            &decoding,
            prior().filter(|_| search.samples > 1).as_ref(),
            search,
            max_length,
        ),
    };
    let candidates = match backward.filter(|_| search.mmi > 0.0 && candidates.len() > 1) {
        Some(backward) => rerank::backward(backward, input_ids, candidates, device),
        None => candidates,
    };
    rerank::best(candidates, search)
}

/// One message encoded, and the decoder stepped over any number of hypotheses at once; or
/// several messages of one length encoded together ([`Decoding::batch`]), one row each.
pub struct Decoding<'a> {
    model: &'a Seq2Seq,
    /// [seq, messages, hidden]
    encoder_outputs: Tensor<3>,
    /// The decoder's first state, the encoder's first `decoder_n_layers` final states:
    /// [decoder_n_layers, messages, hidden].
    initial_hidden: Tensor<3>,
    num_words: usize,
}

/// What one decoder step gives for each of its rows.
pub struct Step {
    /// [rows * num_words], row-major.
    pub logits: Vec<f32>,
    /// [rows * seq], row-major: the attention weights over the input tokens.
    pub attention: Vec<f32>,
    /// [decoder_n_layers, rows, hidden]
    pub hidden: Tensor<3>,
}

impl<'a> Decoding<'a> {
    /// Runs the encoder over `input_ids`.
    pub fn new(model: &'a Seq2Seq, input_ids: &[u32], device: &Device) -> Self {
        Self::batch(model, &[input_ids], device)
    }

    /// Runs the encoder over several messages of the same length at once, as one batch
    /// without padding: each message's encoding is what [`new`](Self::new) gives it (the
    /// tutorial's attention is not masked, so messages of other lengths cannot share a
    /// batch). [`step`](Self::step) then takes one row per message, in order.
    ///
    /// # Panics
    /// When `inputs` is empty or its messages differ in length (a caller's bug).
    pub fn batch(model: &'a Seq2Seq, inputs: &[&[u32]], device: &Device) -> Self {
        let (seq, n) = (inputs[0].len(), inputs.len());
        assert!(
            inputs.iter().all(|i| i.len() == seq),
            "messages of one length"
        );
        let ids: Vec<i64> = (0..seq)
            .flat_map(|t| inputs.iter().map(move |i| i[t] as i64))
            .collect();
        let input_seq = Tensor::<2, Int>::from_data(TensorData::new(ids, [seq, n]), device);
        let (encoder_outputs, encoder_hidden) =
            model
                .encoder
                .forward(&model.embedding, input_seq, &vec![seq; n]);
        // decoder_hidden = encoder_hidden[:decoder.n_layers]
        let initial_hidden = encoder_hidden.slice(s![0..model.decoder.gru.num_layers()]);
        let num_words = model.decoder.out.weight.dims()[1];
        Self {
            model,
            encoder_outputs,
            initial_hidden,
            num_words,
        }
    }

    pub fn num_words(&self) -> usize {
        self.num_words
    }

    /// The decoder's state before the first step, for one hypothesis.
    pub fn initial_hidden(&self) -> Tensor<3> {
        self.initial_hidden.clone()
    }

    /// One decoder step for `rows` hypotheses: `last` holds each one's last token (SOS at
    /// the start), `hidden` their states [decoder_n_layers, rows, hidden]. After
    /// [`batch`](Self::batch), one row per message.
    pub fn step(&self, last: &[u32], hidden: Tensor<3>) -> Step {
        let rows = last.len();
        let device = hidden.device();
        let ids: Vec<i64> = last.iter().map(|&t| t as i64).collect();
        let input_step = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, rows]), &device);
        let encoder_outputs = match self.encoder_outputs.dims()[1] {
            1 => repeat_rows(self.encoder_outputs.clone(), rows), // [seq, rows, hidden]
            _ => self.encoder_outputs.clone(),
        };
        let (logits, hidden, attention) = self.model.decoder.forward_attention(
            &self.model.embedding,
            input_step,
            hidden,
            encoder_outputs,
        );
        Step {
            logits: host(logits.into_data()),
            attention: host(attention.into_data()),
            hidden,
        }
    }

    /// The first step's state and input for one hypothesis.
    pub fn start(&self) -> (Vec<u32>, Tensor<3>) {
        (vec![SOS_TOKEN], self.initial_hidden())
    }
}

/// `t` [a, 1, b] as `n` identical rows, [a, n, b].
pub fn repeat_rows(t: Tensor<3>, n: usize) -> Tensor<3> {
    match n {
        1 => t,
        _ => t.repeat_dim(1, n),
    }
}

/// The hypotheses `rows` (indices into dimension 1, in that order) of the decoder's states
/// and, when the search reranks, of the prior's: [decoder_n_layers, rows.len(), hidden].
pub fn select_rows(
    hidden: Tensor<3>,
    prior_hidden: Option<Tensor<3>>,
    rows: &[usize],
) -> (Tensor<3>, Option<Tensor<3>>) {
    let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len()]), &hidden.device());
    let prior_hidden = prior_hidden.map(|h| h.select(1, ids.clone()));
    (hidden.select(1, ids), prior_hidden)
}

fn host(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// `log(sum(exp(logits)))` of one row: a token's log-probability is its logit minus this
/// (`log_softmax`), so a search ranks logits and subtracts it from the few it keeps. Eight
/// lanes at a time with a polynomial `exp` ([`crate::fastmath`]), where `libm`'s `expf`, one
/// word at a time, was 5% of the page's default search.
pub fn log_sum_exp(logits: &[f32]) -> f32 {
    crate::fastmath::log_sum_exp(logits)
}

/// The index of the largest value (the first one on ties), skipping `banned` (0 if every
/// value is banned or NaN). `banned` is looked at only for a value that would win.
pub fn argmax(values: &[f32], banned: &[u32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in values.iter().enumerate() {
        if (v > best_value || !found) && !banned.contains(&(i as u32)) && !v.is_nan() {
            best = i;
            best_value = v;
            found = true;
        }
    }
    best
}
