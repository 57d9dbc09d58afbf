//! The tutorial's `GreedySearchDecoder`.

use burn::prelude::*;

use super::Seq2Seq;
use crate::voc::{EOS_TOKEN, SOS_TOKEN};

/// What greedy search chose: one token and its probability per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Greedy {
    pub tokens: Vec<u32>,
    pub scores: Vec<f32>,
}

/// Reproduces the tutorial's `GreedySearchDecoder.forward` for one sentence, with one
/// deliberate difference: it stops once EOS is chosen (EOS included) instead of always
/// running `max_length` steps; the tokens before that are the same.
///
/// `input_seq`: token ids [seq, 1].
pub fn greedy_search(model: &Seq2Seq, input_seq: Tensor<2, Int>, max_length: usize) -> Greedy {
    let [seq, _] = input_seq.dims();
    let device = input_seq.device();
    let (encoder_outputs, encoder_hidden) =
        model.encoder.forward(&model.embedding, input_seq, &[seq]);
    // decoder_hidden = encoder_hidden[:decoder.n_layers]
    let mut decoder_hidden = encoder_hidden.slice(s![0..model.decoder.gru.num_layers()]);
    let mut decoder_input = Tensor::<2, Int>::from_ints([[SOS_TOKEN as i64]], &device);
    let mut greedy = Greedy {
        tokens: Vec::with_capacity(max_length),
        scores: Vec::with_capacity(max_length),
    };
    for _ in 0..max_length {
        let (decoder_output, hidden) = model.decoder.forward(
            &model.embedding,
            decoder_input,
            decoder_hidden,
            encoder_outputs.clone(),
        );
        decoder_hidden = hidden;
        let (score, index) = decoder_output.max_dim_with_indices(1); // [1, 1] each
        let token = index.clone().into_scalar::<i64>() as u32;
        greedy.tokens.push(token);
        greedy.scores.push(score.into_scalar::<f32>());
        if token == EOS_TOKEN {
            break;
        }
        decoder_input = index;
    }
    greedy
}
