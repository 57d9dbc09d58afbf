//! `nn.Linear` for inference: every product of the model (`weight_ih`, `weight_hh`,
//! `concat`, `out`, `attn`) goes through [`linear`].
//!
//! Without gradients it runs [`kernel::linear`], which reads each weight once (Burn's
//! general product packs the matrix first, the larger part of a decoding step's time) and
//! reads f16 weights as they are ([`half_weights`]). Tensors that record gradients take
//! Burn's `Linear::forward`, so training is unchanged.

use burn::module::{ModuleMapper, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

use crate::backend;
use crate::kernel::{self, Weights};

/// `layer.forward(x)`: `x` [..., in] to [..., out].
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    let bias = layer.bias.as_ref().map(Param::val);
    let (Some(w), Some(xp)) = (backend::primitive(&weight), backend::primitive(&x)) else {
        return burn_linear(x, weight, bias);
    };
    let bias_p = bias.as_ref().and_then(backend::primitive);
    let (Some(w_values), Some(Weights::F32(x_values))) =
        (backend::values(&w), backend::values(&xp))
    else {
        return burn_linear(x, weight, bias);
    };
    let b_values = match bias_p.as_ref().map(backend::values) {
        None => None,
        Some(Some(Weights::F32(b))) => Some(b),
        Some(_) => return burn_linear(x, weight, bias),
    };
    let mut dims = x.dims();
    let [_, n] = weight.dims();
    let rows = x_values.len() / dims[D - 1];
    let mut y = vec![0.0f32; rows * n]; // [rows, out]
    kernel::linear(x_values, w_values, b_values, n, &mut y);
    dims[D - 1] = n;
    Tensor::from_data(TensorData::new(y, dims), &x.device())
}

/// Burn's own product, for tensors the kernel does not take; f16 weights are widened.
fn burn_linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let weight = weight.cast(x.dtype());
    burn::tensor::module::linear(x, weight, bias)
}

/// Casts every `Linear` weight matrix of `module` to f16, for inference. A bundle stored as
/// f16 loses nothing (its values are f16 already) and each decoding step reads half the
/// bytes; biases and the embedding stay f32.
pub fn half_weights<M: Module>(module: M) -> M {
    module.map(&mut HalfWeights { path: Vec::new() })
}

struct HalfWeights {
    /// The container types entered, innermost last.
    path: Vec<String>,
}

impl ModuleMapper for HalfWeights {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.path.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D == 2 && self.path.last().is_some_and(|c| c == "Struct:Linear") {
            param.map(|t| t.cast(DType::F16))
        } else {
            param
        }
    }
}
