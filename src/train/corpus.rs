//! Readers for dialogue corpora. Each yields conversations: utterances in order. Lines that
//! cannot be read are counted and reported, never a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result, read};

/// Conversations read from a corpus, and what was skipped on the way.
#[derive(Debug, Default)]
pub struct Corpus {
    pub conversations: Vec<Vec<String>>,
    /// One entry per unreadable line or record: `file:line: why`.
    pub skipped: Vec<String>,
}

fn corpus_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::BadCorpus {
        file: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The Chit-Chat Challenge's `dataset.json` (the `chitchat-dataset` package):
/// `{id: {"messages": [[{"text", "sender", ...}, ...], ...]}}`, a list of turns, each a list of
/// one sender's messages. A conversation is its messages in order.
pub fn read_chitchat(path: &Path) -> Result<Corpus> {
    #[derive(Deserialize)]
    struct Conversation {
        messages: Vec<Vec<serde_json::Value>>,
    }
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&read(path)?).map_err(|e| corpus_error(path, e))?;
    let mut corpus = Corpus::default();
    for (id, value) in raw {
        let Ok(conversation) = serde_json::from_value::<Conversation>(value) else {
            corpus.skipped.push(format!(
                "{}: conversation {id}: no messages list",
                path.display()
            ));
            continue;
        };
        let mut lines = Vec::new();
        for message in conversation.messages.iter().flatten() {
            match message.get("text").and_then(|t| t.as_str()) {
                Some(text) => lines.push(text.to_string()),
                None => corpus.skipped.push(format!(
                    "{}: conversation {id}: a message has no text",
                    path.display()
                )),
            }
        }
        corpus.conversations.push(lines);
    }
    Ok(corpus)
}

const CORNELL_SEP: &str = " +++$+++ ";

/// The Cornell Movie-Dialogs corpus in its original layout: `movie_lines.txt`
/// (`L1045 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ They do not!`) and
/// `movie_conversations.txt` (`u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L194', 'L195']`), in
/// ISO-8859-1 as published.
pub fn read_cornell(dir: &Path) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    let lines_path = dir.join("movie_lines.txt");
    let mut lines = HashMap::new();
    for (n, line) in latin1_lines(&read(&lines_path)?).enumerate() {
        let fields: Vec<&str> = line.splitn(5, CORNELL_SEP).collect();
        if fields.len() != 5 || !fields[0].starts_with('L') {
            corpus
                .skipped
                .push(format!("{}:{}: not 5 fields", lines_path.display(), n + 1));
            continue;
        }
        lines.insert(fields[0].to_string(), fields[4].to_string());
    }
    let conv_path = dir.join("movie_conversations.txt");
    for (n, line) in latin1_lines(&read(&conv_path)?).enumerate() {
        let where_ = || format!("{}:{}", conv_path.display(), n + 1);
        let fields: Vec<&str> = line.split(CORNELL_SEP).collect();
        let ids = fields.get(3).and_then(|list| {
            let inner = list.trim().strip_prefix('[')?.strip_suffix(']')?;
            Some(
                inner
                    .split(',')
                    .map(|id| id.trim().trim_matches('\'').to_string())
                    .collect::<Vec<_>>(),
            )
        });
        let Some(ids) = ids.filter(|_| fields.len() == 4) else {
            corpus
                .skipped
                .push(format!("{}: not 4 fields ending in a list", where_()));
            continue;
        };
        let mut utterances = Vec::with_capacity(ids.len());
        for id in &ids {
            match lines.get(id) {
                Some(text) => utterances.push(text.clone()),
                None => {
                    corpus
                        .skipped
                        .push(format!("{}: unknown line {id}", where_()));
                    utterances.clear();
                    break;
                }
            }
        }
        if !utterances.is_empty() {
            corpus.conversations.push(utterances);
        }
    }
    Ok(corpus)
}

fn latin1_lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| line.iter().map(|&b| b as char).collect())
}

/// ConvoKit's layout of the Cornell corpus, `utterances.jsonl`: one JSON object a line with
/// `id`, `conversation_id`, `text`. Utterances are grouped by conversation and put in the
/// order of their ids' numbers (`L1044` before `L1045`), which is the order they were spoken.
pub fn read_convokit(path: &Path) -> Result<Corpus> {
    #[derive(Deserialize)]
    struct Utterance {
        id: String,
        conversation_id: String,
        text: String,
    }
    let mut corpus = Corpus::default();
    let mut conversations: BTreeMap<String, Vec<(u64, usize, String)>> = BTreeMap::new();
    let bytes = read(path)?;
    for (n, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Utterance>(line) {
            Ok(u) => {
                let number = u.id.trim_start_matches(|c: char| !c.is_ascii_digit());
                let order = number.parse().unwrap_or(u64::MAX);
                conversations
                    .entry(u.conversation_id)
                    .or_default()
                    .push((order, n, u.text));
            }
            Err(e) => corpus
                .skipped
                .push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
    }
    for (_, mut utterances) in conversations {
        utterances.sort();
        corpus
            .conversations
            .push(utterances.into_iter().map(|(_, _, text)| text).collect());
    }
    Ok(corpus)
}
