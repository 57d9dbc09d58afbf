//! `burnchat train`: flags in, progress bar and report out; the loop is the library's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burnchat::train::corpus::{self, Corpus, Source};
use burnchat::train::eval::offered_searches;
use burnchat::train::pairs::prepare_weighted;
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
    /// ChatterBot's YAML files: one, or a directory such as chatterbot_corpus/data/english.
    Chatterbot,
}

impl From<Format> for corpus::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Chitchat => corpus::Format::Chitchat,
            Format::Cornell => corpus::Format::Cornell,
            Format::Convokit => corpus::Format::Convokit,
            Format::Chatterbot => corpus::Format::Chatterbot,
        }
    }
}

/// The corpora of a run and how their held-out split is drawn, shared by `train` and `eval`.
#[derive(Args)]
pub struct DataArgs {
    /// Corpora, each `[FORMAT:]PATH[@WEIGHT]`: a FORMAT prefix overrides --format, and
    /// WEIGHT oversamples (a pair of weight 3 is drawn three times as often as one of 1).
    #[arg(required = true, value_name = "CORPUS")]
    pub corpora: Vec<String>,
    /// The format of corpora given without a FORMAT: prefix.
    #[arg(long, value_enum, default_value_t = Format::Chitchat)]
    pub format: Format,
    /// Longest sentence kept, in words (pairs need fewer on both sides), and longest reply.
    #[arg(long, default_value_t = 10)]
    pub max_length: usize,
    /// Share of each corpus's conversations held out for validation.
    #[arg(long, default_value_t = 0.05)]
    pub valid_fraction: f64,
    /// Seeds which conversations are held out; keep it fixed to compare models.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
}

