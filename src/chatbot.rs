//! The one entry point: a loaded bundle answering messages. The CLI, the wasm module and
//! the tests all call [`Chatbot::reply`].

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::config::WeightDtype;
use crate::error::{Error, Result};
use crate::model::greedy_search;
use crate::model::linear::half_weights;
use crate::text::normalize_string;
use crate::voc::{EOS_TOKEN, PAD_TOKEN};

/// A reply and how it was chosen; `burnchat reply --json` prints this (and the golden tests
/// read it back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The message as given.
    pub input: String,
    /// The reply's words up to the first EOS (PAD dropped, as the tutorial does), joined by
    /// spaces.
    pub reply: String,
    /// Greedy token ids, EOS included when it came within `max_length` steps.
    pub tokens: Vec<u32>,
    /// The probability of each token in `tokens`.
    pub scores: Vec<f32>,
    /// The message's words that are not in the vocabulary, dropped before encoding.
    pub unknown: Vec<String>,
}

/// A bundle on a device, ready to chat.
#[derive(Debug)]
pub struct Chatbot {
    bundle: Bundle,
    device: Device,
}

impl Chatbot {
    /// A chatbot over `bundle`. An f16 bundle keeps its weight matrices in f16 where that
    /// is faster ([`crate::backend::keeps_f16_weights`]): the same values, half the bytes
    /// read per step.
    pub fn new(mut bundle: Bundle, device: Device) -> Self {
        if bundle.config.dtype == WeightDtype::F16 && crate::backend::keeps_f16_weights() {
            bundle.model = half_weights(bundle.model);
        }
        Self { bundle, device }
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

    /// The precision the weight matrices are held in while chatting: f16 for an f16 bundle
    /// where f16 is read fast, else f32 (biases and the embedding always).
    pub fn weights_held_as(&self) -> WeightDtype {
        match self.bundle.model.decoder.out.weight.dtype() {
            DType::F16 => WeightDtype::F16,
            _ => WeightDtype::F32,
        }
    }

    /// Answers one message: normalise, encode (unknown words dropped and listed), encode
    /// with the encoder, decode greedily.
    pub fn reply(&self, text: &str) -> Result<Reply> {
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
        let seq = encoded.ids.len();
        let ids: Vec<i64> = encoded.ids.iter().map(|&id| id as i64).collect();
        let input_seq = Tensor::<2, Int>::from_data(TensorData::new(ids, [seq, 1]), &self.device);
        let greedy = greedy_search(model, input_seq, config.max_length);
        let reply = greedy
            .tokens
            .iter()
            .take_while(|&&t| t != EOS_TOKEN)
            .filter(|&&t| t != PAD_TOKEN)
            .filter_map(|&t| voc.word(t))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Reply {
            input: text.to_string(),
            reply,
            tokens: greedy.tokens,
            scores: greedy.scores,
            unknown: encoded.unknown,
        })
    }
}
