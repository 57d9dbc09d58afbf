//! The vocabulary (`voc.json`): the tutorial's `Voc`, with PAD=0, SOS=1, EOS=2.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const PAD_TOKEN: u32 = 0;
pub const SOS_TOKEN: u32 = 1;
pub const EOS_TOKEN: u32 = 2;
const RESERVED: [&str; 3] = ["PAD", "SOS", "EOS"];

/// `voc.json`: `{"num_words": N, "index2word": ["PAD", "SOS", "EOS", "hello", ...]}`.
///
/// `index2word[i]` is the word of token `i`. As in the tutorial, the three reserved
/// tokens are not in `word2index`, so no input word maps to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Voc {
    index2word: Vec<String>,
    word2index: HashMap<String, u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocFile {
    num_words: usize,
    index2word: Vec<String>,
}

/// A sentence turned into token ids, as the tutorial's `indexesFromSentence`, except that
/// unknown words are dropped and reported instead of raising `KeyError`.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Known words' ids followed by EOS.
    pub ids: Vec<u32>,
    /// The words not in the vocabulary, in input order.
    pub unknown: Vec<String>,
}

impl Voc {
    /// Builds a vocabulary from its words in id order; the first three must be PAD, SOS, EOS.
    pub fn new(index2word: Vec<String>) -> Result<Self> {
        if index2word.len() < RESERVED.len() || index2word.iter().zip(RESERVED).any(|(w, r)| w != r)
        {
            return Err(Error::bundle(
                "voc.json",
                "the first three words must be \"PAD\", \"SOS\", \"EOS\"",
            ));
        }
        if index2word.len() > u32::MAX as usize {
            return Err(Error::bundle("voc.json", "too many words"));
        }
        let mut word2index = HashMap::with_capacity(index2word.len());
        for (i, word) in index2word.iter().enumerate().skip(RESERVED.len()) {
            if word.is_empty() || word.contains(' ') {
                return Err(Error::bundle(
                    "voc.json",
                    format!("word {i} ({word:?}) is empty or contains a space"),
                ));
            }
            if word2index.insert(word.clone(), i as u32).is_some() {
                return Err(Error::bundle(
                    "voc.json",
                    format!("word {word:?} appears twice"),
                ));
            }
        }
        Ok(Self {
            index2word,
            word2index,
        })
    }

    /// Parses `voc.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let file: VocFile =
            serde_json::from_slice(bytes).map_err(|e| Error::bundle("voc.json", e))?;
        if file.num_words != file.index2word.len() {
            return Err(Error::bundle(
                "voc.json",
                format!(
                    "num_words is {} but index2word has {} entries",
                    file.num_words,
                    file.index2word.len()
                ),
            ));
        }
        Self::new(file.index2word)
    }

    /// Serialises to `voc.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&VocFile {
            num_words: self.num_words(),
            index2word: self.index2word.clone(),
        })
        .expect("a list of strings always serialises")
    }

    /// The tutorial's `voc.num_words`: the vocabulary size, reserved tokens included.
    pub fn num_words(&self) -> usize {
        self.index2word.len()
    }

    /// The word of a token id, if the id is in range.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.index2word.get(id as usize).map(String::as_str)
    }

    /// The id of a word, if it is in the vocabulary (reserved tokens never are).
    pub fn index(&self, word: &str) -> Option<u32> {
        self.word2index.get(word).copied()
    }

    /// Token ids of an already normalised sentence, words split on single spaces, EOS appended.
    pub fn encode(&self, normalized: &str) -> Encoded {
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for word in normalized.split(' ').filter(|w| !w.is_empty()) {
            match self.index(word) {
                Some(id) => ids.push(id),
                None => unknown.push(word.to_string()),
            }
        }
        ids.push(EOS_TOKEN);
        Encoded { ids, unknown }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voc(words: &[&str]) -> Result<Voc> {
        Voc::new(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn encodes_known_words_and_lists_unknown_ones() {
        let v = voc(&["PAD", "SOS", "EOS", "hello", "?"]).unwrap();
        let e = v.encode("hello there ?");
        assert_eq!(e.ids, vec![3, 4, EOS_TOKEN]);
        assert_eq!(e.unknown, vec!["there".to_string()]);
        // Reserved tokens are not reachable from text.
        assert_eq!(v.index("EOS"), None);
    }

    #[test]
    fn refuses_bad_vocabularies() {
        assert!(voc(&["SOS", "PAD", "EOS"]).is_err());
        assert!(voc(&["PAD", "SOS", "EOS", "a", "a"]).is_err());
        assert!(voc(&["PAD", "SOS", "EOS", "a b"]).is_err());
        let bad_count = br#"{"num_words": 5, "index2word": ["PAD","SOS","EOS"]}"#;
        assert!(Voc::from_json(bad_count).is_err());
        assert!(Voc::from_json(b"{\"num_words\": 3, \"index2").is_err());
    }

    #[test]
    fn json_round_trip() {
        let v = voc(&["PAD", "SOS", "EOS", "hi"]).unwrap();
        assert_eq!(Voc::from_json(v.to_json().as_bytes()).unwrap(), v);
    }
}
