//! `nn.Linear`: every product of the model (`weight_ih`, `weight_hh`, `concat`, `out`,
//! `attn`) goes through [`linear`].
//!
//! Without gradients it runs [`kernel::linear`], which reads each weight once (Burn's
//! general product packs the matrix first, the larger part of a decoding step's time) and
//! reads f16 weights as they are ([`half_weights`]), or multiplies by an int8 bundle's int8
//! matrices in integers ([`Linear::int8`]). Tensors that record gradients take Burn's
//! product, so training is unchanged.

use std::sync::Arc;

use burn::module::{ModuleMapper, Param};
use burn::nn::LinearConfig;
use burn::prelude::*;
use burn::tensor::DType;

use crate::backend;
use crate::kernel::{self, Int8Matrix, Weights};

/// Burn's `Linear` (the same fields, so bundles and checkpoints load into it alike), with the
/// int8 matrix inference multiplies by when the bundle stores one.
#[derive(Module, Debug)]
pub struct Linear {
    /// `[in, out]`: PyTorch's `weight` transposed.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// An int8 bundle's matrix as stored, which inference reads instead of `weight` (a
    /// quarter of f32's bytes; `weight` is `q × scale` rounded to f16). Set only by
    /// [`crate::Bundle`]'s loading: an updated `weight` would leave it stale.
    #[module(skip)]
    pub int8: Option<Arc<Int8Matrix>>,
}

impl Linear {
    /// `nn.Linear(input, output)`, initialised as Burn's `LinearConfig` does.
    pub fn new(input: usize, output: usize, device: &Device) -> Self {
        let burn::nn::Linear { weight, bias } = LinearConfig::new(input, output).init(device);
        Self {
            weight,
            bias,
            int8: None,
        }
    }
}

/// `layer.forward(x)`: `x` [..., in] to [..., out].
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    kernel_linear(layer, &x).unwrap_or_else(|| {
        let weight = layer.weight.val().cast(x.dtype());
        // As one [rows, in] product: Burn would run [steps, batch, in] as `steps` small
        // products, packing the weight for each, and sum `steps` weight gradients.
        let dims = x.dims();
        let [_, out] = weight.dims();
        let rows = x.shape().num_elements() / dims[D - 1];
        let y = burn::tensor::module::linear(
            x.reshape([rows, dims[D - 1]]),
            weight,
            layer.bias.as_ref().map(Param::val),
        ); // [rows, out]
        let mut out_dims = dims;
        out_dims[D - 1] = out;
        y.reshape(out_dims)
    })
}

/// [`linear`] through [`kernel::linear`]; `None` for tensors that record gradients (or any
/// the backend does not hold as one block of f32/f16 weights and f32 bias), which Burn's
/// product takes, f16 weights widened.
fn kernel_linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    let y = with_values(x, |input| product(layer, input))??; // [rows, out]
    let mut dims = x.dims();
    dims[D - 1] = layer.weight.dims()[1];
    Some(Tensor::from_data(TensorData::new(y, dims), &x.device()))
}

/// `x` `[rows, in]` times `layer`'s weight, plus its bias, through [`kernel::linear`]:
/// `[rows, out]`. `None` where the backend does not hold the weight as one block of f32/f16
/// values and the bias as f32.
pub(crate) fn product(layer: &Linear, x: &[f32]) -> Option<Vec<f32>> {
    let weight; // the float weight, borrowed from, where there is no int8 matrix
    let w = match &layer.int8 {
        Some(int8) => Weights::I8(int8),
        None => {
            weight = backend::primitive(&layer.weight.val())?;
            backend::values(&weight)?
        }
    };
    let bias = match &layer.bias {
        Some(b) => Some(backend::primitive(&b.val())?),
        None => None,
    };
    let b = match &bias {
        Some(bias) => Some(backend::f32_values(bias)?),
        None => None,
    };
    let [k, n] = layer.weight.dims();
    let mut y = vec![0.0f32; x.len() / k * n]; // [rows, out]
    kernel::linear(x, w, b, n, &mut y);
    Some(y)
}

/// `f` of a tensor's values, row-major, for computing on them outside Burn: borrowed where
/// the backend holds them as one block of f32, else copied (a view it does not hold
/// contiguously). `None` for a tensor that records gradients (training), which keeps to
/// Burn's operations.
pub(crate) fn with_values<const D: usize, R>(
    x: &Tensor<D>,
    f: impl FnOnce(&[f32]) -> R,
) -> Option<R> {
    let input = backend::primitive(x)?;
    Some(match backend::f32_values(&input) {
        Some(values) => f(values),
        None => f(&x.to_data().try_into_vec::<f32>().ok()?),
    })
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
