//! The trainer (feature `train`): it learns a tiny corpus, resumes exactly, and its corpus
//! readers parse their fixtures, skipping and reporting broken records.
#![cfg(feature = "train")]

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use burnchat::train::corpus::{read_chitchat, read_convokit, read_cornell};
use burnchat::train::pairs::{Dataset, is_validation, prepare};
use burnchat::train::{TrainConfig, Trainer, device};
use burnchat::{Chatbot, ModelConfig, WeightDtype};

/// Burn's random number generator is the process's, so tests that train take turns: a
/// concurrent test reseeding it would change another's dropout masks.
static RNG: Mutex<()> = Mutex::new(());

fn corpus_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(name)
}

/// Ten three-line conversations: twenty pairs, every message distinct, so each has one reply.
fn tiny_dataset() -> Dataset {
    let lines = [
        ["hello there", "hi how are you ?", "i am fine thanks ."],
        [
            "what is your name ?",
            "my name is bot .",
            "nice to meet you bot .",
        ],
        [
            "where are you from ?",
            "i am from the internet .",
            "is it nice there ?",
        ],
        ["do you like music ?", "yes i love jazz .", "me too !"],
        [
            "good morning",
            "good morning to you",
            "did you sleep well ?",
        ],
        ["are you busy ?", "not at all .", "great let us talk ."],
        ["what time is it ?", "it is noon .", "time for lunch then ."],
        [
            "can you help me ?",
            "of course i can .",
            "thank you so much .",
        ],
        ["who are you ?", "i am a chatbot .", "that is cool ."],
        ["bye now", "see you later", "take care ."],
    ];
    let conversations: Vec<Vec<String>> = lines
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    prepare(&conversations, 10, 1, 0.0, 0)
}

fn tiny_config(iterations: usize) -> TrainConfig {
    let model = ModelConfig {
        encoder_n_layers: 2,
        decoder_n_layers: 2,
        dropout: 0.1,
        ..ModelConfig::new(0, 32)
    };
    TrainConfig {
        batch_size: 16,
        iterations,
        learning_rate: 3e-3,
        seed: 7,
        ..TrainConfig::new(model)
    }
}

#[test]
fn a_tiny_corpus_is_learned() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dataset = tiny_dataset();
    assert_eq!(dataset.train.len(), 20);
    let pairs = dataset.train.clone();
    let mut trainer = Trainer::new(tiny_config(400), dataset, device()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    trainer
        .run(dir.path(), 1000, &AtomicBool::new(false), |_| {})
        .unwrap();
    let losses: Vec<f64> = trainer.history.train.iter().map(|&(_, l)| l).collect();
    let start = losses[..10].iter().sum::<f64>() / 10.0;
    let end = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(end < start / 10.0, "loss went from {start:.3} to {end:.3}");

    let bot = Chatbot::new(
        trainer.bundle(WeightDtype::F32).unwrap(),
        burnchat::backend::device(),
    );
    let right = pairs
        .iter()
        .filter(|(message, reply)| bot.reply(message).unwrap().reply == *reply)
        .count();
    assert!(right >= 18, "{right} of 20 replies reproduced");
}

#[test]
fn a_resumed_run_continues_the_same_loss_curve() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    // About half the iterations without teacher forcing: both paths resume exactly.
    let tiny_config = |iterations| TrainConfig {
        teacher_forcing_ratio: 0.5,
        ..tiny_config(iterations)
    };
    let straight = {
        let mut trainer = Trainer::new(tiny_config(30), tiny_dataset(), device()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        trainer
            .run(dir.path(), 1000, &AtomicBool::new(false), |_| {})
            .unwrap();
        trainer.history.train
    };
    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(tiny_config(15), tiny_dataset(), device()).unwrap();
    first
        .run(dir.path(), 1000, &AtomicBool::new(false), |_| {})
        .unwrap();
    drop(first);
    let mut resumed = Trainer::resume(dir.path(), tiny_dataset(), Some(30), device()).unwrap();
    assert_eq!(resumed.iteration, 15);
    resumed
        .run(dir.path(), 1000, &AtomicBool::new(false), |_| {})
        .unwrap();
    let resumed = resumed.history.train;
    assert_eq!(resumed.len(), straight.len());
    for ((i, a), (j, b)) in straight.iter().zip(&resumed) {
        assert_eq!(i, j);
        assert!(
            (a - b).abs() <= 1e-4 * a.abs(),
            "iteration {i}: {a} straight, {b} resumed"
        );
    }
}

