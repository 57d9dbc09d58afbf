//! TypeScript declarations of the objects that cross the boundary as plain JS values: the
//! reply, the search options, the load options and progress, the benchmark's results.
//! wasm-bindgen writes them into `burnchat.d.ts` beside the classes and functions it
//! declares itself. The browser test (`tests/web.rs`) checks the reply's and the search
//! options' fields against the Rust structs, so the two cannot drift apart.

use wasm_bindgen::prelude::*;

/// The declarations, for `burnchat.d.ts` (below) and for the test that checks them.
pub const TYPES: &str = r#"
/** How to decode; every field optional (the bundle's `config.json` default, then the library's). */
export interface SearchOptions {
  /** "greedy" (the tutorial's), "beam" or "sample". */
  search?: "greedy" | "beam" | "sample";
  beamWidth?: number;
  lengthPenalty?: number;
  noRepeatNgram?: number;
  minLength?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Reranking against the model's own prior: 0 (off) to 1. */
  antiLm?: number;
  /** With "sample": replies drawn, the best by the reranked score kept. */
  samples?: number;
  /** Reranking by a backward model p(message | reply) (MMI-bidi); above 0 it needs one (`load`'s `backward`). */
  mmi?: number;
}

/** One reply. */
export interface Reply {
  /** The message as given. */
  input: string;
  /** The reply's words joined by spaces, as the tutorial prints it. */
  reply: string;
  /** The reply as a person writes it: "I'm doing well." */
  text: string;
  /** The chosen token ids, EOS included when it came. */
  tokens: number[];
  /** The probability of each token. */
  scores: number[];
  /** The sum of the tokens' natural-log probabilities. */
  score: number;
  /** The ids the encoder saw: the message's known words, then EOS. */
  input_tokens: number[];
  /** Attention weights: a row per entry of `tokens`, a column per entry of `input_tokens`. */
  attention: number[][];
  /** The message's words not in the vocabulary, dropped. */
  unknown: string[];
  /** The word of each entry of `tokens` ("EOS" for the end). */
  words: string[];
  /** The word of each entry of `input_tokens`. */
  input_words: string[];
  /** Milliseconds the reply took. */
  ms: number;
}

/** What `Chatbot.load` reports as a file arrives. */
export interface LoadProgress {
  /** "model.safetensors", "config.json" or "voc.json". */
  file: string;
  /** The URL fetched. */
  url: string;
  /** Bytes received so far. */
  loaded: number;
  /** The file's Content-Length, or null when the server sent none. */
  total: number | null;
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** A backward model's bundle directory, for the `mmi` search option. */
  backward?: string;
}

/** `bench()`: milliseconds per reply over the benchmark's prompts. */
export interface BenchResult {
  replies: number;
  median_ms: number;
  p90_ms: number;
  mean_ms: number;
  mean_tokens: number;
  ms_per_token: number;
}

/** `soak()`: the module's memory over many replies, in bytes. */
export interface SoakResult {
  replies: number;
  baseline_bytes: number;
  max_bytes: number;
  final_bytes: number;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = TYPES;

#[wasm_bindgen]
extern "C" {
    /// A `SearchOptions` object, checked field by field on the Rust side.
    #[wasm_bindgen(typescript_type = "SearchOptions")]
    pub type SearchOptionsArg;

    /// A `LoadOptions` object.
    #[wasm_bindgen(typescript_type = "LoadOptions")]
    pub type LoadOptionsArg;
}

/// The options as the JS value they are, `undefined` when left out.
pub fn value_of<T: Into<JsValue>>(options: Option<T>) -> JsValue {
    options.map_or(JsValue::UNDEFINED, Into::into)
}
