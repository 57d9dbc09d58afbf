//! The library's one error type: every failure a user can cause (bad text, a bad bundle,
//! a bad checkpoint) ends here, typed, instead of in a panic.

use thiserror::Error;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// Nothing is left of the message once normalised (empty, blank, digits or symbols only).
    #[error("the message has no words (only letters and . ! ? are read)")]
    EmptyInput,

    /// Every word of the message is outside the vocabulary.
    #[error("no word of the message is in the vocabulary (unknown: {})", quoted(.0))]
    NoKnownWords(Vec<String>),

    /// The message has more words than the model takes (see `ModelConfig::max_input_words`).
    #[error("the message has {words} words; the limit is {limit}")]
    TooLong { words: usize, limit: usize },

    /// Decoding options that cannot be used (see `search::Search`).
    #[error("search options: {0}")]
    BadSearch(String),

    /// A tensor the configuration requires is absent from the weights.
    #[error("tensor '{name}' is missing (expected shape {expected:?})")]
    MissingTensor { name: String, expected: Vec<usize> },

    /// A tensor the configuration does not describe is present in the weights.
    #[error("tensor '{name}' is not part of this model (shape {found:?})")]
    UnexpectedTensor { name: String, found: Vec<usize> },

    /// A tensor has a shape other than the configuration's.
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    BadTensor {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A tensor is stored in an element type the bundle format does not allow.
    #[error("tensor '{name}' is stored as {found}, expected {expected}")]
    BadDtype {
        name: String,
        expected: String,
        found: String,
    },

    /// An int8 bundle's weight matrix without a usable scale (missing, of another shape or
    /// type, negative, infinite or NaN).
    #[error("tensor '{name}': {message}")]
    BadScale { name: String, message: String },

    /// A bundle file that cannot be read as what it should be, or that contradicts another.
    #[error("{file}: {message}")]
    BadBundle { file: String, message: String },

    /// A training corpus that cannot be read as its format says.
    #[error("{file}: {message}")]
    BadCorpus { file: String, message: String },

    /// A PyTorch checkpoint that is not in the tutorial's format.
    #[error("checkpoint: {0}")]
    BadCheckpoint(String),

    /// A file could not be read or written.
    #[error("cannot read or write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn quoted(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    quoted.join(", ")
}

impl Error {
    /// Maps an I/O failure on `path` to [`Error::Io`].
    #[cfg(feature = "native")]
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn bundle(file: &str, message: impl std::fmt::Display) -> Self {
        Error::BadBundle {
            file: file.to_string(),
            message: message.to_string(),
        }
    }
}

/// Reads a whole file, naming it in the error.
#[cfg(feature = "native")]
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(path))
}
