//! The one entry point: a loaded bundle answering messages. The CLI, the wasm module and
//! the tests all call [`Chatbot::reply`].

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::config::WeightDtype;
use crate::error::{Error, Result};
use crate::model::linear::half_weights;
use crate::search::{Search, SearchOptions, decode};
use crate::text::{normalize_string, readable};
use crate::voc::{EOS_TOKEN, PAD_TOKEN};

/// A reply and how it was chosen; `burnchat reply --json` prints this (and the golden tests
/// read it back, so the fields added after the tutorial's may be absent there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The message as given.
    pub input: String,
    /// The reply's words up to the first EOS (PAD dropped, as the tutorial does), joined by
    /// spaces: the tutorial's own output.
    pub reply: String,
    /// The reply as a person writes it ([`readable`]): "I'm doing well." for
    /// "i m doing well .".
    #[serde(default)]
    pub text: String,
    /// The chosen token ids, EOS included when it came within `max_length` steps.
    pub tokens: Vec<u32>,
    /// The probability of each token in `tokens`.
    pub scores: Vec<f32>,
    /// The sum of the natural-log probabilities of `tokens`, EOS included.
    #[serde(default)]
    pub score: f32,
    /// The ids the encoder saw: the message's known words, then EOS.
    #[serde(default)]
    pub input_tokens: Vec<u32>,
    /// The decoder's attention weights: one row per entry of `tokens`, one column per entry
    /// of `input_tokens`; each row sums to 1.
    #[serde(default)]
    pub attention: Vec<Vec<f32>>,
    /// The message's words that are not in the vocabulary, dropped before encoding.
    pub unknown: Vec<String>,
}

/// `bundle` as a chatbot holds it: an f16 bundle's weight matrices in f16 where that is
/// faster ([`crate::backend::keeps_f16_weights`]). An int8 bundle's matrices are multiplied
/// in int8 ([`crate::model::Linear::int8`]); loading already keeps their float copies, which
/// replies do not read, in f16 where the backend holds f16 (`bundle::model_from_tensors`).
fn held(mut bundle: Bundle) -> Bundle {
    if bundle.config.dtype == WeightDtype::F16 && crate::backend::keeps_f16_weights() {
        bundle.model = half_weights(bundle.model);
    }
    bundle
}

/// A bundle on a device, ready to chat.
#[derive(Debug)]
pub struct Chatbot {
    bundle: Bundle,
    /// The backward model p(message | reply) that reranks with the `mmi` search option.
    backward: Option<Bundle>,
    device: Device,
}

impl Chatbot {
    /// A chatbot over `bundle`. An f16 bundle keeps its weight matrices in f16 where that
    /// is faster ([`crate::backend::keeps_f16_weights`]): the same values, half the bytes
    /// read per step.
    pub fn new(bundle: Bundle, device: Device) -> Self {
        Self {
            bundle: held(bundle),
            backward: None,
            device,
        }
    }

    /// This chatbot with `backward`, a bundle trained on the same pairs the other way round
    /// (`burnchat train --reverse`), to rerank replies by how well they predict the message
    /// (the `mmi` search option). Refused unless the two share their vocabulary word for word.
    pub fn with_backward(mut self, backward: Bundle) -> Result<Self> {
        self.set_backward(backward)?;
        Ok(self)
    }

    /// [`with_backward`](Self::with_backward) in place.
    pub fn set_backward(&mut self, backward: Bundle) -> Result<()> {
        if backward.voc != self.bundle.voc {
            return Err(Error::BadBundle {
                file: "voc.json".into(),
                message: "the backward model's vocabulary differs from the chatbot's".into(),
            });
        }
        self.backward = Some(held(backward));
        Ok(())
    }

    /// Loads a bundle from the bytes of its three files onto the crate's backend.
    pub fn from_bytes(model: Vec<u8>, config: &[u8], voc: &[u8]) -> Result<Self> {
        let device = crate::backend::device();
        let bundle = Bundle::from_bytes(model, config, voc, &device)?;
        Ok(Self::new(bundle, device))
    }

    /// Loads a bundle directory onto the crate's backend.
    #[cfg(feature = "native")]
    pub fn load(dir: &std::path::Path) -> Result<Self> {
        let device = crate::backend::device();
        let bundle = Bundle::load(dir, &device)?;
        Ok(Self::new(bundle, device))
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The precision the weight matrices are read in while chatting: int8 for an int8 bundle,
    /// f16 for an f16 bundle where f16 is read fast, else f32 (biases and the embedding
    /// always).
    pub fn weights_held_as(&self) -> WeightDtype {
        let out = &self.bundle.model.decoder.out;
        if out.int8.is_some() {
            return WeightDtype::Int8;
        }
        match out.weight.dtype() {
            DType::F16 => WeightDtype::F16,
            _ => WeightDtype::F32,
        }
    }

    /// The search `options` give on this bundle: each field left out takes the bundle's
    /// default, then [`Search::default`]'s; refused with [`Error::BadSearch`] when unusable.
    pub fn search(&self, options: &SearchOptions) -> Result<Search> {
        let config = &self.bundle.config;
        match &config.search {
            Some(defaults) => options.or(defaults),
            None => options.clone(),
        }
        .resolve(config.max_length)
    }

    /// Answers one message with the bundle's default search (greedy unless its
    /// `config.json` names one): normalise, look the words up (unknown words dropped and
    /// listed), encode, decode.
    pub fn reply(&self, text: &str) -> Result<Reply> {
        self.reply_with(text, &SearchOptions::default())
    }

    /// [`reply`](Self::reply) with decoding options; a field left out takes the bundle's
    /// default, then [`Search::default`](crate::search::Search)'s.
    pub fn reply_with(&self, text: &str, options: &SearchOptions) -> Result<Reply> {
        let search = self.search(options)?;
        if search.mmi > 0.0 && self.backward.is_none() {
            return Err(Error::BadSearch(
                "the MMI weight needs a backward model (burnchat train --reverse)".into(),
            ));
        }
        let Bundle { config, voc, model } = &self.bundle;
        let normalized = normalize_string(text);
        if normalized.is_empty() {
            return Err(Error::EmptyInput);
        }
        let words = normalized.split(' ').count();
        if words > config.max_input_words {
            return Err(Error::TooLong {
                words,
                limit: config.max_input_words,
            });
        }
        let encoded = voc.encode(&normalized);
        if encoded.ids.len() == 1 {
            return Err(Error::NoKnownWords(encoded.unknown));
        }
        let decoded = decode(
            model,
            self.backward.as_ref().map(|b| &b.model),
            &encoded.ids,
            &search,
            config.max_length,
            &self.device,
        );
        let reply = decoded
            .tokens
            .iter()
            .take_while(|&&t| t != EOS_TOKEN)
            .filter(|&&t| t != PAD_TOKEN)
            .filter_map(|&t| voc.word(t))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Reply {
            input: text.to_string(),
            text: readable(&reply),
            reply,
            scores: decoded.log_probs.iter().map(|lp| lp.exp()).collect(),
            score: decoded.score(),
            tokens: decoded.tokens,
            input_tokens: encoded.ids,
            attention: decoded.attention,
            unknown: encoded.unknown,
        })
    }
}
