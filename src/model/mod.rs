//! The seq2seq model, one file per component of the tutorial.

pub mod attention;
pub mod decoder;
pub mod encoder;
pub mod gru;
pub mod linear;

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

use crate::config::ModelConfig;
pub use attention::Attn;
pub use decoder::LuongAttnDecoderRNN;
pub use encoder::EncoderRNN;
pub use gru::{Gru, GruCell};

/// The whole model: the tutorial's shared `embedding`, `encoder` and `decoder`. Its module
/// paths are the bundle's tensor names but for the GRUs (see `bundle`).
#[derive(Module, Debug)]
pub struct Seq2Seq {
    /// `nn.Embedding(num_words, hidden)`: [num_words, hidden].
    pub embedding: Embedding,
    pub encoder: EncoderRNN,
    pub decoder: LuongAttnDecoderRNN,
}

impl Seq2Seq {
    /// A model of the configuration's shape with freshly initialised weights.
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            embedding: EmbeddingConfig::new(config.num_words, h).init(device),
            encoder: EncoderRNN::new(h, config.encoder_n_layers, config.dropout, device),
            decoder: LuongAttnDecoderRNN::new(
                config.attn_model,
                h,
                config.num_words,
                config.decoder_n_layers,
                config.dropout,
                device,
            ),
        }
    }
}
