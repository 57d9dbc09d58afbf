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
pub use linear::Linear;

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

    /// Every `Linear` of the model with its weight's name in a bundle (`decoder.out.weight`,
    /// `encoder.gru.weight_ih_l0_reverse`; see `bundle::tensor_shapes`).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut linears = Vec::new();
        let decoder = &mut self.decoder;
        for (prefix, gru) in [
            ("encoder", &mut self.encoder.gru),
            ("decoder", &mut decoder.gru),
        ] {
            for (suffix, cells) in [("", &mut gru.cells), ("_reverse", &mut gru.cells_reverse)] {
                for (k, cell) in cells.iter_mut().enumerate() {
                    linears.push((format!("{prefix}.gru.weight_ih_l{k}{suffix}"), &mut cell.ih));
                    linears.push((format!("{prefix}.gru.weight_hh_l{k}{suffix}"), &mut cell.hh));
                }
            }
        }
        linears.push(("decoder.concat.weight".into(), &mut decoder.concat));
        linears.push(("decoder.out.weight".into(), &mut decoder.out));
        if let Some(attn) = &mut decoder.attn.attn {
            linears.push(("decoder.attn.attn.weight".into(), attn));
        }
        linears
    }
}
