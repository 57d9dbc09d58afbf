//! The tutorial's `EncoderRNN`: embedding, bidirectional GRU, directions summed.

use burn::nn::Embedding;
use burn::prelude::*;

use super::gru::{Gru, step_masks};

/// Reproduces the tutorial's `EncoderRNN`. The embedding is the model's shared one, passed
/// in, as the tutorial shares one `nn.Embedding` between encoder and decoder.
#[derive(Module, Debug)]
pub struct EncoderRNN {
    /// `nn.GRU(hidden, hidden, n_layers, bidirectional=True)`.
    pub gru: Gru,
}

impl EncoderRNN {
    pub fn new(hidden: usize, n_layers: usize, dropout: f64, device: &Device) -> Self {
        Self {
            gru: Gru::new(hidden, hidden, n_layers, true, dropout, device),
        }
    }

    /// `input_seq`: token ids [seq, batch], padded with anything past each sequence's length;
    /// `input_lengths`: one per batch entry, each in `1..=seq`, in any order.
    ///
    /// Returns `outputs` [seq, batch, hidden] (forward plus backward direction, zero at
    /// padding, as `pad_packed_sequence` leaves them) and `hidden`
    /// [n_layers * 2, batch, hidden].
    pub fn forward(
        &self,
        embedding: &Embedding,
        input_seq: Tensor<2, Int>,
        input_lengths: &[usize],
    ) -> (Tensor<3>, Tensor<3>) {
        let [seq, batch] = input_seq.dims();
        debug_assert_eq!(input_lengths.len(), batch);
        let embedded = embedding.forward(input_seq); // [seq, batch, hidden]
        let mask = step_masks(input_lengths, seq, &embedded.device());
        let (outputs, hidden) = self.gru.forward(embedded, None, mask.as_deref());
        let h = self.gru.hidden_size;
        let outputs = outputs.clone().slice(s![.., .., 0..h]) + outputs.slice(s![.., .., h..]);
        (outputs, hidden)
    }
}
