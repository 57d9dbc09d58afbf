//! `burnchat train`: flags in, progress bar and report out; the loop is the library's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burnchat::train::corpus::{Corpus, read_chitchat, read_convokit, read_cornell};
use burnchat::train::pairs::prepare;
use burnchat::train::report::{PROMPTS, plot_losses, sample_replies};
use burnchat::train::{TrainConfig, Trainer, device};
use burnchat::{AttnMethod, Chatbot, ModelConfig};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Dtype;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// The Chit-Chat Challenge's dataset.json.
    Chitchat,
    /// Cornell Movie-Dialogs: a directory with movie_lines.txt and movie_conversations.txt.
    Cornell,
    /// Cornell Movie-Dialogs as ConvoKit's utterances.jsonl.
    Convokit,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Attn {
    Dot,
    General,
    Concat,
}

#[derive(Args)]
pub struct TrainArgs {
    /// The corpus file (or directory, for --format cornell).
    corpus: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Chitchat)]
    format: Format,
    /// Where the bundle goes (`weights` replaces the bundled model).
    #[arg(long)]
    out: PathBuf,
    /// How the bundle stores its tensors.
    #[arg(long, value_enum, default_value_t = Dtype::F16)]
    dtype: Dtype,
    /// Where checkpoints go; an existing one is resumed with --resume.
    #[arg(long, default_value = "checkpoint")]
    checkpoint: PathBuf,
    /// Continue from --checkpoint (same corpus and data settings).
    #[arg(long)]
    resume: bool,
    /// Where the loss plot and sample replies go.
    #[arg(long, default_value = "report")]
    report: PathBuf,
    #[arg(long, default_value_t = 4000)]
    iterations: usize,
    #[arg(long, default_value_t = 500)]
    hidden_size: usize,
    #[arg(long, default_value_t = 2)]
    encoder_n_layers: usize,
    #[arg(long, default_value_t = 2)]
    decoder_n_layers: usize,
    #[arg(long, value_enum, default_value_t = Attn::Dot)]
    attn_model: Attn,
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    #[arg(long, default_value_t = 5.0)]
    decoder_learning_ratio: f64,
    #[arg(long, default_value_t = 50.0)]
    clip: f64,
    #[arg(long, default_value_t = 1.0)]
    teacher_forcing_ratio: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Longest sentence kept, in words (pairs need fewer on both sides), and longest reply.
    #[arg(long, default_value_t = 10)]
    max_length: usize,
    /// Words seen fewer times are trimmed, with the pairs that use them.
    #[arg(long, default_value_t = 3)]
    min_count: usize,
    /// Share of conversations held out for validation.
    #[arg(long, default_value_t = 0.05)]
    valid_fraction: f64,
    #[arg(long, default_value_t = 200)]
    valid_every: usize,
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
}

pub fn train(args: TrainArgs) -> Result<()> {
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1");
    }
    let corpus: Corpus = match args.format {
        Format::Chitchat => read_chitchat(&args.corpus),
        Format::Cornell => read_cornell(&args.corpus),
        Format::Convokit => read_convokit(&args.corpus),
    }
    .with_context(|| format!("reading {}", args.corpus.display()))?;
    if !corpus.skipped.is_empty() {
        eprintln!(
            "skipped {} unreadable records, the first:",
            corpus.skipped.len()
        );
        for line in corpus.skipped.iter().take(5) {
            eprintln!("  {line}");
        }
    }
    let dataset = prepare(
        &corpus.conversations,
        args.max_length,
        args.min_count,
        args.valid_fraction,
        args.seed,
    );
    eprintln!(
        "{} conversations: {} training pairs, {} validation pairs, {} words ({} pairs trimmed)",
        corpus.conversations.len(),
        dataset.train.len(),
        dataset.valid.len(),
        dataset.voc.num_words(),
        dataset.trimmed
    );
    let mut trainer = if args.resume {
        Trainer::resume(&args.checkpoint, dataset, Some(args.iterations), device())
            .with_context(|| format!("resuming from {}", args.checkpoint.display()))?
    } else {
        let model = ModelConfig {
            encoder_n_layers: args.encoder_n_layers,
            decoder_n_layers: args.decoder_n_layers,
            attn_model: match args.attn_model {
                Attn::Dot => AttnMethod::Dot,
                Attn::General => AttnMethod::General,
                Attn::Concat => AttnMethod::Concat,
            },
            max_length: args.max_length,
            dropout: args.dropout,
            ..ModelConfig::new(0, args.hidden_size)
        };
        let config = TrainConfig {
            batch_size: args.batch_size,
            iterations: args.iterations,
            learning_rate: args.learning_rate,
            decoder_learning_ratio: args.decoder_learning_ratio,
            clip: args.clip,
            teacher_forcing_ratio: args.teacher_forcing_ratio,
            seed: args.seed,
            valid_every: args.valid_every,
            ..TrainConfig::new(model)
        };
        Trainer::new(config, dataset, device())?
    };

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let bar =
        ProgressBar::new(trainer.config.iterations as u64).with_position(trainer.iteration as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} eta {eta_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.reset_eta();
    let started = Instant::now();
    let first = trainer.iteration;
    // When the last iteration ended: the final checkpoint and bundle are not iterations.
    let mut last = started;
    trainer.run(&args.checkpoint, args.checkpoint_every, &stop, |p| {
        last = Instant::now();
        bar.set_position(p.iteration as u64);
        let valid = p
            .history
            .valid
            .last()
            .map_or(String::new(), |(_, v)| format!(" valid {v:.3}"));
        bar.set_message(format!("loss {:.3}{valid}", p.loss));
    })?;
    bar.finish();
    let done = trainer.iteration - first;
    if done > 0 {
        eprintln!(
            "{done} iterations in {:.0} s: {:.0} ms per iteration",
            (last - started).as_secs_f64(),
            (last - started).as_secs_f64() * 1000.0 / done as f64
        );
        let t = trainer.times;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / t.iterations.max(1) as f64;
        eprintln!(
            "of which, per iteration: forward {:.0} ms, backward {:.0} ms, optimizer {:.0} ms",
            ms(t.forward),
            ms(t.backward),
            ms(t.optimizer)
        );
        if let Some(peak) = peak_memory_mib() {
            eprintln!("peak resident memory: {peak} MiB");
        }
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!(
            "stopped at iteration {}; checkpoint in {} (continue with --resume)",
            trainer.iteration,
            args.checkpoint.display()
        );
    }

    let bundle = trainer.bundle(args.dtype.into())?;
    bundle
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let bot = Chatbot::load(&args.out)?;
    std::fs::create_dir_all(&args.report)?;
    plot_losses(&trainer.history, &args.report.join("loss.png"))?;
    let mut report = format!(
        "# Training report\n\niterations: {}\n\nlast validation loss: {}\n\n| prompt | reply |\n|---|---|\n",
        trainer.iteration,
        trainer
            .history
            .valid
            .last()
            .map_or("-".into(), |(i, v)| format!("{v:.3} at {i}"))
    );
    for (prompt, reply) in sample_replies(&bot, &PROMPTS) {
        println!("> {prompt}\nBot: {reply}");
        report.push_str(&format!("| {prompt} | {reply} |\n"));
    }
    std::fs::write(args.report.join("report.md"), report)?;
    eprintln!(
        "bundle in {}, report in {}",
        args.out.display(),
        args.report.display()
    );
    Ok(())
}

/// The process's peak resident memory so far (Linux's `VmHWM`), in MiB; `None` elsewhere.
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
