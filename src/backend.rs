//! The one place that picks the compute backend.

use burn::tensor::Device;

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
