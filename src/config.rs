//! `config.json`: the model's hyper-parameters, named as in the tutorial.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// Element type of the tensors in `model.safetensors`; either loads into f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    F32,
    F16,
}

/// The model's shape and decoding settings; `config.json` is this struct serialised.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Vocabulary size, the tutorial's `voc.num_words` (PAD, SOS and EOS included).
    pub num_words: usize,
    /// Width of the embedding and of every GRU (`hidden_size`, 500 in the tutorial).
    pub hidden_size: usize,
    /// Layers of the bidirectional encoder GRU (`encoder_n_layers`).
    #[config(default = 2)]
    pub encoder_n_layers: usize,
    /// Layers of the decoder GRU (`decoder_n_layers`); at most twice `encoder_n_layers`,
    /// since the decoder starts from the encoder's first `decoder_n_layers` final states.
    #[config(default = 2)]
    pub decoder_n_layers: usize,
    /// Attention score function (`attn_model`).
    #[config(default = "AttnMethod::Dot")]
    pub attn_model: AttnMethod,
    /// Most words in a reply, the tutorial's `MAX_LENGTH`: greedy search stops after this
    /// many steps if EOS has not come.
    #[config(default = 10)]
    pub max_length: usize,
    /// Most words a message may have once normalised; longer ones are refused with
    /// `Error::TooLong` (the encoder's cost grows with every word).
    #[config(default = 100)]
    pub max_input_words: usize,
    /// Dropout during training (embedding of the decoder, between GRU layers).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// How `model.safetensors` stores its tensors.
    #[config(default = "WeightDtype::F32")]
    pub dtype: WeightDtype,
}

impl ModelConfig {
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
        Ok(())
    }
}
