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

/// Element type of the tensors in `model.safetensors`. Either is computed in f32; an f16
/// bundle may keep its weight matrices in f16 while chatting ([`crate::Chatbot::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    F32,
    F16,
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

    /// Refuses a configuration no model can have.
    pub fn check(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::bundle("config.json", m));
        if self.hidden_size == 0 {
            return fail("hidden_size must be at least 1");
        }
        if self.num_words < 3 {
            return fail("num_words must be at least 3 (PAD, SOS, EOS)");
        }
        if self.encoder_n_layers == 0 || self.decoder_n_layers == 0 {
            return fail("encoder_n_layers and decoder_n_layers must be at least 1");
        }
        if self.decoder_n_layers > 2 * self.encoder_n_layers {
            return fail("decoder_n_layers must be at most 2 * encoder_n_layers");
        }
        if self.max_length == 0 || self.max_input_words == 0 {
            return fail("max_length and max_input_words must be at least 1");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail("dropout must be in [0, 1)");
        }
        if let Some(search) = &self.search {
            search
                .resolve(self.max_length)
                .map_err(|e| Error::bundle("config.json", e))?;
        }
        Ok(())
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
