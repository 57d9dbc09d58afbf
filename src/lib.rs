//! burnchat: PyTorch's seq2seq chatbot tutorial (bidirectional GRU encoder, Luong-attention
//! GRU decoder, greedy search) in Rust with Burn, for native use and for wasm32.
//!
//! - [`text`], [`voc`]: the text pipeline.
//! - [`model`]: one file per component of the tutorial.
//! - [`search`]: decoding, one file per strategy (greedy, beam, sampling).
//! - [`kernel`]: the matrix-vector product every `Linear` of inference runs on.
//! - [`config`], [`bundle`]: the weight bundle and its format.
//! - [`chatbot`]: the one `reply` entry point.
//! - [`mod@bench`]: the reply-latency and memory benchmark, native and in the browser.
//! - `import` (feature `native`): the tutorial's checkpoints.
//! - `train` (feature `train`): the trainer.
//! - `wasm` (wasm32 only): the browser module, and the bundle fetched over `web-sys`.

pub mod backend;
pub mod bench;
pub mod bundle;
pub mod chatbot;
pub mod config;
pub mod error;
pub mod fastmath;
#[cfg(feature = "native")]
pub mod import;
pub mod kernel;
pub mod model;
pub mod quant;
pub mod search;
pub mod text;
#[cfg(feature = "train")]
pub mod train;
pub mod voc;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use bundle::Bundle;
pub use chatbot::{Chatbot, Reply};
pub use config::{AttnMethod, ModelConfig, WeightDtype};
pub use error::{Error, Result};
pub use search::{Search, SearchOptions, Strategy};