impl DataArgs {
    /// Reads every corpus, reporting what was skipped.
    pub fn read(&self) -> Result<Vec<(Source, Corpus)>> {
        self.corpora
            .iter()
            .map(|spec| {
                let source = Source::parse(spec, self.format.into())?;
                let corpus = source
                    .read()
                    .with_context(|| format!("reading {}", source.path.display()))?;
                if !corpus.skipped.is_empty() {
                    eprintln!(
                        "{}: skipped {} unreadable records, the first:",
                        source.path.display(),
                        corpus.skipped.len()
                    );
                    for line in corpus.skipped.iter().take(5) {
                        eprintln!("  {line}");
                    }
                }
                Ok((source, corpus))
            })
            .collect()
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Attn {
    Dot,
    General,
    Concat,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
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
    /// Train the backward model p(message | reply), for reranking a forward model's replies
    /// (MMI-bidi): every pair swapped, the vocabulary and split as without it.
    #[arg(long)]
    reverse: bool,
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
    /// Adam's learning rate for the embedding and encoder (1e-4, the tutorial's); with
    /// --resume, given, it replaces the checkpoint's for the iterations to come (a decay).
    #[arg(long)]
    learning_rate: Option<f64>,
    #[arg(long, default_value_t = 5.0)]
    decoder_learning_ratio: f64,
    #[arg(long, default_value_t = 50.0)]
    clip: f64,
    #[arg(long, default_value_t = 1.0)]
    teacher_forcing_ratio: f64,
    /// Seeds initialisation, batches, teacher forcing and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Words seen fewer times (weighted like their corpus) are trimmed, with the pairs that
    /// use them.
    #[arg(long, default_value_t = 3)]
    min_count: usize,
    #[arg(long, default_value_t = 200)]
    valid_every: usize,
    /// Iterations between full evaluations (Recall@1/20, each search's distinct-n; as
    /// `burnchat eval`); 0: only at the end.
    #[arg(long, default_value_t = 1000)]
    eval_every: usize,
    /// Stop once this many validations in a row found no lower validation loss than the best
    /// before them (0: run all iterations). Either way the bundle is the model of the lowest
    /// validation loss.
    #[arg(long, default_value_t = 0)]
    patience: usize,
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
}

pub fn train(args: TrainArgs) -> Result<()> {
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1");
    }
    let data = args.data.read()?;
    let weighted: Vec<(&[Vec<String>], f64)> = data
        .iter()
        .map(|(source, corpus)| (corpus.conversations.as_slice(), source.weight))
        .collect();
    let dataset = prepare_weighted(
        &weighted,
        args.data.max_length,
        args.min_count,
        args.data.valid_fraction,
        args.data.split_seed,
    );
    let dataset = if args.reverse {
        dataset.reversed()
    } else {
        dataset
    };
    for ((source, corpus), (pairs, weight)) in data.iter().zip(&dataset.sources) {
        eprintln!(
            "{}: {} conversations, {pairs} training pairs, weight {weight}",
            source.path.display(),
            corpus.conversations.len()
        );
    }
    eprintln!(
        "{} training pairs, {} validation pairs, {} words ({} pairs trimmed)",
        dataset.train.len(),
        dataset.valid.len(),
        dataset.voc.num_words(),
        dataset.trimmed
    );
    let mut trainer = if args.resume {
        let mut trainer =
            Trainer::resume(&args.checkpoint, dataset, Some(args.iterations), device())
                .with_context(|| format!("resuming from {}", args.checkpoint.display()))?;
        if let Some(lr) = args.learning_rate {
            eprintln!(
                "learning rate {} from iteration {} on (was {})",
                lr, trainer.iteration, trainer.config.learning_rate
            );
            trainer.config.learning_rate = lr;
            trainer.config.check()?;
        }
        trainer
    } else {
        let model = ModelConfig {
            encoder_n_layers: args.encoder_n_layers,
            decoder_n_layers: args.decoder_n_layers,
            attn_model: match args.attn_model {
                Attn::Dot => AttnMethod::Dot,
                Attn::General => AttnMethod::General,
                Attn::Concat => AttnMethod::Concat,
            },
            max_length: args.data.max_length,
            dropout: args.dropout,
            ..ModelConfig::new(0, args.hidden_size)
        };
        let config = TrainConfig {
            batch_size: args.batch_size,
            iterations: args.iterations,
            learning_rate: args.learning_rate.unwrap_or(1e-4),
            decoder_learning_ratio: args.decoder_learning_ratio,
            clip: args.clip,
            teacher_forcing_ratio: args.teacher_forcing_ratio,
            seed: args.seed,
            valid_every: args.valid_every,
            eval_every: args.eval_every,
            patience: args.patience,
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

    if trainer.stopped_improving() {
        eprintln!(
            "stopped at iteration {}: no lower validation loss in the last {} validations",
            trainer.iteration, trainer.config.patience
        );
    }
    let last = trainer.iteration;
    let exported = match trainer.restore_best() {
        Some(best) => {
            eprintln!("exporting the model of iteration {best}, the lowest validation loss");
            best
        }
        None => last,
    };
    let metrics = trainer.evaluate(&offered_searches(false), &Default::default())?;
    let table = crate::eval::metrics_table(&[("held-out pairs".into(), &metrics)]);
    eprint!("{table}");
    let bundle = trainer.bundle(args.dtype.into())?;
    bundle
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let bot = Chatbot::load(&args.out)?;
    std::fs::create_dir_all(&args.report)?;
    plot_losses(&trainer.history, &args.report.join("loss.png"))?;
    std::fs::write(
        args.report.join("eval.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "iteration": last,
            "exported": exported,
            "final": metrics,
            "history": trainer.history.eval,
        }))?,
    )?;
    let mut report = format!(
        "# Training report\n\niterations: {}, the bundle's: {exported}\n\nlowest validation loss: {}\n\n{table}\n| prompt | greedy | the page's search |\n|---|---|---|\n",
        trainer.iteration,
        trainer
            .best_validation()
            .map_or("-".into(), |(i, v)| format!("{v:.3} at {i}"))
    );
    let searches = offered_searches(false);
    let greedy = sample_replies(&bot, &PROMPTS, &searches[0].1);
    let page = sample_replies(&bot, &PROMPTS, &searches[1].1);
    for ((prompt, greedy), page) in PROMPTS.iter().zip(&greedy).zip(&page) {
        println!("> {prompt}\nBot: {page}");
        report.push_str(&format!("| {prompt} | {greedy} | {page} |\n"));
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
