//! The one place that picks the compute backend.

use burn::tensor::Device;

/// The device every model in this crate runs on: Burn's ndarray CPU backend, which also
/// runs in wasm32. Burn 0.22 marks ndarray deprecated in favour of `flex`; the project's
/// design asks for ndarray until the two are measured against each other.
#[allow(deprecated)]
pub fn device() -> Device {
    Device::ndarray()
}
