//! The tutorial's `Attn`: Luong's global attention with the dot, general and concat scores.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{softmax, tanh};

use super::linear::{Linear, linear};
use crate::config::AttnMethod;

/// Reproduces the tutorial's `Attn`. The method is carried by which parameters exist, as
/// in a checkpoint: `attn` and `v` for concat, `attn` alone for general, neither for dot.
#[derive(Module, Debug)]
pub struct Attn {
    /// `attn`: `Linear(hidden, hidden)` for general, `Linear(2 * hidden, hidden)` for concat.
    pub attn: Option<Linear>,
    /// `v`: `[hidden]`, concat only.
    pub v: Option<Param<Tensor<1>>>,
}

impl Attn {
    pub fn new(method: AttnMethod, hidden: usize, device: &Device) -> Self {
        match method {
            AttnMethod::Dot => Self {
                attn: None,
                v: None,
            },
            AttnMethod::General => Self {
                attn: Some(Linear::new(hidden, hidden, device)),
                v: None,
            },
            AttnMethod::Concat => Self {
                attn: Some(Linear::new(2 * hidden, hidden, device)),
                v: Some(Param::from_tensor(Tensor::zeros([hidden], device))),
            },
        }
    }

    /// `hidden`: the decoder GRU's outputs [steps, batch, hidden] (one step while decoding,
    /// every step at once under teacher forcing); `encoder_outputs`: [seq, batch, hidden].
    /// Returns the attention weights [batch, steps, seq], softmax over seq.
    pub fn forward(&self, hidden: Tensor<3>, encoder_outputs: Tensor<3>) -> Tensor<3> {
        let [steps, batch, h] = hidden.dims();
        let [seq, ..] = encoder_outputs.dims();
        // Every step against every encoder position: [steps, seq, batch, hidden].
        let hidden = hidden.reshape([steps, 1, batch, h]);
        let keys = |outputs: Tensor<3>| outputs.reshape([1, seq, batch, h]);
        let energies = match (&self.attn, &self.v) {
            // dot_score: sum(hidden * encoder_output, dim=2)
            (None, _) => (hidden * keys(encoder_outputs)).sum_dim(3),
            // general_score: sum(hidden * attn(encoder_output), dim=2)
            (Some(attn), None) => (hidden * keys(linear(attn, encoder_outputs))).sum_dim(3),
            // concat_score: sum(v * tanh(attn(cat(hidden.expand, encoder_output))), dim=2)
            (Some(attn), Some(v)) => {
                let shape = [steps, seq, batch, h];
                let energy = tanh(linear(
                    attn,
                    Tensor::cat(
                        vec![hidden.expand(shape), keys(encoder_outputs).expand(shape)],
                        3,
                    ),
                ));
                (energy * v.val().reshape([1, 1, 1, h])).sum_dim(3)
            }
        }; // [steps, seq, batch, 1]
        softmax(energies.reshape([steps, seq, batch]).permute([2, 0, 1]), 2)
    }
}
