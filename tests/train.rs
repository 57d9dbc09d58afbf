//! The trainer (feature `train`): it learns a tiny corpus, resumes exactly, and its corpus
//! readers parse their fixtures, skipping and reporting broken records.
#![cfg(feature = "train")]

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use burnchat::train::corpus::{
    Format, Source, read_chatterbot, read_chitchat, read_convokit, read_cornell,
};
use burnchat::train::eval::{evaluator, recall_at_1};
use burnchat::train::pairs::{Dataset, is_validation, prepare, prepare_weighted};
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
    // Recall@1 of 10 over the training pairs: near chance before, all but a few after.
    let recall = |trainer: &Trainer| {
        let bot = evaluator(trainer.bundle(WeightDtype::F32).unwrap());
        recall_at_1(&bot, &pairs, 10, 0).unwrap()
    };
    let before = recall(&trainer);
    assert!(before <= 0.4, "Recall@1/10 {before} untrained");
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
    let after = recall(&trainer);
    assert!(after >= 0.9, "Recall@1/10 {after} trained");
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

/// The backward model's data (`--reverse`): every pair the other way round, training and
/// held out alike, in the same vocabulary word for word, so the two models can be paired.
#[test]
fn reversed_pairs_keep_the_vocabulary_and_the_split() {
    let conversations: Vec<Vec<String>> = (0..30)
        .map(|i| {
            let w = ["a", "b", "c", "d", "e"][i % 5];
            vec![format!("hello {w}"), format!("hi {w} there"), "bye".into()]
        })
        .collect();
    let forward = prepare(&conversations, 10, 1, 0.3, 1);
    let backward = prepare(&conversations, 10, 1, 0.3, 1).reversed();
    assert_eq!(backward.voc, forward.voc);
    let swap = |pairs: &[(String, String)]| -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (b.clone(), a.clone())).collect()
    };
    assert!(!forward.valid.is_empty());
    assert_eq!(backward.train, swap(&forward.train));
    assert_eq!(backward.valid, swap(&forward.valid));
    assert_eq!(backward.sources, forward.sources);
}

#[test]
fn chatterbot_reader_reads_a_directory_of_yaml_files() {
    let dir = corpus_fixture("chatterbot");
    let corpus = read_chatterbot(&dir).unwrap();
    // Files in name order (greetings.yml, no_conversations.yml, profile.yaml); README.txt
    // is not YAML and not read; scalars that are not strings become their text.
    assert_eq!(
        corpus.conversations,
        vec![
            vec!["Hello", "Hi"],
            vec![
                "How are you doing?",
                "I'm doing well.",
                "That is good to hear."
            ],
            vec!["What year did it end?", "1945"],
            vec!["Are you a robot?", "Yes: a robot, written in Rust."],
        ]
    );
    // The lone message, the file without conversations, the bare string.
    assert_eq!(corpus.skipped.len(), 3, "{:?}", corpus.skipped);
    let one = read_chatterbot(&dir.join("profile.yaml")).unwrap();
    assert_eq!(one.conversations.len(), 1);
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("bad.yml"),
        "conversations: [[\"a\", \"b\"",
    )
    .unwrap();
    let error = read_chatterbot(broken.path()).unwrap_err().to_string();
    assert!(error.contains("bad.yml"), "{error}");
    let empty = tempfile::tempdir().unwrap();
    let error = read_chatterbot(empty.path()).unwrap_err().to_string();
    assert!(error.contains("no .yml files"), "{error}");
}

