//! `config.json`: the model's hyper-parameters, named as in the tutorial.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::search::SearchOptions;

/// Luong attention's score function, the tutorial's `attn_model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttnMethod {
    /// `h · e`
    Dot,
    /// `h · (W e + b)`
    General,
    /// `v · tanh(W [h; e] + b)`
    Concat,
}

/// Element type of the tensors in `model.safetensors`. Each is computed in f32; an f16 or
/// int8 bundle may keep its weight matrices in f16 while chatting ([`crate::Chatbot::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    F32,
    F16,
    /// Weight matrices as int8 with a scale per row, the rest f16 ([`crate::quant`]).
    Int8,
}

/// The model's shape and decoding settings; `config.json` is this struct serialised.
/// Fields with a default may be left out of the file; unknown fields are refused, so a
/// misspelt name is an error rather than a silent default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Vocabulary size, the tutorial's `voc.num_words` (PAD, SOS and EOS included).
    pub num_words: usize,
    /// Width of the embedding and of every GRU (`hidden_size`, 500 in the tutorial).
    pub hidden_size: usize,
    /// Layers of the bidirectional encoder GRU (`encoder_n_layers`); default 2.
    #[serde(default = "default::layers")]
    pub encoder_n_layers: usize,
    /// Layers of the decoder GRU (`decoder_n_layers`), at most twice `encoder_n_layers`,
    /// since the decoder starts from the encoder's first `decoder_n_layers` final states;
    /// default 2.
    #[serde(default = "default::layers")]
    pub decoder_n_layers: usize,
    /// Attention score function (`attn_model`); default dot.
    #[serde(default = "default::attn_model")]
    pub attn_model: AttnMethod,
    /// Most words in a reply, the tutorial's `MAX_LENGTH`: greedy search stops after this
    /// many steps if EOS has not come; default 10.
    #[serde(default = "default::max_length")]
    pub max_length: usize,
    /// Most words a message may have once normalised; longer ones are refused with
    /// `Error::TooLong` (the encoder's cost grows with every word); default 100.
    #[serde(default = "default::max_input_words")]
    pub max_input_words: usize,
    /// Dropout during training (decoder embedding, between GRU layers); default 0.1.
    #[serde(default = "default::dropout")]
    pub dropout: f64,
    /// How `model.safetensors` stores its tensors; default f32.
    #[serde(default = "default::dtype")]
    pub dtype: WeightDtype,
    /// The bundle's default search, any field left out; without it replies are greedy, as
    /// in the tutorial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchOptions>,
}

mod default {
    use super::{AttnMethod, WeightDtype};
    pub fn layers() -> usize {
        2
    }
    pub fn attn_model() -> AttnMethod {
        AttnMethod::Dot
    }
    pub fn max_length() -> usize {
        10
    }
    pub fn max_input_words() -> usize {
        100
    }
    pub fn dropout() -> f64 {
        0.1
    }
    pub fn dtype() -> WeightDtype {
        WeightDtype::F32
    }
}

/// Upper bounds on `config.json`'s sizes, checked before anything proportional to them is
/// allocated or looped over, so that a hostile bundle is refused rather than exhausting
/// memory or time (README, "Limits"). Each is far above any model this project trains (the
/// tutorial's: 7,830 words, hidden 500, 2 + 2 layers, replies of 10 words).
pub mod limits {
    /// `num_words`: words in the vocabulary.
    pub const NUM_WORDS: usize = 1_000_000;
    /// `hidden_size`.
    pub const HIDDEN_SIZE: usize = 4096;
    /// `encoder_n_layers` and `decoder_n_layers`.
    pub const LAYERS: usize = 16;
    /// `max_length`: decoder steps per reply.
    pub const MAX_LENGTH: usize = 1000;
    /// `max_input_words`: words per message.
    pub const MAX_INPUT_WORDS: usize = 1000;
    /// Parameters in all (2^28, 1 GiB at f32): the model must fit in wasm32's memory.
    pub const PARAMETERS: usize = 1 << 28;
}

impl ModelConfig {
    /// The tutorial's defaults for a vocabulary and hidden size.
    pub fn new(num_words: usize, hidden_size: usize) -> Self {
        Self {
            num_words,
            hidden_size,
            encoder_n_layers: default::layers(),
            decoder_n_layers: default::layers(),
            attn_model: default::attn_model(),
            max_length: default::max_length(),
            max_input_words: default::max_input_words(),
            dropout: default::dropout(),
            dtype: default::dtype(),
            search: None,
        }
    }

    /// Parses `config.json` and checks that it describes a model that can be built.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: Self =
            serde_json::from_slice(bytes).map_err(|e| Error::bundle("config.json", e))?;
        config.check()?;
        Ok(config)
    }

    /// Serialises to `config.json`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Refuses a configuration no model can have, or one beyond [`limits`].
    pub fn check(&self) -> Result<()> {
        let fail = |m: String| Err(Error::bundle("config.json", m));
        let sizes = [
            ("num_words", self.num_words, 3, limits::NUM_WORDS),
            ("hidden_size", self.hidden_size, 1, limits::HIDDEN_SIZE),
            ("encoder_n_layers", self.encoder_n_layers, 1, limits::LAYERS),
            ("decoder_n_layers", self.decoder_n_layers, 1, limits::LAYERS),
            ("max_length", self.max_length, 1, limits::MAX_LENGTH),
            (
                "max_input_words",
                self.max_input_words,
                1,
                limits::MAX_INPUT_WORDS,
            ),
        ];
        for (name, value, min, max) in sizes {
            if !(min..=max).contains(&value) {
                return fail(format!(
                    "{name} must be between {min} and {max}, not {value}"
                ));
            }
        }
        if self.decoder_n_layers > 2 * self.encoder_n_layers {
            return fail("decoder_n_layers must be at most 2 * encoder_n_layers".into());
        }
        match self.parameters() {
            Some(n) if n <= limits::PARAMETERS => {}
            _ => {
                return fail(format!(
                    "the model would have more than {} parameters",
                    limits::PARAMETERS
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail("dropout must be in [0, 1)".into());
        }
        if let Some(search) = &self.search {
            search
                .resolve(self.max_length)
                .map_err(|e| Error::bundle("config.json", e))?;
        }
        Ok(())
    }

    /// The number of parameters this configuration describes: the elements of every tensor
    /// of [`crate::bundle::tensor_shapes`] (the embedding once, as the bundle stores it), or
    /// `None` where the count overflows `usize` (on wasm32, 32 bits). That list has a few
    /// entries per layer, so check [`limits::LAYERS`] first.
    pub fn parameters(&self) -> Option<usize> {
        crate::bundle::tensor_shapes(self)
            .iter()
            .try_fold(0usize, |total, (_, shape)| {
                total.checked_add(shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?)
            })
    }

    /// Bytes of the tensors in `model.safetensors` at `dtype`, or `None` on overflow.
    pub fn tensor_bytes(&self) -> Option<usize> {
        let width = match self.dtype {
            WeightDtype::F32 => 4,
            WeightDtype::F16 => 2,
            WeightDtype::Int8 => return crate::quant::tensor_bytes(self),
        };
        self.parameters()?.checked_mul(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_typos_are_refused() {
        let c = ModelConfig::from_json(br#"{"num_words": 10, "hidden_size": 8}"#).unwrap();
        assert_eq!(c, ModelConfig::new(10, 8));
        assert!(ModelConfig::from_json(br#"{"num_words": 10, "hiden_size": 8}"#).is_err());
        let round = ModelConfig::from_json(c.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(round, c);
    }
}
