//! The tutorial's `Attn`: Luong's global attention with the dot, general and concat scores.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{softmax, tanh};

use super::linear::linear;
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
                attn: Some(LinearConfig::new(hidden, hidden).init(device)),
                v: None,
            },
            AttnMethod::Concat => Self {
                attn: Some(LinearConfig::new(2 * hidden, hidden).init(device)),
                v: Some(Param::from_tensor(Tensor::zeros([hidden], device))),
            },
        }
    }

    /// `hidden`: the decoder GRU's output [1, batch, hidden]; `encoder_outputs`:
    /// [seq, batch, hidden]. Returns the attention weights [batch, 1, seq], softmax over seq.
    pub fn forward(&self, hidden: Tensor<3>, encoder_outputs: Tensor<3>) -> Tensor<3> {
        let [seq, batch, h] = encoder_outputs.dims();
        let energies = match (&self.attn, &self.v) {
            // dot_score: sum(hidden * encoder_output, dim=2)
            (None, _) => (hidden * encoder_outputs).sum_dim(2),
            // general_score: sum(hidden * attn(encoder_output), dim=2)
            (Some(attn), None) => (hidden * linear(attn, encoder_outputs)).sum_dim(2),
            // concat_score: sum(v * tanh(attn(cat(hidden.expand, encoder_output))), dim=2)
            (Some(attn), Some(v)) => {
                let expanded = hidden.expand([seq, batch, h]);
                let energy = tanh(linear(
                    attn,
                    Tensor::cat(vec![expanded, encoder_outputs], 2),
                ));
                (energy * v.val().reshape([1, 1, h])).sum_dim(2)
            }
        }; // [seq, batch, 1]
        softmax(energies.reshape([seq, batch]).transpose(), 1).reshape([batch, 1, seq])
    }
}
