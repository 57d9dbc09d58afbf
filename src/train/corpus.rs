//! Readers for dialogue corpora. Each yields conversations: utterances in order. Lines that
//! cannot be read are counted and reported, never a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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

/// ChatterBot's English corpus (the `chatterbot-corpus` package, BSD-3):
/// `chatterbot_corpus/data/english/*.yml`, each `{categories: [...], conversations: [[text,
/// text, ...], ...]}`. `path` is one such file or a directory of them, read in name order; a
/// conversation is its list of texts (most are a question and one answer).
pub fn read_chatterbot(path: &Path) -> Result<Corpus> {
    use yaml_rust2::{Yaml, YamlLoader};
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(Error::io(path))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(corpus_error(path, "no .yml files in this directory"));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut corpus = Corpus::default();
    for file in files {
        let bytes = read(&file)?;
        let text = String::from_utf8_lossy(&bytes);
        let docs = YamlLoader::load_from_str(&text).map_err(|e| corpus_error(&file, e))?;
        let Some(conversations) = docs.first().and_then(|d| d["conversations"].as_vec()) else {
            corpus
                .skipped
                .push(format!("{}: no conversations list", file.display()));
            continue;
        };
        for (n, conversation) in conversations.iter().enumerate() {
            let texts: Option<Vec<String>> = conversation.as_vec().and_then(|items| {
                items
                    .iter()
                    .map(|item| match item {
                        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
                        Yaml::Integer(i) => Some(i.to_string()),
                        Yaml::Boolean(b) => Some(b.to_string()),
                        _ => None,
                    })
                    .collect()
            });
            match texts {
                Some(texts) if texts.len() >= 2 => corpus.conversations.push(texts),
                _ => corpus.skipped.push(format!(
                    "{}: conversation {}: not a list of two or more texts",
                    file.display(),
                    n + 1
                )),
            }
        }
    }
    Ok(corpus)
}

/// The corpus formats `burnchat train` and `burnchat eval` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Chit-Chat Challenge's `dataset.json`.
    Chitchat,
    /// Cornell Movie-Dialogs, a directory with `movie_lines.txt` and `movie_conversations.txt`.
    Cornell,
    /// Cornell Movie-Dialogs as ConvoKit's `utterances.jsonl`.
    Convokit,
    /// ChatterBot's YAML files, one or a directory of them.
    Chatterbot,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Chitchat,
        Format::Cornell,
        Format::Convokit,
        Format::Chatterbot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Chitchat => "chitchat",
            Format::Cornell => "cornell",
            Format::Convokit => "convokit",
            Format::Chatterbot => "chatterbot",
        }
    }

    pub fn read(self, path: &Path) -> Result<Corpus> {
        match self {
            Format::Chitchat => read_chitchat(path),
            Format::Cornell => read_cornell(path),
            Format::Convokit => read_convokit(path),
            Format::Chatterbot => read_chatterbot(path),
        }
    }
}

/// One corpus of a run, as written on the command line: `[FORMAT:]PATH[@WEIGHT]`, e.g.
/// `chatterbot:corpus/chatterbot_corpus/data/english@4`. The weight oversamples: each of
/// its training pairs is drawn `WEIGHT` times as often as a pair of weight 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub format: Format,
    pub path: PathBuf,
    pub weight: f64,
}

impl Source {
    /// Parses `spec`; a spec without a `FORMAT:` prefix has `default_format`.
    pub fn parse(spec: &str, default_format: Format) -> Result<Source> {
        let bad = |message: String| Error::BadCorpus {
            file: spec.to_string(),
            message,
        };
        let (format, rest) = match spec.split_once(':') {
            Some((name, rest)) => match Format::ALL.iter().find(|f| f.name() == name) {
                Some(&format) => (format, rest),
                None => (default_format, spec),
            },
            None => (default_format, spec),
        };
        let (path, weight) = match rest.rsplit_once('@') {
            Some((path, weight)) => {
                let weight: f64 = weight
                    .parse()
                    .map_err(|_| bad(format!("the weight after @ is not a number: {weight:?}")))?;
                if !(weight.is_finite() && weight > 0.0) {
                    return Err(bad(format!("the weight must be above 0, not {weight}")));
                }
                (path, weight)
            }
            None => (rest, 1.0),
        };
        if path.is_empty() {
            return Err(bad("no path".into()));
        }
        Ok(Source {
            format,
            path: PathBuf::from(path),
            weight,
        })
    }

    /// Reads the corpus.
    pub fn read(&self) -> Result<Corpus> {
        self.format.read(&self.path)
    }
}
