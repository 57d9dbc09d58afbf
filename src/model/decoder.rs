//! The tutorial's `LuongAttnDecoderRNN`: one decoding step with attention.

use burn::nn::{Dropout, DropoutConfig, Embedding};
use burn::prelude::*;
use burn::tensor::activation::{softmax, tanh};

use super::attention::Attn;
use super::gru::{Gru, step_masks};
use super::linear::{Linear, linear};
use crate::config::AttnMethod;

/// Reproduces the tutorial's `LuongAttnDecoderRNN`; the embedding is the shared one,
/// passed in.
#[derive(Module, Debug)]
pub struct LuongAttnDecoderRNN {
    /// `embedding_dropout`, in training only.
    pub embedding_dropout: Dropout,
    /// `nn.GRU(hidden, hidden, n_layers)`.
    pub gru: Gru,
    pub attn: Attn,
    /// `concat`: `Linear(2 * hidden, hidden)`.
    pub concat: Linear,
    /// `out`: `Linear(hidden, num_words)`.
    pub out: Linear,
}

impl LuongAttnDecoderRNN {
    pub fn new(
        method: AttnMethod,
        hidden: usize,
        num_words: usize,
        n_layers: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        Self {
            embedding_dropout: DropoutConfig::new(dropout).init(),
            gru: Gru::new(hidden, hidden, n_layers, false, dropout, device),
            attn: Attn::new(method, hidden, device),
            concat: Linear::new(2 * hidden, hidden, device),
            out: Linear::new(hidden, num_words, device),
        }
    }

    /// One step. `input_step`: token ids [1, batch]; `last_hidden`: [n_layers, batch, hidden];
    /// `encoder_outputs`: [seq, batch, hidden].
    ///
    /// Returns the next word's probabilities [batch, num_words] and the new hidden state.
    pub fn forward(
        &self,
        embedding: &Embedding,
        input_step: Tensor<2, Int>,
        last_hidden: Tensor<3>,
        encoder_outputs: Tensor<3>,
    ) -> (Tensor<2>, Tensor<3>) {
        let (logits, hidden) =
            self.forward_logits(embedding, input_step, last_hidden, encoder_outputs);
        (softmax(logits, 1), hidden)
    }

    /// [`forward`](Self::forward) before the final softmax: the logits [batch, num_words],
    /// which training turns into log-probabilities without underflow.
    pub fn forward_logits(
        &self,
        embedding: &Embedding,
        input_step: Tensor<2, Int>,
        last_hidden: Tensor<3>,
        encoder_outputs: Tensor<3>,
    ) -> (Tensor<2>, Tensor<3>) {
        let (logits, hidden, _) =
            self.forward_attention(embedding, input_step, last_hidden, encoder_outputs);
        (logits, hidden)
    }

    /// [`forward_logits`](Self::forward_logits) that also returns the step's attention
    /// weights over the encoder outputs, [batch, 1, seq] (each row sums to 1), for the
    /// searches to report.
    pub fn forward_attention(
        &self,
        embedding: &Embedding,
        input_step: Tensor<2, Int>,
        last_hidden: Tensor<3>,
        encoder_outputs: Tensor<3>,
    ) -> (Tensor<2>, Tensor<3>, Tensor<3>) {
        let [_, batch] = input_step.dims();
        let (logits, hidden, attn_weights) =
            self.forward_steps(embedding, input_step, last_hidden, encoder_outputs);
        let [_, _, num_words] = logits.dims();
        (logits.reshape([batch, num_words]), hidden, attn_weights)
    }

    /// The decoder over `steps` inputs known in advance, as teacher forcing feeds them:
    /// `input_steps` [steps, batch]. The GRU runs step by step, but attention, `concat` and
    /// `out` each take every step in one product, which is what makes training fast. One step
    /// is [`forward_attention`](Self::forward_attention).
    ///
    /// Returns the logits [steps, batch, num_words], the last hidden state
    /// [n_layers, batch, hidden] and the attention weights [batch, steps, seq].
    pub fn forward_steps(
        &self,
        embedding: &Embedding,
        input_steps: Tensor<2, Int>,
        last_hidden: Tensor<3>,
        encoder_outputs: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let (concat_output, hidden_state, attn_weights) =
            self.attend_steps(embedding, input_steps, last_hidden, encoder_outputs, None);
        let logits = linear(&self.out, concat_output); // [steps, batch, num_words]
        (logits, hidden_state, attn_weights)
    }

    /// [`forward_steps`](Self::forward_steps) before `out`: `concat_output` [steps, batch,
    /// hidden], which training projects only where a target word is to be scored.
    ///
    /// `target_lengths`, one per batch entry, says which steps will be scored: the GRU skips
    /// the others (as it skips an encoder's padding), whose outputs are then not the
    /// decoder's and must not be used; `None` runs every step.
    pub fn attend_steps(
        &self,
        embedding: &Embedding,
        input_steps: Tensor<2, Int>,
        last_hidden: Tensor<3>,
        encoder_outputs: Tensor<3>,
        target_lengths: Option<&[usize]>,
    ) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let [steps, batch] = input_steps.dims();
        let embedded = self
            .embedding_dropout
            .forward(embedding.forward(input_steps)); // [steps, batch, hidden]
        let mask = target_lengths.and_then(|l| step_masks(l, steps, &embedded.device()));
        let (rnn_output, hidden_state) =
            self.gru
                .forward(embedded, Some(last_hidden), mask.as_deref());
        let attn_weights = self
            .attn
            .forward(rnn_output.clone(), encoder_outputs.clone()); // [batch, steps, seq]
        let context = attn_weights.clone().matmul(encoder_outputs.swap_dims(0, 1)); // [batch, steps, hidden]
        let [_, _, hidden] = context.dims();
        let context = if steps == 1 {
            context.reshape([1, batch, hidden])
        } else {
            context.swap_dims(0, 1)
        }; // [steps, batch, hidden]
        let concat_input = Tensor::cat(vec![rnn_output, context], 2); // [steps, batch, 2 * hidden]
        let concat_output = tanh(linear(&self.concat, concat_input)); // [steps, batch, hidden]
        (concat_output, hidden_state, attn_weights)
    }
}
