//! The one place that picks the compute backend.

use burn::tensor::{Device, Tensor};
#[cfg(feature = "flex")]
use half::f16;

use crate::kernel::Weights;

#[cfg(not(any(feature = "ndarray", feature = "flex")))]
compile_error!("burnchat needs a backend: enable the `ndarray` or the `flex` feature");

/// The backend this build runs on, as named by its cargo feature.
pub const NAME: &str = if cfg!(feature = "flex") {
    "flex"
} else {
    "ndarray"
};

/// The device every model in this crate runs on: Burn's `flex` CPU backend when the `flex`
/// feature is on (the default), else `ndarray` (the project's original design). Both run in
/// wasm32; BENCHMARKS.md compares them.
#[cfg(feature = "flex")]
pub fn device() -> Device {
    Device::flex()
}

/// The device every model in this crate runs on: Burn's `ndarray` CPU backend (the `flex`
/// feature swaps in `flex`). Burn 0.22 marks ndarray deprecated in favour of flex.
#[cfg(not(feature = "flex"))]
#[allow(deprecated)]
pub fn device() -> Device {
    Device::ndarray()
}

/// The backend's own tensor type, whose memory [`values`] reads.
#[cfg(feature = "flex")]
type Primitive = burn::backend::flex::FlexTensor;
#[cfg(not(feature = "flex"))]
type Primitive = burn::backend::ndarray::NdArrayTensor;

/// The backend's own tensor behind `tensor`, sharing its memory. `None` for a tensor that
/// records gradients (training), which keeps to Burn's operations.
pub fn primitive<const D: usize>(tensor: &Tensor<D>) -> Option<Primitive> {
    #[cfg(feature = "flex")]
    type Backend = burn::backend::Flex;
    #[cfg(not(feature = "flex"))]
    type Backend = burn::backend::NdArray;
    tensor.clone().try_into_primitive::<Backend>().ok()
}

/// A tensor's values in row-major order, borrowed, when its memory holds them so as one
/// block of f32 or f16 (a weight always; a slice or transposed view not).
pub fn values(tensor: &Primitive) -> Option<Weights<'_>> {
    #[cfg(feature = "flex")]
    {
        tensor
            .as_slice::<f32>()
            .map(Weights::F32)
            .or_else(|| tensor.as_slice::<f16>().map(Weights::F16))
    }
    #[cfg(not(feature = "flex"))]
    {
        match tensor {
            Primitive::F32(storage) => storage.view().to_slice().map(Weights::F32),
            _ => None,
        }
    }
}

/// [`values`] when they are f32.
pub fn f32_values(tensor: &Primitive) -> Option<&[f32]> {
    match values(tensor)? {
        Weights::F32(values) => Some(values),
        _ => None,
    }
}

/// Whether a model for inference keeps f16 weights as f16 ([`crate::kernel::f16_is_fast`]); flex
/// holds f16 tensors, ndarray does not.
pub fn keeps_f16_weights() -> bool {
    cfg!(feature = "flex") && crate::kernel::f16_is_fast()
}