#[test]
fn corpus_specs_name_format_path_and_weight() {
    let parse = |spec| Source::parse(spec, Format::Chitchat);
    let source = parse("chatterbot:data/english@2.5").unwrap();
    assert_eq!(source.format, Format::Chatterbot);
    assert_eq!(source.path, Path::new("data/english"));
    assert_eq!(source.weight, 2.5);
    let plain = parse("dataset.json").unwrap();
    assert_eq!((plain.format, plain.weight), (Format::Chitchat, 1.0));
    // A prefix that is no format name is part of the path.
    assert_eq!(
        parse("c:/data.json").unwrap().path,
        Path::new("c:/data.json")
    );
    for bad in [
        "data.json@",
        "data.json@x",
        "data.json@0",
        "data.json@-1",
        "cornell:@2",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn weights_oversample_a_corpus_and_its_words() {
    let small: Vec<Vec<String>> = (0..10)
        .map(|i| vec![format!("ask {}", ["x", "y"][i % 2]), "answer".into()])
        .chain([vec!["ask once".to_string(), "answer".into()]])
        .collect();
    let big: Vec<Vec<String>> = (0..100)
        .map(|_| vec!["hello".to_string(), "hi".into()])
        .collect();
    let data = prepare_weighted(&[(&big, 1.0), (&small, 10.0)], 10, 5, 0.0, 0);
    // "once" is seen once, but in a corpus of weight 10: kept, with its pair.
    assert!(data.voc.index("once").is_some());
    assert_eq!(data.sources, [(100, 1.0), (11, 10.0)]);
    assert_eq!(data.trimmed, 0);
    // Adding a corpus leaves the other's split as it was.
    let alone = prepare(&small, 10, 1, 0.3, 4);
    let both = prepare_weighted(&[(&big, 1.0), (&small, 1.0)], 10, 1, 0.3, 4);
    assert!(alone.valid.iter().all(|pair| both.valid.contains(pair)));

    // Drawn pairs: 100 of weight 1 against 11 of weight 10, so about half are the small
    // corpus's; with equal weights about 11 in 111. Making a trainer seeds the RNG.
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let share = |data: Dataset| {
        let trainer = Trainer::new(tiny_config(1), data, device()).unwrap();
        let drawn: Vec<&(String, String)> = (0..200).flat_map(|i| trainer.draw(i).0).collect();
        drawn.iter().filter(|(_, b)| b == "answer").count() as f64 / drawn.len() as f64
    };
    let weighted = share(prepare_weighted(
        &[(&big, 1.0), (&small, 10.0)],
        10,
        1,
        0.0,
        0,
    ));
    assert!((0.45..0.55).contains(&weighted), "{weighted}");
    let equal = share(prepare_weighted(
        &[(&big, 1.0), (&small, 1.0)],
        10,
        1,
        0.0,
        0,
    ));
    assert!((0.06..0.14).contains(&equal), "{equal}");
}

/// Forty three-line conversations named by two letters each, so that held-out ones use only
/// words seen in training.
fn named_conversations() -> Vec<Vec<String>> {
    (0..40)
        .map(|i| {
            let name = format!(
                "{} {}",
                (b'a' + (i % 7) as u8) as char,
                (b'a' + (i / 7) as u8) as char
            );
            ["hello", "hi", "bye"]
                .map(|w| format!("{w} {name}"))
                .to_vec()
        })
        .collect()
}

#[test]
fn patience_counts_validations_without_a_new_best() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let config = TrainConfig {
        patience: 2,
        ..tiny_config(10)
    };
    let mut trainer = Trainer::new(config, tiny_dataset(), device()).unwrap();
    trainer.history.valid = vec![(2, 5.0), (4, 4.0), (6, 4.5)];
    assert!(!trainer.stopped_improving());
    // Equal is not lower.
    trainer.history.valid.push((8, 4.0));
    assert!(trainer.stopped_improving());
    assert_eq!(trainer.best_validation(), Some((4, 4.0)));
    trainer.config.patience = 0;
    assert!(!trainer.stopped_improving());
}

#[test]
fn the_exported_model_is_the_one_of_the_lowest_validation_loss() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let data = || prepare(&named_conversations(), 10, 1, 0.3, 3);
    let config = TrainConfig {
        valid_every: 5,
        learning_rate: 1e-2,
        ..tiny_config(30)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(config, data(), device()).unwrap();
    trainer
        .run(dir.path(), 1000, &AtomicBool::new(false), |_| {})
        .unwrap();
    let (at, best) = trainer.best_validation().unwrap();
    // At this learning rate the held-out loss turns up before the end: the best is earlier.
    assert!(at < 30, "{:?}", trainer.history.valid);
    assert!(dir.path().join("best.bpk").exists());
    let mut resumed = Trainer::resume(dir.path(), data(), None, device()).unwrap();
    for trainer in [&mut trainer, &mut resumed] {
        trainer.restore_best();
        let again = trainer.validate().unwrap();
        assert!(
            (again - best).abs() < 1e-9,
            "{again} against the best {best}"
        );
    }
}
