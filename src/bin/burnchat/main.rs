//! The `burnchat` command: translates between the terminal and the library.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burnchat::{Chatbot, SearchOptions, WeightDtype, import::import_checkpoint};
use clap::{Parser, Subcommand, ValueEnum};
use search::SearchArgs;

mod bench;
#[cfg(feature = "train")]
mod eval;
mod search;
#[cfg(feature = "train")]
mod train;

/// The seq2seq chatbot of PyTorch's tutorial, in Rust with Burn.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chat at a prompt; `q` or `quit` (or Ctrl-D) ends.
    Chat {
        /// Bundle directory.
        #[arg(long, default_value = default_weights())]
        weights: PathBuf,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// Print one reply per message.
    Reply {
        /// Bundle directory.
        #[arg(long, default_value = default_weights())]
        weights: PathBuf,
        /// One JSON object per line: input, reply, text, tokens, scores, score,
        /// input_tokens, attention, unknown (or input and error).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        search: SearchArgs,
        /// The messages.
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Convert a checkpoint of the PyTorch tutorial (`torch.save` dict) into a bundle.
    Import {
        /// The checkpoint, e.g. `4000_checkpoint.tar`.
        checkpoint: PathBuf,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
        /// How to store the tensors.
        #[arg(long, value_enum, default_value_t = Dtype::F32)]
        dtype: Dtype,
    },
    /// Rewrite a bundle with its tensors stored as another type (e.g. f32 to f16).
    Convert {
        /// The bundle directory to read.
        bundle: PathBuf,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
        /// How to store the tensors.
        #[arg(long, value_enum)]
        dtype: Dtype,
    },
    /// Time replies over a fixed list of messages, and optionally watch memory.
    Bench(bench::BenchArgs),
    /// Train a model on a dialogue corpus and export it as a bundle (feature `train`).
    #[cfg(feature = "train")]
    Train(train::TrainArgs),
    /// Measure bundles on the held-out pairs of corpora: loss, perplexity, Recall@1/20 and
    /// each search's distinct-n and most common reply (feature `train`).
    #[cfg(feature = "train")]
    Eval(eval::EvalArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Dtype {
    F32,
    F16,
    /// Weight matrices as int8 with one f32 scale per row; the embedding and biases f16.
    Int8,
}

/// The bundled weights, next to the crate.
pub(crate) const fn default_weights() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/weights")
}

pub(crate) fn load(weights: &Path) -> Result<Chatbot> {
    Chatbot::load(weights).with_context(|| format!("loading the bundle {}", weights.display()))
}

/// The bundle, and the search flags checked against it before any message is read.
fn load_with(weights: &Path, search: &SearchArgs) -> Result<(Chatbot, SearchOptions)> {
    let bot = search.with_backward(load(weights)?)?;
    let options = search.options();
    bot.search(&options)?;
    Ok((bot, options))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Chat { weights, search } => {
            let (bot, options) = load_with(&weights, &search)?;
            chat(&bot, &options)
        }
        Command::Reply {
            weights,
            json,
            search,
            text,
        } => {
            let (bot, options) = load_with(&weights, &search)?;
            reply(&bot, json, &options, &text)
        }
        Command::Import {
            checkpoint,
            out,
            dtype,
        } => {
            let bundle = import_checkpoint(&checkpoint, dtype.into(), &burnchat::backend::device())
                .with_context(|| format!("importing {}", checkpoint.display()))?;
            bundle
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            let c = &bundle.config;
            eprintln!(
                "wrote {}: hidden {}, {}+{} layers, {:?} attention, {} words, {:?}",
                out.display(),
                c.hidden_size,
                c.encoder_n_layers,
                c.decoder_n_layers,
                c.attn_model,
                c.num_words,
                c.dtype
            );
            Ok(())
        }
        Command::Convert { bundle, out, dtype } => {
            let device = burnchat::backend::device();
            let mut converted = burnchat::Bundle::load(&bundle, &device)
                .with_context(|| format!("loading the bundle {}", bundle.display()))?;
            converted.config.dtype = dtype.into();
            converted
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} as {:?}", out.display(), converted.config.dtype);
            Ok(())
        }
        Command::Bench(args) => bench::bench(args),
        #[cfg(feature = "train")]
        Command::Train(args) => train::train(args),
        #[cfg(feature = "train")]
        Command::Eval(args) => eval::eval(args),
    }
}

impl From<Dtype> for WeightDtype {
    fn from(d: Dtype) -> Self {
        match d {
            Dtype::F32 => WeightDtype::F32,
            Dtype::F16 => WeightDtype::F16,
            Dtype::Int8 => WeightDtype::Int8,
        }
    }
}

/// The tutorial's `evaluateInput` loop, printing the reply as a person writes it. Sampling
/// without `--seed` draws a new seed for each message.
fn chat(bot: &Chatbot, options: &SearchOptions) -> Result<()> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut turn = 0u64;
    loop {
        print!("> ");
        std::io::stdout().flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            println!();
            return Ok(());
        }
        let text = line.trim();
        if text == "q" || text == "quit" {
            return Ok(());
        }
        let options = SearchOptions {
            seed: options.seed.or(Some(started.wrapping_add(turn))),
            ..options.clone()
        };
        turn += 1;
        match bot.reply_with(text, &options) {
            Ok(reply) => {
                if !reply.unknown.is_empty() {
                    println!("(unknown words skipped: {})", reply.unknown.join(", "));
                }
                println!("Bot: {}", reply.text);
            }
            Err(e) => println!("Error: {e}"),
        }
    }
}

/// One reply per message; a message the bot refuses is reported and the others still run,
/// and the exit status says whether any was refused.
fn reply(bot: &Chatbot, json: bool, options: &SearchOptions, texts: &[String]) -> Result<()> {
    let mut failures = 0;
    for text in texts {
        match (bot.reply_with(text, options), json) {
            (Ok(reply), true) => println!("{}", serde_json::to_string(&reply)?),
            (Ok(reply), false) => println!("{}", reply.reply),
            (Err(e), true) => {
                failures += 1;
                let error = serde_json::json!({ "input": text, "error": e.to_string() });
                println!("{error}");
            }
            (Err(e), false) => {
                failures += 1;
                eprintln!("{text:?}: {e}");
            }
        }
    }
    anyhow::ensure!(
        failures == 0,
        "{failures} of {} messages got no reply",
        texts.len()
    );
    Ok(())
}