#[test]
fn a_stop_request_leaves_a_checkpoint_that_resumes() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(tiny_config(50), tiny_dataset(), device()).unwrap();
    trainer
        .run(dir.path(), 1000, &AtomicBool::new(true), |_| {})
        .unwrap();
    assert_eq!(trainer.iteration, 0);
    let resumed = Trainer::resume(dir.path(), tiny_dataset(), None, device()).unwrap();
    assert_eq!(resumed.iteration, 0);
    assert_eq!(resumed.config.iterations, 50);
}

#[test]
fn chitchat_reader_skips_broken_records() {
    let corpus = read_chitchat(&corpus_fixture("chitchat.json")).unwrap();
    assert_eq!(
        corpus.conversations,
        vec![
            vec!["Hello", "How are you doing today?", "im doing good"],
            vec!["What's your name?", "Bob."],
        ]
    );
    assert_eq!(corpus.skipped.len(), 2, "{:?}", corpus.skipped);
}

#[test]
fn cornell_reader_reads_latin1_and_skips_broken_lines() {
    let corpus = read_cornell(&corpus_fixture("cornell")).unwrap();
    assert_eq!(
        corpus.conversations,
        vec![
            vec!["They do to!", "They do not!"],
            vec!["She okay?", "I hope so."],
        ]
    );
    // The broken line, the conversation naming an unknown line, the one without a list.
    assert_eq!(corpus.skipped.len(), 3, "{:?}", corpus.skipped);
    let missing = read_cornell(&corpus_fixture("nowhere")).unwrap_err();
    assert!(missing.to_string().contains("movie_lines.txt"), "{missing}");
}

#[test]
fn convokit_reader_orders_utterances_and_skips_broken_lines() {
    let corpus = read_convokit(&corpus_fixture("utterances.jsonl")).unwrap();
    assert_eq!(
        corpus.conversations,
        vec![
            vec!["They do to!", "They do not!"],
            vec!["I hope so.", "Let's go."],
        ]
    );
    assert_eq!(corpus.skipped.len(), 1, "{:?}", corpus.skipped);
}

#[test]
fn pairs_are_filtered_trimmed_and_split_by_conversation() {
    let conversations = vec![
        vec![
            "a b".to_string(),
            "a c".into(),
            "one two three four five six".into(),
        ],
        vec!["a c".to_string(), "a b".into()],
        vec!["a rare".to_string(), "a b".into()],
    ];
    let data = prepare(&conversations, 5, 2, 0.0, 0);
    // (a c, one two ...) is too long; (a rare, a b) uses a word seen once.
    assert_eq!(
        data.train,
        [("a b".into(), "a c".into()), ("a c".into(), "a b".into())]
    );
    assert_eq!(data.trimmed, 1);
    assert_eq!(data.voc.index("rare"), None);

    // Held out by conversation: all of a conversation's pairs land on one side.
    // Digits are not words, so conversation i is named by two letters, each letter shared
    // with other conversations so that held-out words are known from training.
    let name = |i: usize| {
        format!(
            "{} {}",
            (b'a' + (i % 7) as u8) as char,
            (b'a' + (i / 7) as u8) as char
        )
    };
    let conversations: Vec<Vec<String>> = (0..40)
        .map(|i| {
            ["hello", "hi", "bye"]
                .map(|w| format!("{w} {}", name(i)))
                .to_vec()
        })
        .collect();
    let split = prepare(&conversations, 10, 1, 0.3, 3);
    assert!(!split.valid.is_empty() && split.train.len() > split.valid.len());
    for i in 0..40 {
        let pairs = [
            (format!("hello {}", name(i)), format!("hi {}", name(i))),
            (format!("hi {}", name(i)), format!("bye {}", name(i))),
        ];
        for pair in &pairs {
            if is_validation(i, 3, 0.3) {
                assert!(!split.train.contains(pair), "conversation {i}");
            } else {
                assert!(
                    split.train.contains(pair) && !split.valid.contains(pair),
                    "conversation {i}"
                );
            }
        }
    }
    assert!(
        split
            .valid
            .iter()
            .all(|p| { (0..40).any(|i| is_validation(i, 3, 0.3) && p.0.ends_with(&name(i))) })
    );
}
